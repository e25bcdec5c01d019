//! Runs the store fuzz target on seeded pseudo-random inputs for a time budget, without
//! libFuzzer: `smoke SECONDS [SEED]`, or `smoke --replay FILE` for one saved input (a libFuzzer
//! crash file). Input `i` comes from SplitMix64 seeded with `SEED * 2^32 + i`, so a failure
//! names the input that reproduces it.

use std::time::{Duration, Instant};

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn input(seed: u64, i: u64) -> Vec<u8> {
    let mut state = (seed << 32) ^ i;
    let len = 1 + (splitmix(&mut state) % 2048) as usize;
    (0..len).map(|_| splitmix(&mut state) as u8).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--replay") {
        let data = std::fs::read(&args[2]).expect("read the input file");
        cachebox_fuzz::run(&data);
        println!("replay: no failure");
        return;
    }
    let seconds: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60.0);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        let data = input(seed, runs);
        if std::panic::catch_unwind(|| cachebox_fuzz::run(&data)).is_err() {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            eprintln!("store smoke: input #{runs} (seed {seed}) failed; input hex:\n{hex}");
            std::process::exit(1);
        }
        runs += 1;
    }
    println!("store smoke: {runs} inputs in {seconds} s, no failure");
}
