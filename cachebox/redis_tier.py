"""A shared second tier on Redis or Valkey for cachebox's decorators (``cached(..., l2=tier)``).

The first tier stays the in-process cache: a hit there never talks to Redis. On a miss the one
caller of the key in this process asks Redis; across processes a token-checked lock in Redis
lets one computation run, and the others wait for its value, woken through pub/sub. Redis
failing or slow never fails a call: the call computes, and a breaker stops asking Redis for a
while after repeated failures.

This module imports no Redis client: it drives the client the user built (redis-py, or a
client with its API such as valkey-py's).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import itertools
import os
import pickle
import random
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Generator
from typing import Any, Callable, NamedTuple

from ._core import _decode_key, _encode_key

__all__ = ["RedisTier", "TierStats"]

# The layout of everything the tier writes; a change of layout or envelope changes it, so
# that processes of two versions never read each other's entries.
_FORMAT = "cb1"
_MAGIC = b"\xcb\x01"
_SIGNED = b"\x01"
_UNSIGNED = b"\x00"
_MAC_SIZE = 32
# An L2 hit whose entry has less than this left fills no L1 entry.
_MIN_L1_SECONDS = 0.05

# Each entry has three keys with one hash tag: the value (`v`), the lock (`l`, holding its
# holder's token) and the invalidation count (`x`). A leader remembers the count it saw when it
# took the lock and stores its value only if the count is the same then: an invalidation while
# it computed moves the count, and its result (computed from what may be stale) is not kept.
#
# ACQUIRE: the value and its remaining life; or the lock for this token; or the holder's
# remaining time. One round trip either way. Keys that are not the tier's (another type, or a
# lock with no expiry, which no tier writes) are deleted, so that foreign data in the namespace
# is a miss and never wedges the entry.
_ACQUIRE = """
local function readable(key)
  local v = redis.pcall('GET', key)
  if type(v) == 'table' and v.err then redis.call('DEL', key) return false end
  return v
end
local v = readable(KEYS[1])
if v then return {1, v, redis.call('PTTL', KEYS[1])} end
local seen = readable(KEYS[3]) or ''
if redis.call('PTTL', KEYS[2]) == -1 then redis.call('DEL', KEYS[2]) end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, seen} end
return {3, redis.call('PTTL', KEYS[2]), seen}
"""
# FILL: stores the value unless an invalidation came after the computation started, releases
# this token's lock, and wakes the waiters.
_FILL = """
local stale = (redis.pcall('GET', KEYS[3]) or '') ~= ARGV[6]
if not stale then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
if redis.pcall('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
if stale then return 0 end
return 1
"""
# RELEASE: the computation failed; free the lock at once so another process may try.
_RELEASE = """
if redis.pcall('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""
# INVALIDATE: drop the value and any lock (waiters may compute afresh), move the count, and tell
# every process.
_INVALIDATE = """
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
local c = redis.pcall('INCR', KEYS[3])
if type(c) == 'table' and c.err then redis.call('DEL', KEYS[3]) redis.call('INCR', KEYS[3]) end
redis.call('PEXPIRE', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return n
"""
# CLEAR: a new generation for the function; its old entries are never read again and expire.
_CLEAR = """
local g = redis.pcall('INCR', KEYS[1])
if type(g) == 'table' and g.err then redis.call('DEL', KEYS[1]) g = redis.call('INCR', KEYS[1]) end
redis.call('PUBLISH', ARGV[1], ARGV[2] .. g)
return g
"""
# DROP_CORRUPT: delete an unreadable value, unless it was replaced meanwhile.
_DROP_CORRUPT = """
if redis.pcall('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TierStats(NamedTuple):
    """What a ``RedisTier`` has seen in this process."""

    hits: int
    """Calls answered from Redis."""
    misses: int
    """Calls that found nothing in Redis and computed, holding the lock."""
    errors: int
    """Redis operations that failed or timed out."""
    corrupt: int
    """Entries found that could not be read (garbage, another format, a bad signature)."""
    waits: int
    """Calls that waited for another process's computation."""
    breaker: str
    """``"closed"`` (Redis is used), ``"open"`` (it is not, for a cool-down) or ``"half-open"``."""
    subscribed: bool
    """Whether the invalidation subscription is up."""


class _Pickle:
    """The default serializer: pickle, with a protocol pinned so every version writes alike."""

    def __init__(self, protocol: int = 5) -> None:
        self.protocol = protocol

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=self.protocol)

    def loads(self, data: bytes | memoryview) -> Any:
        return pickle.loads(data)


class _Breaker:
    """Stops using Redis for ``cooldown`` seconds after ``failures`` failures in a row; then
    lets one call probe it."""

    def __init__(self, failures: int, cooldown: float) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._count = 0
        self._state = "closed"
        self._since = 0.0

    def allow(self) -> bool:
        # Closed is the common case, and reading one attribute needs no lock.
        if self._state == "closed":
            return True
        with self._lock:
            if self._state == "closed":
                return True
            # Half-open: one probe at a time; a probe that never reported frees the slot after
            # a cool-down.
            if time.monotonic() - self._since < self.cooldown:
                return False
            self._state = "half-open"
            self._since = time.monotonic()
            return True

    def success(self) -> None:
        if self._state == "closed" and self._count == 0:
            return
        with self._lock:
            self._state = "closed"
            self._count = 0

    def failure(self) -> None:
        with self._lock:
            self._count += 1
            if self._state == "half-open" or self._count >= self.failures:
                self._state = "open"
                self._since = time.monotonic()

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == "open" and time.monotonic() - self._since >= self.cooldown:
                return "half-open"
            return self._state

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._state = "closed"


class _Counters:
    __slots__ = ("corrupt", "errors", "hits", "lock", "misses", "waits")

    def __init__(self) -> None:
        self.hits = self.misses = self.errors = self.corrupt = self.waits = 0
        self.lock = threading.Lock()

    def bump(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


def _is_async_client(client: Any) -> bool:
    execute = getattr(client, "execute_command", None)
    return inspect.iscoroutinefunction(execute)


def _function_name(func: Any) -> str:
    module = getattr(func, "__module__", None) or "?"
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return f"{module}.{qualname}"


def _serializer(serializer: Any) -> Any:
    if serializer is None:
        return _Pickle()
    if isinstance(serializer, tuple) and len(serializer) == 2 and all(map(callable, serializer)):
        dumps, loads = serializer

        class _Pair:
            pass

        pair = _Pair()
        pair.dumps = dumps  # type: ignore[attr-defined]
        pair.loads = loads  # type: ignore[attr-defined]
        return pair
    if callable(getattr(serializer, "dumps", None)) and callable(getattr(serializer, "loads", None)):
        return serializer
    raise TypeError("serializer must have dumps() and loads(), or be a (dumps, loads) pair")


# Checks of what callers without a type checker pass (the annotations cannot promise it).
def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(name: str, value: Any, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def _bound_timeouts(client: Any, op_timeout: float) -> None:
    """Gives the client's connections a socket timeout where it has none, so that no Redis
    operation can block a call for ever (a sync client cannot be interrupted otherwise)."""
    pools = []
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pools.append(getattr(pool, "connection_kwargs", None))
    nodes = getattr(client, "nodes_manager", None)
    if nodes is not None:
        pools.append(getattr(nodes, "connection_kwargs", None))
    for kwargs in pools:
        if isinstance(kwargs, dict):
            for name in ("socket_timeout", "socket_connect_timeout"):
                if kwargs.get(name) is None:
                    kwargs[name] = op_timeout


def _warn_about_retries(client: Any) -> None:
    """Each retry of the client can take a whole socket timeout: say so when there are many."""
    get_retry = getattr(client, "get_retry", None)
    retry = get_retry() if callable(get_retry) else None
    retries = getattr(retry, "_retries", 0)
    if isinstance(retries, int) and retries > 1:
        warnings.warn(
            f"the Redis client retries each operation {retries} times: while Redis is slow, each "
            "call may wait that many socket timeouts before the tier gives up (build the client "
            "with retry=Retry(NoBackoff(), 1) or fewer)",
            RuntimeWarning,
            stacklevel=3,
        )


def _is_a(error: BaseException, name: str) -> bool:
    """Whether ``error`` is of the client's exception class ``name`` (this module imports no
    client, so it knows their classes by name)."""
    return any(cls.__name__ == name for cls in type(error).__mro__)


def _wrong_type(error: BaseException) -> bool:
    """A reply of the server: the key holds another type than the command works on."""
    return _is_a(error, "ResponseError") and str(error).startswith("WRONGTYPE")


class _Lane:
    """A lane straight to a pooled connection of a plain client (not a cluster's, not a
    single-connection one). The client's command path, with its retries and hooks, costs more
    than the round trip itself on a fast network, and an L2 hit is one round trip. The
    connection is dropped after any error but a reply of the server's, as the client's own path
    would, so that a reply half read is never taken for the next one's. `_DirectLane` drives a
    sync client's pool, `_AsyncDirectLane` a redis.asyncio one's."""

    __slots__ = ("_name", "_pool")
    _async = False

    def __init__(self, pool: Any, name: tuple[str, ...]) -> None:
        self._pool = pool
        self._name = name

    @classmethod
    def of(cls, client: Any) -> Any:
        """The lane of ``client``, or None when it needs its own command path."""
        pool = getattr(client, "connection_pool", None)
        if (
            pool is None
            or getattr(client, "connection", None) is not None
            # An async single-connection client takes its connection on first use only.
            or getattr(client, "single_connection_client", False) is True
            or hasattr(client, "nodes_manager")
            or not all(callable(getattr(pool, m, None)) for m in ("get_connection", "release"))
            or _is_async_client(client) is not cls._async
        ):
            return None
        try:
            parameter = inspect.signature(pool.get_connection).parameters.get("command_name")
        except (TypeError, ValueError):
            return None
        # Older clients want the command's name; newer ones warn when they get it.
        needs_name = parameter is not None and parameter.default is inspect.Parameter.empty
        return cls(pool, ("EVALSHA",) if needs_name else ())


def _peeked(replies: list[Any]) -> tuple[Any, Any]:
    """The value and PTTL of a GET+PTTL pair, each read whole (a server's error included)."""
    raw, pttl = replies
    if isinstance(raw, BaseException) and _wrong_type(raw):
        raw = None  # not the tier's: the script deletes it
    for reply in (raw, pttl):
        if isinstance(reply, BaseException):
            raise reply
    return raw, pttl


class _DirectLane(_Lane):
    """The lane of a sync client."""

    __slots__ = ()

    def get_with_pttl(self, key: str) -> tuple[Any, Any]:
        """GET and PTTL of ``key``, pipelined: one round trip, no script to run."""
        pool = self._pool
        connection = pool.get_connection(*self._name)
        try:
            connection.send_packed_command(connection.pack_commands([("GET", key), ("PTTL", key)]))
            # Both replies are read even when the first is an error, or the second would be
            # taken for the next command's.
            replies = []
            for _ in range(2):
                try:
                    replies.append(connection.read_response())
                except Exception as error:
                    if not _is_a(error, "ResponseError"):
                        raise
                    replies.append(error)
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)
        return _peeked(replies)

    def evalsha(self, sha: str, keys: list[Any], args: list[Any]) -> Any:
        pool = self._pool
        connection = pool.get_connection(*self._name)
        try:
            connection.send_packed_command(connection.pack_command("EVALSHA", sha, len(keys), *keys, *args))
            return connection.read_response()
        except BaseException as error:
            if not _is_a(error, "ResponseError"):
                connection.disconnect()
            raise
        finally:
            pool.release(connection)


class _AsyncDirectLane(_Lane):
    """The lane of a redis.asyncio client. A task may be cancelled (or time out) at any await,
    between a send and its read too: the connection is then dropped before it goes back to the
    pool, by a cleanup that a second cancellation cannot cut short."""

    __slots__ = ()
    _async = True

    async def get_with_pttl(self, key: str) -> tuple[Any, Any]:
        """GET and PTTL of ``key``, pipelined: one round trip, no script to run."""
        return _peeked(await self._exchange([("GET", key), ("PTTL", key)]))

    async def evalsha(self, sha: str, keys: list[Any], args: list[Any]) -> Any:
        (reply,) = await self._exchange([("EVALSHA", sha, len(keys), *keys, *args)])
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def _exchange(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Sends ``commands`` in one packet and reads a reply for each (a server's error as the
        reply, so that every reply is read whole)."""
        pool = self._pool
        connection = await pool.get_connection(*self._name)
        clean = False
        try:
            if len(commands) == 1:
                packed = connection.pack_command(*commands[0])
            else:
                packed = connection.pack_commands(commands)
            await connection.send_packed_command(packed)
            replies = []
            for _ in commands:
                try:
                    replies.append(await connection.read_response())
                except Exception as error:
                    if not _is_a(error, "ResponseError"):
                        raise
                    replies.append(error)
            clean = True
            return replies
        finally:
            if clean:
                released = pool.release(connection)
                if inspect.isawaitable(released):  # a coroutine in some versions, not in others
                    await released
            else:
                await _discard(pool, connection)


async def _awaited(result: Any) -> Any:
    # Some versions of redis.asyncio release or disconnect in a coroutine, others at once.
    if inspect.isawaitable(result):
        return await result
    return result


# Cleanups in flight: the loop holds its tasks weakly only.
_cleanups: set[asyncio.Task[None]] = set()


async def _discard(pool: Any, connection: Any) -> None:
    """Drops ``connection`` (it may hold an unread reply), then gives it back to ``pool``, which
    connects it afresh on its next use. In a task of its own, shielded: the caller may be
    cancelled again while it waits, and the connection must still never go back as it is."""
    task = asyncio.ensure_future(_drop(pool, connection))
    _cleanups.add(task)
    task.add_done_callback(_cleanups.discard)
    await asyncio.shield(task)


async def _drop(pool: Any, connection: Any) -> None:
    try:
        try:
            # nowait: closing the socket is enough, waiting for the peer only takes time.
            dropping = connection.disconnect(nowait=True)
        except TypeError:
            dropping = connection.disconnect()
        await _awaited(dropping)
    except Exception:
        pass  # the caller's error is the one that matters
    finally:
        await _awaited(pool.release(connection))


class RedisTier:
    """A second tier shared by every process that uses the same Redis and namespace.

    ``client`` is a Redis client the caller built (redis-py's ``Redis`` or ``RedisCluster``, or
    valkey-py's). ``ttl`` is an entry's lifetime in Redis; ``lock_timeout`` how long one
    computation may hold the cross-process lock; ``lock_wait`` how long a caller waits for
    another process's computation before it computes itself (``lock_timeout`` by default).
    ``secret`` signs stored values with HMAC-SHA256: a value whose signature fails is a miss and
    is never unpickled. ``serializer`` has ``dumps``/``loads`` (pickle, protocol 5, by
    default). ``version`` goes into every key: change it when what a function returns changes
    shape. After ``breaker_failures`` failed operations in a row Redis is left alone for
    ``breaker_cooldown`` seconds. ``fail_open=False`` makes Redis errors raise instead.
    """

    def __init__(
        self,
        client: Any,
        *,
        namespace: str,
        ttl: float,
        lock_timeout: float = 30.0,
        lock_wait: float | None = None,
        secret: bytes | None = None,
        serializer: Any = None,
        version: str | int = 1,
        op_timeout: float = 0.25,
        ttl_jitter: float = 0.0,
        l1_ttl: float | None = None,
        max_value_bytes: int = 16 * 1024 * 1024,
        breaker_failures: int = 5,
        breaker_cooldown: float = 5.0,
        fail_open: bool = True,
    ) -> None:
        if not _is_str(namespace) or not namespace:
            raise TypeError("namespace must be a non-empty str")
        if "{" in namespace or "}" in namespace:
            raise ValueError("namespace must not contain '{' or '}' (Redis Cluster hash tags)")
        for method in ("register_script", "pubsub", "get"):
            if not callable(getattr(client, method, None)):
                raise TypeError(
                    f"client must be a Redis client (it has no {method}()), got {type(client).__name__}"
                )
        pool = getattr(client, "connection_pool", None)
        if getattr(pool, "connection_kwargs", {}).get("decode_responses"):
            raise ValueError("the tier stores bytes: give it a client built with decode_responses=False")
        if secret is not None and not isinstance(secret, (bytes, bytearray)):
            raise TypeError("secret must be bytes")
        if not (_is_str(version) or _is_int(version)):
            raise TypeError("version must be a str or an int")
        if not _is_number(ttl_jitter) or not 0 <= ttl_jitter < 1:
            raise ValueError("ttl_jitter must be in [0, 1)")
        if not _is_int(breaker_failures) or breaker_failures < 1:
            raise ValueError("breaker_failures must be a positive int")
        if not _is_int(max_value_bytes) or max_value_bytes < 1:
            raise ValueError("max_value_bytes must be a positive int")
        self.client = client
        self.namespace = namespace
        self.ttl: float = _positive("ttl", ttl)
        self.lock_timeout: float = _positive("lock_timeout", lock_timeout)
        self.lock_wait: float = _positive("lock_wait", lock_wait, allow_none=True) or self.lock_timeout
        self.op_timeout: float = _positive("op_timeout", op_timeout)
        self.l1_ttl: float | None = _positive("l1_ttl", l1_ttl, allow_none=True)
        self.ttl_jitter = float(ttl_jitter)
        self.max_value_bytes = max_value_bytes
        self.fail_open = bool(fail_open)
        self.version = str(version)
        self._secret = bytes(secret) if secret is not None else None
        self._serializer = _serializer(serializer)
        # pickle reads a buffer in place; a serializer of the user's gets bytes.
        self._copy_payload = not isinstance(self._serializer, _Pickle)
        self._is_async = _is_async_client(client)
        self._prefix = f"{namespace}:{_FORMAT}:"
        self._channel = f"{self._prefix}events"
        self._breaker = _Breaker(breaker_failures, _positive("breaker_cooldown", breaker_cooldown))
        # The lane of the client's kind (its operations are coroutines for an async one).
        self._lane = (_AsyncDirectLane if self._is_async else _DirectLane).of(client)
        if not self._is_async:
            _bound_timeouts(client, self.op_timeout)
            _warn_about_retries(client)
        self._scripts = {
            name: client.register_script(body)
            for name, body in (
                ("acquire", _ACQUIRE),
                ("fill", _FILL),
                ("release", _RELEASE),
                ("invalidate", _INVALIDATE),
                ("clear", _CLEAR),
                ("drop_corrupt", _DROP_CORRUPT),
            )
        }
        self._bindings: dict[str, weakref.WeakSet[_Binding]] = {}
        self._fresh_process()
        _forked_tiers.add(self)
        # Subscribe at once, in the background (Redis may be down: nothing waits for it).
        self._ensure_listener()

    # ---- process state: rebuilt in a forked child ----

    def _fresh_process(self) -> None:
        self._pid = os.getpid()
        self._token_prefix = os.urandom(12).hex() + ":"
        self._token_count = itertools.count()
        self._state_lock = threading.Lock()
        self._counters = _Counters()
        self._breaker.reset()
        self._waiters: dict[bytes, set[Any]] = {}
        self._listener: threading.Thread | None = None
        self._listener_task: asyncio.Task[None] | None = None
        self._subscribed = False
        self._closed = False
        for bindings in self._bindings.values():
            for binding in list(bindings):
                binding._gen = None

    def _after_fork(self) -> None:
        # The child has no listener thread, and locks another thread held at the fork would
        # never be released: start over. (redis-py's pool notices the new pid by itself.)
        self._fresh_process()
        for bindings in self._bindings.values():
            for binding in list(bindings):
                binding._link.drop_all()

    # ---- public ----

    def stats(self) -> TierStats:
        """Counts of what this tier has seen in this process, and its breaker's state."""
        c = self._counters
        with c.lock:
            return TierStats(
                c.hits, c.misses, c.errors, c.corrupt, c.waits, self._breaker.state, self._subscribed
            )

    def close(self) -> None:
        """Stops listening for invalidations (the tier is not used again)."""
        self._closed = True
        listener = self._listener
        if listener is not None and listener is not threading.current_thread():
            listener.join(timeout=5)

    def __repr__(self) -> str:
        return f"RedisTier(namespace={self.namespace!r}, ttl={self.ttl!r})"

    # ---- for the decorators ----

    def _bind(self, func: Any, link: Any, is_async: bool) -> _Binding:
        if is_async != self._is_async:
            if is_async:
                raise TypeError("an async function needs an async Redis client (redis.asyncio) for l2=")
            raise TypeError("a sync function needs a sync Redis client for l2= (this one is async)")
        binding = _Binding(self, _function_name(func), link)
        with self._state_lock:
            self._bindings.setdefault(binding.tag, weakref.WeakSet()).add(binding)
        # Subscribe now, in the background: first-tier entries made before the subscription is
        # up are dropped when it comes up (they may have missed an invalidation).
        self._ensure_listener()
        return binding

    # ---- Redis operations, each guarded ----

    def _prepare(self) -> None:
        """Before an operation: make sure the listener runs (a forked child has started afresh
        already, through the at-fork hook)."""
        if self._listener is None:
            self._ensure_listener()

    def _usable(self) -> bool:
        self._prepare()
        return self._breaker.allow()

    def _failed(self, error: BaseException) -> None:
        self._counters.bump("errors")
        self._breaker.failure()
        if not self.fail_open:
            raise error

    # ---- the drivers of the protocol steps (see `_Binding`) ----

    def _drive(self, steps: _Steps) -> Any:
        """Runs ``steps``: here and now for a sync client, as the returned awaitable for an
        async one."""
        if self._is_async:
            return self._drive_async(steps)
        op, result = _advance(steps, None, None)
        while op is not None:
            try:
                answer = self._do(op)
            except BaseException as error:
                op, result = _advance(steps, None, error)
            else:
                op, result = _advance(steps, answer, None)
        return result

    def _do(self, op: tuple[Any, ...]) -> Any:
        kind = op[0]
        if kind == _RUN:
            script = self._scripts[op[1]]
            lane = self._lane
            if lane is None:
                reply = script(keys=op[2], args=op[3])
            else:
                try:
                    reply = lane.evalsha(script.sha, op[2], op[3])
                except Exception as error:
                    if not _is_a(error, "NoScriptError"):
                        raise
                    # The server lost its scripts (a restart, SCRIPT FLUSH): the client's
                    # script object loads it again.
                    reply = script(keys=op[2], args=op[3])
            self._breaker.success()
            return reply
        if kind == _CALL:
            return op[1](*op[2], **(op[3] or {}))
        if kind == _GET:
            raw = self.client.get(op[1])
            self._breaker.success()
            return raw
        if kind == _PEEK:
            lane = self._lane
            if lane is None:
                return None
            raw, pttl = lane.get_with_pttl(op[1])
            self._breaker.success()
            return None if raw is None else (1, raw, pttl)
        if kind == _WATCH:
            return self._watch(op[1], _Waiter())
        waiter, seconds = op[1], op[2]
        waiter.event.wait(seconds)
        waiter.event.clear()
        return None

    async def _drive_async(self, steps: _Steps) -> Any:
        op, result = _advance(steps, None, None)
        while op is not None:
            try:
                answer = await self._do_async(op)
            except BaseException as error:
                op, result = _advance(steps, None, error)
            else:
                op, result = _advance(steps, answer, None)
        return result

    async def _do_async(self, op: tuple[Any, ...]) -> Any:
        # An async client can be given a deadline: no operation outlasts `op_timeout`.
        kind = op[0]
        if kind == _RUN:
            reply = await _bounded(self._run_async(op[1], op[2], op[3]), self.op_timeout)
            self._breaker.success()
            return reply
        if kind == _CALL:
            return await op[1](*op[2], **(op[3] or {}))
        if kind == _GET:
            raw = await _bounded(self.client.get(op[1]), self.op_timeout)
            self._breaker.success()
            return raw
        if kind == _PEEK:
            lane = self._lane
            if lane is None:
                return None
            raw, pttl = await _bounded(lane.get_with_pttl(op[1]), self.op_timeout)
            self._breaker.success()
            return None if raw is None else (1, raw, pttl)
        if kind == _WATCH:
            return self._watch(op[1], _AsyncWaiter())
        waiter, seconds = op[1], op[2]
        try:
            await asyncio.wait_for(waiter.event.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        waiter.event.clear()
        return None

    async def _run_async(self, name: str, keys: list[Any], args: list[Any]) -> Any:
        script = self._scripts[name]
        lane = self._lane
        if lane is not None:
            try:
                return await lane.evalsha(script.sha, keys, args)
            except Exception as error:
                if not _is_a(error, "NoScriptError"):
                    raise
                # The server lost its scripts: the client's script object loads it again.
        return await script(keys=keys, args=args)

    # ---- the envelope ----

    def _seal(self, key: str, value: Any) -> bytes | None:
        try:
            payload = self._serializer.dumps(value)
        except Exception:
            return None
        if not isinstance(payload, (bytes, bytearray)) or len(payload) > self.max_value_bytes:
            return None
        if self._secret is None:
            return _MAGIC + _UNSIGNED + payload
        mac = hmac.new(self._secret, key.encode() + b"\0" + payload, hashlib.sha256).digest()
        return _MAGIC + _SIGNED + mac + payload

    def _open(self, key: str, raw: Any) -> tuple[bool, Any]:
        if not isinstance(raw, (bytes, bytearray)) or raw[:2] != _MAGIC:
            return False, None
        flag = raw[2:3]
        payload: bytes | bytearray | memoryview
        if self._secret is not None:
            if flag != _SIGNED or len(raw) < 3 + _MAC_SIZE:
                return False, None
            mac, payload = raw[3 : 3 + _MAC_SIZE], raw[3 + _MAC_SIZE :]
            good = hmac.new(self._secret, key.encode() + b"\0" + payload, hashlib.sha256).digest()
            if not hmac.compare_digest(mac, good):
                return False, None
        elif flag == _UNSIGNED:
            payload = raw[3:] if self._copy_payload else memoryview(raw)[3:]
        else:
            # Signed by a tier with a secret this one lacks: it cannot be vouched for.
            return False, None
        try:
            return True, self._serializer.loads(payload)
        except Exception:
            return False, None

    def _token(self) -> str:
        """A lock token no other computation anywhere uses: this process's random prefix
        (drawn again after a fork) and a count."""
        return f"{self._token_prefix}{next(self._token_count)}"

    def _expiry_ms(self) -> int:
        ttl = self.ttl
        if self.ttl_jitter:
            ttl *= 1.0 - self.ttl_jitter * _jitter.random()
        return max(1, int(ttl * 1000))

    def _l1_seconds(self, seconds: float, since: float) -> float | None:
        """How long the first tier may keep a value Redis keeps ``seconds`` from the moment
        ``since`` (a ``time.monotonic()`` taken before the request): never past Redis's copy."""
        seconds -= time.monotonic() - since
        if self.l1_ttl is not None:
            seconds = min(seconds, self.l1_ttl)
        return seconds if seconds >= _MIN_L1_SECONDS else None

    # ---- invalidation listener ----

    def _ensure_listener(self) -> None:
        if self._is_async:
            self._ensure_async_listener()
            return
        listener = self._listener
        if listener is not None or self._closed:
            return
        with self._state_lock:
            if self._listener is None:
                # The thread holds the tier weakly: a tier nobody uses any more stops it.
                thread = threading.Thread(
                    target=_listen,
                    args=(weakref.ref(self),),
                    name=f"cachebox-l2-{self.namespace}",
                    daemon=True,
                )
                self._listener = thread
                thread.start()

    def _ensure_async_listener(self) -> None:
        """An async client's listener is a task of the running loop (its connections belong
        to one loop); a new loop (another `asyncio.run`) gets a new one."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = self._listener_task
        if self._closed or (task is not None and not task.done() and task.get_loop() is loop):
            return
        self._subscribed = False
        self._listener_task = loop.create_task(_listen_async(weakref.ref(self)))

    def _on_message(self, message: Any, channel: bytes) -> None:
        """One message of the subscription (from either listener)."""
        kind = message.get("type")
        if kind in ("subscribe", b"subscribe"):
            self._on_subscribed()
        elif kind in ("message", b"message") and _as_bytes(message.get("channel")) == channel:
            data = message.get("data")
            if isinstance(data, (bytes, bytearray, str)):
                self._dispatch(_as_bytes(data))

    def _on_subscribed(self) -> None:
        # Whatever was published while the subscription was down is lost: forget every first-tier
        # entry, and re-read every generation.
        self._subscribed = True
        for binding in self._all_bindings():
            binding._gen = None
            binding._link.drop_all()

    def _all_bindings(self) -> list[_Binding]:
        with self._state_lock:
            return [b for bindings in self._bindings.values() for b in bindings]

    def _dispatch(self, data: bytes) -> None:
        kind, _, rest = data.partition(b" ")
        if kind in (b"f", b"w"):
            self._wake(rest)
        elif kind == b"d":
            tag, digest, encoded = (rest.split(b" ", 2) + [b"", b""])[:3]
            self._wake(digest)
            bindings = self._bindings_of(tag)
            if not bindings:
                return
            try:
                key = _decode_key(encoded)
            except ValueError:
                key = _UNDECODABLE
            for binding in bindings:
                if key is _UNDECODABLE:
                    binding._link.drop_all()
                else:
                    binding._link.drop_key(key)
        elif kind == b"c":
            tag, _, gen = rest.partition(b" ")
            for binding in self._bindings_of(tag):
                binding._gen = int(gen) if gen.isdigit() else None
                binding._link.drop_all()

    def _bindings_of(self, tag: bytes) -> list[_Binding]:
        with self._state_lock:
            return list(self._bindings.get(tag.decode("ascii", "replace"), ()))

    def _wake(self, digest: bytes) -> None:
        with self._state_lock:
            waiters = list(self._waiters.get(digest, ()))
        for waiter in waiters:
            waiter.set()

    def _watch(self, digest: bytes, event: Any) -> Any:
        with self._state_lock:
            self._waiters.setdefault(digest, set()).add(event)
        return event

    def _unwatch(self, digest: bytes, event: Any) -> None:
        with self._state_lock:
            events = self._waiters.get(digest)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[digest]


_UNDECODABLE = object()
# The tier's own random numbers (jitter): drawing from the `random` module's would move the
# sequence a program seeded for itself, from threads it does not know about.
_jitter = random.Random()
_forked_tiers: weakref.WeakSet[RedisTier] = weakref.WeakSet()


def _reset_after_fork() -> None:
    _jitter.seed()  # or every child would draw the same jitter as its siblings
    for tier in list(_forked_tiers):
        tier._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _listen(tier_ref: Callable[[], RedisTier | None]) -> None:
    """The invalidation listener: one thread per tier and process."""
    backoff = 0.05
    while True:
        tier = tier_ref()
        if tier is None or tier._closed or tier._pid != os.getpid():
            return
        pubsub = None
        try:
            pubsub = tier.client.pubsub()
            pubsub.subscribe(tier._channel)
            channel = tier._channel.encode()
            del tier
            while True:
                tier = tier_ref()
                if tier is None or tier._closed:
                    return
                del tier
                message = pubsub.get_message(timeout=0.5)
                if message is None:
                    continue
                tier = tier_ref()
                if tier is None:
                    return
                if message.get("type") in ("subscribe", b"subscribe"):
                    backoff = 0.05
                tier._on_message(message, channel)
                del tier
        except Exception:
            _subscription_lost(tier_ref)
        finally:
            if pubsub is not None:
                try:
                    pubsub.close()
                except Exception:
                    pass
        time.sleep(backoff * (0.5 + _jitter.random()))
        backoff = min(backoff * 2, 2.0)


def _subscription_lost(tier_ref: Callable[[], RedisTier | None]) -> None:
    tier = tier_ref()
    if tier is not None:
        tier._subscribed = False
        tier._counters.bump("errors")


async def _listen_async(tier_ref: Callable[[], RedisTier | None]) -> None:
    """The invalidation listener of an async client: a task of the loop that uses the tier."""
    backoff = 0.05
    while True:
        tier = tier_ref()
        if tier is None or tier._closed:
            return
        pubsub = None
        try:
            # A cluster client learns its slots when it first runs a command; its pub/sub needs
            # them already.
            initialize = getattr(tier.client, "initialize", None)
            if inspect.iscoroutinefunction(initialize):
                await _bounded(initialize(), tier.op_timeout)
            pubsub = tier.client.pubsub()
            await _bounded(pubsub.subscribe(tier._channel), tier.op_timeout)
            channel = tier._channel.encode()
            del tier
            while True:
                message = await pubsub.get_message(timeout=0.5)
                tier = tier_ref()
                if tier is None or tier._closed:
                    return
                if message is not None:
                    if message.get("type") in ("subscribe", b"subscribe"):
                        backoff = 0.05
                    tier._on_message(message, channel)
                del tier
        except asyncio.CancelledError:
            raise
        except Exception:
            _subscription_lost(tier_ref)
            if _cancelling():
                # Cancelled as the subscription failed (the loop is closing): wait_for before
                # 3.12 can raise the failure and drop the cancellation, which must not be lost.
                raise asyncio.CancelledError from None
        finally:
            if pubsub is not None:
                try:
                    close = getattr(pubsub, "aclose", None) or pubsub.close
                    await close()
                except Exception:
                    pass
        await asyncio.sleep(backoff * (0.5 + _jitter.random()))
        backoff = min(backoff * 2, 2.0)


if sys.version_info >= (3, 11):

    async def _bounded(awaitable: Any, seconds: float) -> Any:
        # Cancels this task at the deadline, as wait_for does, without the task wait_for wraps
        # each awaitable in before 3.12 (which costs more than the rest of the tier's work for
        # an L2 hit).
        async with asyncio.timeout(seconds):
            return await awaitable

else:

    def _bounded(awaitable: Any, seconds: float) -> Any:
        return asyncio.wait_for(awaitable, seconds)


def _cancelling() -> bool:
    """Whether the running task has been asked to stop (known from 3.11 on)."""
    task = asyncio.current_task()
    return task is not None and getattr(task, "cancelling", lambda: 0)() > 0


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    return bytes(value) if value is not None else b""


# What a protocol step (a generator of `_Binding`) asks its driver to do; the sync driver does
# it in the calling thread, the async one awaits it. Writing each protocol once, as steps, keeps
# the sync and the async tier the same.
_RUN = "run"  # (_RUN, script, keys, args): one script, one round trip
_GET = "get"  # (_GET, key): one GET
# (_PEEK, key): ``(1, value, PTTL)`` of a value key in one round trip if the driver can do that
# more cheaply than the acquiring script (which looks at the value first anyway); else None, at
# once and with no traffic.
_PEEK = "peek"
_CALL = "call"  # (_CALL, func, args, kwargs): the user's function (awaited when async)
_WATCH = "watch"  # (_WATCH, digest): a waiter woken by the listener for that entry
_WAIT = "wait"  # (_WAIT, waiter, seconds): sleep until woken or the time is up

_Steps = Generator[tuple[Any, ...], Any, Any]

# When a binding peeks: while the share of its first-tier misses that find the value in Redis
# is at least this. A peek saves each hit what the script costs over GET+PTTL, a fifth of a
# round trip or so (on loopback, sync and async alike), and costs each miss a whole round trip
# (the script follows it); so it pays while hits * 0.2 > misses * 1, above a hit rate of about
# 1 / 1.2. Near there either way costs about the same.
_PEEK_ABOVE = 0.8
# The weight of each outcome in that running estimate: about the last eight calls count. From
# hopeful, two misses stop the peeks; after a run of misses, a dozen hits or so bring them back.
_LEARNING_RATE = 0.125


def _advance(steps: _Steps, answer: Any, error: BaseException | None) -> tuple[Any, Any]:
    """Gives ``steps`` the answer to its last operation (or throws the error it raised):
    ``(next operation, None)``, or ``(None, result)`` when the steps are done."""
    try:
        return (steps.send(answer) if error is None else steps.throw(error)), None
    except StopIteration as done:
        return None, done.value


class _Waiter:
    """A thread waiting for a message about one entry."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()

    def set(self) -> None:
        self.event.set()


class _AsyncWaiter:
    """A coroutine waiting for a message about one entry (set from the listener, whatever
    thread or loop that runs in)."""

    __slots__ = ("event", "loop")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    def set(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:  # its loop is closed: nobody waits any more
            pass


class _Binding:
    """One decorated function's view of its tier (what the decorator calls on a miss)."""

    __slots__ = ("__weakref__", "_found", "_gen", "_link", "name", "tag", "tier")

    def __init__(self, tier: RedisTier, name: str, link: Any) -> None:
        self.tier = tier
        self.name = name
        self.tag = hashlib.blake2b(f"{tier.version}\0{name}".encode(), digest_size=8).hexdigest()
        self._link = link
        self._gen: int | None = None
        # How often a first-tier miss finds the value in Redis, lately (see `_PEEK_ABOVE`):
        # hopeful at first, so that a process joining warm peers peeks from its first call.
        self._found = 1.0

    # ---- the entry points: sync, or awaitables with an async client ----

    def load(self, key: Any, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> Any:
        """A first-tier miss of ``key``: ``(value, seconds the first tier may keep it or None,
        whether the function ran)`` (an awaitable of it with an async client)."""
        return self.tier._drive(self._load(key, func, args, kwargs))

    def invalidate(self, key: Any, here: bool) -> Any:
        """Drops ``key``'s entry in Redis and in every process's first tier: whether Redis or
        (``here``) this first tier had it."""
        return self.tier._drive(self._invalidate(key, here))

    def clear(self) -> Any:
        """Every entry of the function, in Redis (a new generation) and in every process."""
        return self.tier._drive(self._clear())

    # ---- the protocols, as steps ----

    def _generation(self) -> _Steps:
        gen = self._gen
        if gen is None:
            try:
                raw = yield (_GET, f"{self.tier._prefix}gen:{self.tag}")
            except Exception as error:
                if not _wrong_type(error):
                    raise
                raw = None  # foreign data: generation 0 until a clear replaces it
            gen = int(raw) if raw is not None and _as_bytes(raw).isdigit() else 0
            self._gen = gen
        return gen

    def _keys(self, encoded: bytes, gen: int) -> tuple[bytes, list[str]]:
        digest = hashlib.blake2b(_digest_input(self.tag, gen, encoded), digest_size=16).hexdigest()
        base = f"{self.tier._prefix}{{{digest}}}:"
        return digest.encode(), [base + "v", base + "l", base + "x"]

    def _load(self, key: Any, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> _Steps:
        tier = self.tier
        encoded = _encode_key(key)
        if not tier._usable():
            return (yield from self._compute(func, args, kwargs))
        try:
            digest, keys = self._keys(encoded, (yield from self._generation()))
        except Exception as error:
            tier._failed(error)
            return (yield from self._compute(func, args, kwargs))
        # What only the acquiring script needs is made when it is first sent: an L2 hit through a
        # peek never needs it.
        token = ""
        lock_ms = max(1, int(tier.lock_timeout * 1000))
        deadline = 0.0
        waiter = None
        pause = 0.005
        # A driver that can read a value more cheaply than the script does that first, while
        # hits are likely enough to pay for the round trip a peek that misses wastes; the
        # script decides the rest.
        peek = tier._lane is not None and self._found >= _PEEK_ABOVE
        learn = True
        try:
            while True:
                sent = time.monotonic()
                try:
                    reply = None
                    if peek:
                        peek = learn = False
                        reply = yield (_PEEK, keys[0])
                        self._learn(reply is not None)
                    if reply is None:
                        if not token:
                            token = tier._token()
                            deadline = sent + tier.lock_wait
                        reply = yield (_RUN, "acquire", keys, [token, lock_ms])
                except Exception as error:
                    tier._failed(error)
                    return (yield from self._compute(func, args, kwargs))
                kind = int(reply[0])
                if learn:
                    # Once a call: a caller waiting for another process asks again and again.
                    learn = False
                    self._learn(kind == 1)
                if kind == 1:
                    ok, value = tier._open(keys[0], reply[1])
                    if ok:
                        tier._counters.bump("hits")
                        return value, tier._l1_seconds(self._seconds_left(int(reply[2])), sent), False
                    tier._counters.bump("corrupt")
                    try:
                        yield (_RUN, "drop_corrupt", keys[:1], [reply[1]])
                    except Exception as error:
                        tier._failed(error)
                        return (yield from self._compute(func, args, kwargs))
                    continue
                if kind == 2:
                    tier._counters.bump("misses")
                    return (yield from self._lead(digest, keys, token, reply[1], func, args, kwargs))
                # Another process computes it. Listen for its value before asking again, so
                # that a fill between this reply and the listening is not missed.
                if waiter is None:
                    tier._counters.bump("waits")
                    waiter = yield (_WATCH, digest)
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    # Waited long enough: compute here, and offer the value to the others.
                    return (yield from self._lead(digest, keys, token, reply[2], func, args, kwargs))
                holder_left = max(int(reply[1]), 1) / 1000
                if tier._subscribed:
                    # A fill, a release or an invalidation wakes us; otherwise the lock expires.
                    wait = min(left, holder_left + 0.002)
                else:
                    # No subscription to wake us: look again now and then, backing off.
                    wait = min(left, holder_left + 0.002, pause)
                    pause = min(pause * 2, 0.25)
                yield (_WAIT, waiter, wait)
        finally:
            if waiter is not None:
                tier._unwatch(digest, waiter)

    def _learn(self, found: bool) -> None:
        # No lock: two threads updating at once lose one update, which only blurs the estimate.
        self._found += _LEARNING_RATE * (found - self._found)

    def _seconds_left(self, pttl: int) -> float:
        # -1: the value has no expiry (not written by a tier); -2: it expired after it was read.
        if pttl == -1:
            return self.tier.ttl
        return max(pttl, 0) / 1000

    def _compute(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> _Steps:
        """Redis is unusable: compute, and let the first tier keep the value as long as the
        second would have."""
        value = yield (_CALL, func, args, kwargs)
        return value, self.tier._l1_seconds(self.tier.ttl, time.monotonic()), True

    def _lead(
        self,
        digest: bytes,
        keys: list[str],
        token: str,
        seen: bytes,
        func: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
    ) -> _Steps:
        tier = self.tier
        release = (_RUN, "release", keys[1:2], [token, tier._channel, b"w " + digest])
        try:
            value = yield (_CALL, func, args, kwargs)
        except BaseException:
            try:
                yield release
            except Exception as error:
                self._note(error)
            raise
        payload = tier._seal(keys[0], value)
        if payload is None:
            # Not serializable (or too big) for Redis: the first tier still keeps it.
            try:
                yield release
            except Exception as error:
                self._note(error)
            return value, tier._l1_seconds(tier.ttl, time.monotonic()), True
        expiry_ms = tier._expiry_ms()
        sent = time.monotonic()
        try:
            stored = yield (
                _RUN,
                "fill",
                keys,
                [token, payload, expiry_ms, tier._channel, b"f " + digest, seen],
            )
        except Exception as error:
            self._note(error)
            if _is_a(error, "ResponseError"):
                # The server refused the value (out of memory, say) but answers: free the lock
                # now, or the processes waiting for it would wait until it expires.
                try:
                    yield release
                except Exception as again:
                    self._note(again)
            return value, tier._l1_seconds(tier.ttl, sent), True
        # Not stored: an invalidation came while it was computed; the caller gets the value, but
        # no tier keeps it.
        return value, (tier._l1_seconds(expiry_ms / 1000, sent) if int(stored) else None), True

    def _note(self, error: BaseException) -> None:
        # A failure after the function ran: the caller gets its value whatever `fail_open` says.
        self.tier._counters.bump("errors")
        self.tier._breaker.failure()

    def _invalidate(self, key: Any, here: bool) -> _Steps:
        tier = self.tier
        encoded = _encode_key(key)
        tier._prepare()
        try:
            digest, keys = self._keys(encoded, (yield from self._generation()))
            # The count outlives any computation that may have seen the one before it.
            count_ms = max(1, int(max(tier.ttl, tier.lock_timeout, tier.lock_wait) * 2000))
            message = b" ".join((b"d", self.tag.encode(), digest, encoded))
            removed = yield (_RUN, "invalidate", keys, [count_ms, tier._channel, message])
            return bool(int(removed)) or here
        except Exception as error:
            tier._failed(error)
            return here

    def _clear(self) -> _Steps:
        tier = self.tier
        tier._prepare()
        try:
            gen = yield (_RUN, "clear", [f"{tier._prefix}gen:{self.tag}"], [tier._channel, f"c {self.tag} "])
            self._gen = int(gen)
        except Exception as error:
            self._gen = None
            tier._failed(error)


def _digest_input(tag: str, gen: int, encoded: bytes) -> bytes:
    """What a key's digest is taken over: the function, its generation and the encoded key."""
    return b"%s\0%d\0%s" % (tag.encode(), gen, encoded)
