"""Shared pieces of the shared tier's tests: clients, namespaces and command counts."""

from __future__ import annotations

import inspect
import time
import uuid

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import cachebox


def client_for(server, **kwargs) -> redis.Redis:
    """A client as the README advises: short timeouts, at most one retry."""
    kwargs.setdefault("socket_timeout", 0.5)
    kwargs.setdefault("socket_connect_timeout", 0.5)
    kwargs.setdefault("retry", Retry(NoBackoff(), 1))
    return redis.Redis(host="127.0.0.1", port=server.port, **kwargs)


def new_namespace() -> str:
    return "t" + uuid.uuid4().hex[:12]


def commands(client: redis.Redis) -> dict[str, int]:
    """Calls per command so far (``INFO commandstats``), without the INFO calls themselves."""
    stats = client.info("commandstats")
    counts = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    counts.pop("info", None)
    return counts


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def count_round_trips(client) -> list[list[str]]:
    """What ``client`` (sync, or ``redis.asyncio``) sends from now on: one list of command names
    per packet (a round trip), whichever of the client's paths sends it (the tier writes some
    straight to a pooled connection)."""
    sent: list[list[str]] = []

    def count_on(connection):
        if "send_packed_command" not in vars(connection):
            send = connection.send_packed_command

            # Counted when called: an async connection's send is the coroutine returned.
            def counting(command, *a, **k):
                sent.append(command_names(command))
                return send(command, *a, **k)

            connection.send_packed_command = counting
        return connection

    if client.connection is not None:  # a single-connection client
        count_on(client.connection)
        return sent
    pool = client.connection_pool
    get_connection = pool.get_connection

    def counting_get_connection(*a, **k):
        got = get_connection(*a, **k)
        if not inspect.isawaitable(got):
            return count_on(got)

        async def later():
            return count_on(await got)

        return later()

    pool.get_connection = counting_get_connection
    return sent


def command_names(packed) -> list[str]:
    """The names of the commands in a packet of RESP arrays (as the client packs them)."""
    data = packed if isinstance(packed, (bytes, bytearray)) else b"".join(bytes(c) for c in packed)
    names, at = [], 0
    while at < len(data):
        assert data[at : at + 1] == b"*", data[at:]
        end = data.index(b"\r\n", at)
        count, at = int(data[at + 1 : end]), end + 2
        for i in range(count):
            end = data.index(b"\r\n", at)
            size = int(data[at + 1 : end])
            if i == 0:
                names.append(data[end + 2 : end + 2 + size].decode().upper())
            at = end + 2 + size + 2
    return names


def namespace_keys(client: redis.Redis, namespace: str) -> list[bytes]:
    return sorted(client.scan_iter(match=f"{namespace}:*"))


def make_tier(server, namespace: str | None = None, wait: bool = True, **options) -> cachebox.RedisTier:
    """A tier on ``server``, its subscription up (unless ``wait`` is false): a first tier is
    emptied when its subscription comes up, which would race with what a test checks."""
    options.setdefault("ttl", 60)
    tier = cachebox.RedisTier(client_for(server), namespace=namespace or new_namespace(), **options)
    if wait:
        assert subscribed(tier), "the tier did not subscribe within 10 s"
    return tier


def subscribed(*tiers, timeout: float = 10.0) -> bool:
    """Waits until every tier's invalidation subscription is up."""
    deadline = time.monotonic() + timeout
    while not all(t.stats().subscribed for t in tiers):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def wait_until(predicate, timeout: float = 5.0) -> bool:
    """Polls ``predicate`` until it is true (then true) or ``timeout`` seconds pass (false)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
