"""What the tests know about the caches apart from their policies: the class names and how to
build one by name, what an entry is charged, the capacity a table reports, the message of a
refused insert, and a call's outcome as a value to compare.
"""

import sys

import cachebox

#: Every cache class, as the native class table lists them.
CLASS_NAMES = tuple(cls.__name__ for cls in cachebox._core.CACHE_CLASSES)

#: The global TTL used by :func:`make_cache` for ``TTLCache`` (long enough never to run out).
HELPER_TTL = 3600.0

#: Whether the tests run on PyPy (whose builtin types have no ``__sizeof__``).
PYPY = sys.implementation.name == "pypy"

#: What PyPy charges an object whose type has no ``__sizeof__`` (BEHAVIOUR.md §3.1).
PYPY_OBJECT_SIZE = 64

#: The message of the ``OverflowError`` raised by an insert the limits refuse.
OVERFLOW_MESSAGE = "The cache has reached the bound"


def make_cache(name, maxsize=0, cls=None, **kwargs):
    """An instance of cachebox class ``name``, or of ``cls`` (a subclass of it). ``TTLCache``
    gets the global TTL :data:`HELPER_TTL`."""
    cls = cls or getattr(cachebox, name)
    if name == "TTLCache":
        return cls(maxsize, HELPER_TTL, **kwargs)
    return cls(maxsize, **kwargs)


def charge(obj):
    """What one object adds to ``memory()``: its ``__sizeof__()`` (a class object is asked
    through its own class's method, ``obj.__sizeof__(obj)``); on PyPy, an object without one
    (every builtin) is charged :data:`PYPY_OBJECT_SIZE`."""
    method = getattr(obj, "__sizeof__", None)
    if method is None:
        assert PYPY, f"{obj!r} has no __sizeof__ on CPython"
        return PYPY_OBJECT_SIZE
    if isinstance(obj, type):
        return method(obj)
    return method()


def entry_size(key, value):
    """What one stored entry is charged: ``charge(key) + charge(value)``."""
    return charge(key) + charge(value)


#: The most collector passes PyPy is given to free an unreachable object that C code held: it
#: was seen to need up to three (for an object C code handed back into a Python list).
PYPY_PASSES = 5


def collect(*refs):
    """Runs the collector until it has freed every unreachable object, or at least the objects
    of the weak references ``refs``: one ``gc.collect()`` on CPython; on PyPy up to
    :data:`PYPY_PASSES`, stopping early once every one of ``refs`` is dead."""
    import gc

    gc.collect()
    for _ in range(PYPY_PASSES - 1 if PYPY else 0):
        if refs and all(ref() is None for ref in refs):
            break
        gc.collect()


def collect_if_pypy(*refs):
    """What a test runs before it checks that the weak references ``refs`` died: nothing on
    CPython, which frees an object when its last reference goes; :func:`collect` on PyPy, which
    frees objects only when its collector runs."""
    if PYPY:
        collect(*refs)


def hashbrown_capacity(n):
    """The capacity hashbrown reports for a table sized for ``n`` entries."""
    if n == 0:
        return 0
    if n < 4:
        return 3
    if n < 8:
        return 7
    buckets = 1
    while buckets < n * 8 // 7:
        buckets *= 2
    return buckets // 8 * 7


def outcome(fn):
    """``("ok", fn())``, or ``("raise", exception type, exception args)`` if ``fn`` raised.
    ``AssertionError`` (a failed check, not an API result) propagates."""
    try:
        return ("ok", fn())
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001 (any API error is a result to compare)
        return ("raise", type(e), e.args)
    except BaseException as e:
        # pyo3 turns a Rust panic into PanicException, a BaseException that hypothesis would
        # not shrink: report it as the failed check it is.
        if type(e).__name__ == "PanicException":
            raise AssertionError(f"native code panicked: {e}") from e
        raise


# --------------------------------------------------------------------------------------------
# Entry control: eviction listeners and weighers
# --------------------------------------------------------------------------------------------

#: The causes an ``on_evict`` listener may be given.
CAUSES = ("size", "memory", "expired", "replaced", "explicit")


class Recorder:
    """An ``on_evict`` listener that records each call as ``(key, value, cause)`` in ``calls``,
    and the thread that made it in ``threads``. A callable object, not a function, so that a
    ``deepcopy`` that copied it (instead of keeping it) would be seen."""

    def __init__(self):
        self.calls = []
        self.threads = []

    def __call__(self, key, value, cause):
        import threading

        self.calls.append((key, value, cause))
        self.threads.append(threading.get_ident())

    def take(self):
        """The calls recorded since the last ``take``."""
        calls, self.calls = self.calls, []
        self.threads = []
        return calls


#: What :func:`logging_listener` was called with.
LISTENER_LOG = []


def logging_listener(key, value, cause):
    """A module-level listener: pickled by reference, it loads as this same function."""
    LISTENER_LOG.append((key, value, cause))


def length_weigher(key, value):
    """A module-level weigher (pickled by reference): ``len(value)`` units."""
    return len(value)


class catch_unraisable:
    """Replaces ``sys.unraisablehook`` while the block runs (pytest's own hook would turn each
    unraisable exception into a warning), collecting what it is given; restores the previous
    hook on the way out, even if the block fails. The block gets the list of
    ``(exc_type, exc_value, object)`` of each call."""

    def __enter__(self):
        self.previous = sys.unraisablehook
        self.caught = []
        sys.unraisablehook = lambda args: self.caught.append((args.exc_type, args.exc_value, args.object))
        return self.caught

    def __exit__(self, *exc):
        sys.unraisablehook = self.previous
        return False
