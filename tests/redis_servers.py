"""Private ``redis-server`` processes for the shared tier's tests.

Each server is Debian's ``redis-server`` on a free loopback port, with persistence off and its
files in a temporary directory. A test can kill it, restart it on the same port, or stop it
(SIGSTOP) to make it slow. When ``redis-server`` is missing the tests fail: ``make test``
installs it (``make redis-server``), so they are never skipped.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

#: Seconds a server may take to answer its first PING.
START_TIMEOUT = 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port() -> int:
    """A free port for a cluster node: its bus port (10000 higher) must be free too, so the
    port is at most 55535."""
    for _ in range(1000):
        port = random.randint(20000, 55535)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One private server. ``extra`` are more ``redis-server`` arguments (``--cluster-enabled
    yes``...)."""

    def __init__(self, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make redis-server`")
        self.binary = binary
        self.port = port or free_port()
        self.extra = extra
        self.dir = tempfile.mkdtemp(prefix="cachebox-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self.dir,
            "--daemonize", "no",
            "--logfile", os.path.join(self.dir, "redis.log"),
            *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not _ping(self.port):
            if self.process.poll() is not None:
                with open(os.path.join(self.dir, "redis.log")) as f:
                    log = f.read()[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{log}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"redis-server on port {self.port} did not answer within {START_TIMEOUT} s"
                )
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-run, its data with it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """A local Redis Cluster of ``size`` primaries (no replicas), each a private server."""

    def __init__(self, size: int = 3) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed: run `make redis-server`")
        self.nodes: list[RedisServer] = []
        try:
            for _ in range(size):
                self.nodes.append(
                    RedisServer(
                        port=free_cluster_port(),
                        extra=("--cluster-enabled", "yes", "--cluster-node-timeout", "2000"),
                    )
                )
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            deadline = time.monotonic() + START_TIMEOUT
            while not all(self._state_ok(cli, node.port) for node in self.nodes):
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster did not reach cluster_state:ok")
                time.sleep(0.1)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _state_ok(cli: str, port: int) -> bool:
        out = subprocess.run(
            [cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True, timeout=10, check=False
        )
        return "cluster_state:ok" in out.stdout

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def close(self) -> None:
        for node in self.nodes:
            node.close()
