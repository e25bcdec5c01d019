//! The shared second tier's native parts.

pub mod expiry_watch;
mod key_codec;

pub use key_codec::{decode_key, encode_key};
