"""The README's walk-throughs, corrected where the README is wrong (a test's comment names the
section of BEHAVIOUR.md that holds instead), the package surface (BEHAVIOUR.md §1.1),
``BaseCacheImpl`` and ``Frozen`` (§11)."""

import copy
import pickle
import sys
import textwrap

import pytest

pytest.register_assert_rewrite("mixins")

from mixins import check_equality
from subprocess_harness import run_isolated

import cachebox
from cachebox import (
    BaseCacheImpl,
    Cache,
    FIFOCache,
    Frozen,
    LFUCache,
    LRUCache,
    RRCache,
    TTLCache,
    VTTLCache,
)
from cachebox._core import CACHE_CLASSES, _advance_clock as advance

FROZEN_MESSAGE = "^This cache is frozen.$"
BASE_MESSAGE = "do not call this constructor, you can subclass this implementation or use other classes."


def build(cls, maxsize=0, iterable=None):
    """One instance of any of the seven classes (TTLCache gets a long TTL)."""
    if cls is TTLCache:
        return cls(maxsize, 3600, iterable)
    return cls(maxsize, iterable)


# ---------------------------------------------------------------------------------------
# README walk-throughs
# ---------------------------------------------------------------------------------------


def test_readme_dictionary_usage():
    cache = FIFOCache(maxsize=128)
    cache["key"] = "value"
    assert cache["key"] == "value"
    assert cache.get("key") == "value"


def test_readme_cache_block():
    cache = Cache(maxsize=100, iterable=None, capacity=100)
    cache["key"] = "value"
    assert cache.insert("key", "value") == "value"
    assert cache["key"] == "value"
    del cache["key"]
    with pytest.raises(KeyError, match="key"):
        cache["key"]
    # no final period (BEHAVIOUR.md §3.3)
    with pytest.raises(OverflowError, match="^The cache has reached the bound$"):
        cache.update({i: i for i in range(200)})
    assert len(cache) == 100


def test_readme_fifo_block():  # BEHAVIOUR.md §5.2, §6.3
    cache = FIFOCache(5, {i: i * 2 for i in range(5)})
    assert len(cache) == 5
    cache["new-key"] = "new-value"
    assert len(cache) == 5
    assert cache.get(3, "default-val") == 6
    assert cache.get(6, "default-val") == "default-val"
    assert cache.popitem() == (1, 2)
    assert cache.insert(3, "val") == 6
    assert cache.insert("new-key", "val") == "new-value"
    assert cache.first() == 2


def test_readme_rr_block():  # BEHAVIOUR.md §3.5
    cache = RRCache(10, {i: i for i in range(10)})
    assert cache.is_full() and not cache.is_empty()
    assert cache.capacity() == 14
    cache.shrink_to_fit()
    assert cache.capacity() == 14
    assert cache.random_key() in range(10)


def test_readme_lru_block():  # BEHAVIOUR.md §6.5, §5.3
    cache = LRUCache(0, {i: i * 2 for i in range(10)})
    assert cache[0] == 0
    assert cache.least_recently_used() == 1
    assert cache.popitem() == (1, 2)
    assert cache.peek(2) == 4
    assert cache.popitem() == (2, 4)
    assert cache.drain(5) == 5
    assert list(cache) == [8, 9, 0]


def test_readme_lfu_block():  # BEHAVIOUR.md §6.6
    cache = LFUCache(5)
    cache.insert("first", "A")
    cache.insert("second", "B")
    cache["first"]
    cache["first"]
    cache["second"]
    assert cache.least_frequently_used() == "second"
    assert cache.least_frequently_used(2) is None
    assert list(cache.items_with_frequency()) == [("second", "B", 1), ("first", "A", 2)]


def test_readme_ttl_block():  # BEHAVIOUR.md §6.8, §7.4
    cache = TTLCache(0, ttl=2)
    cache.update({i: str(i) for i in range(10)})
    value, remaining = cache.get_with_expire(2)
    assert value == "2" and 1.9 < remaining < 2.0
    assert cache.first() == 0
    cache["mykey"] = "value"
    advance(2.01)
    with pytest.raises(KeyError):
        cache["mykey"]


def test_readme_vttl_block():  # BEHAVIOUR.md §2.4
    cache = VTTLCache(100, iterable={i: i for i in range(4)}, ttl=3)
    assert len(cache) == 4
    advance(3.01)
    assert len(cache) == 0
    cache.insert("key1", "value", ttl=5)
    cache.insert("key2", "value", ttl=2)
    advance(2.01)
    assert cache.get("key1") == "value"
    assert cache.get("key2") is None


def test_readme_frozen_block():
    cache = FIFOCache(10, {1: 1, 2: 2, 3: 3})
    frozen = Frozen(cache, ignore=True)
    assert frozen[1] == 1 and len(frozen) == 3
    frozen.insert("key", "value")
    assert len(frozen) == 3
    frozen = Frozen(cache, ignore=False)
    with pytest.raises(TypeError, match=FROZEN_MESSAGE):
        frozen.insert("key", "value")


def test_readme_frozen_cannot_prevent_expiry():
    cache = TTLCache(0, ttl=3, iterable={i: i for i in range(10)})
    frozen = Frozen(cache)
    assert len(frozen) == 10
    advance(3.01)
    assert len(frozen) == 0


def test_readme_eq_errors_are_not_ignored():  # BEHAVIOUR.md §4.2
    class A:
        def __hash__(self):
            return 1

        def __eq__(self, other):
            raise NotImplementedError("not implemeneted")

    cache = FIFOCache(0, {A(): 10})
    with pytest.raises(NotImplementedError, match="not implemeneted"):
        cache[A()]


def test_readme_comparisons_are_dict_like():  # BEHAVIOUR.md §9.1
    cache1, cache2 = FIFOCache(10), FIFOCache(10)
    cache1.insert(1, "first")
    cache1.insert(2, "second")
    cache2.insert(2, "second")
    cache2.insert(1, "first")
    assert cache1 == cache2


def test_readme_pickle_and_copy_tips(tmp_path):  # BEHAVIOUR.md §10.1, §10.3
    cache = LRUCache(100, {i: i for i in range(78)})
    path = tmp_path / "file"
    with open(path, "wb") as fd:
        pickle.dump(cache, fd)
    with open(path, "rb") as fd:
        loaded = pickle.load(fd)
    assert cache == loaded
    assert cache.capacity() == loaded.capacity()
    assert cache.copy() == cache == copy.deepcopy(cache)


def test_readme_maxsize_zero_means_unbounded():  # BEHAVIOUR.md §2.5
    cache = LRUCache(0)
    cache.update({i: i for i in range(1000)})
    assert cache.maxsize == sys.maxsize and len(cache) == 1000


def test_readme_repr_uses_the_v5_format():  # BEHAVIOUR.md §9.3
    assert repr(LRUCache(0)) == "cachebox.LRUCache[0/9223372036854775807]({})"


# ---------------------------------------------------------------------------------------
# 1. package surface (decorators are tested elsewhere)
# ---------------------------------------------------------------------------------------


def test_package_surface():
    assert isinstance(cachebox.__version__, str) and cachebox.__version__
    names = {"BaseCacheImpl", "Frozen"} | {cls.__name__ for cls in CACHE_CLASSES}
    assert names <= set(cachebox.__all__)
    assert all(hasattr(cachebox, name) for name in cachebox.__all__)
    assert len(cachebox.__all__) == len(set(cachebox.__all__))


@pytest.mark.parametrize("cls", CACHE_CLASSES + (BaseCacheImpl, Frozen), ids=lambda c: c.__name__)
def test_classes_live_in_cachebox(cls):
    assert cls.__module__ == "cachebox"
    assert cls.__name__ == cls.__qualname__
    assert getattr(cachebox, cls.__name__) is cls


# ---------------------------------------------------------------------------------------
# BaseCacheImpl (BEHAVIOUR.md §11.1)
# ---------------------------------------------------------------------------------------


def test_base_cannot_be_instantiated():
    for args, kwargs in (((), {}), ((1, 2), {}), ((), {"maxsize": 1})):
        with pytest.raises(NotImplementedError) as info:
            BaseCacheImpl(*args, **kwargs)
        assert str(info.value) == BASE_MESSAGE


def test_python_subclasses_of_the_base_instantiate():
    class Plain(BaseCacheImpl):
        pass

    class WithInit(BaseCacheImpl):
        def __init__(self, size, *, name="x"):
            self.size = size
            self.name = name

    assert isinstance(Plain(), BaseCacheImpl)
    instance = WithInit(3, name="y")
    assert (instance.size, instance.name) == (3, "y")
    assert isinstance(instance, BaseCacheImpl)
    assert WithInit[int, str] is WithInit


def test_class_getitem_returns_the_class():
    assert BaseCacheImpl[int, str] is BaseCacheImpl
    assert BaseCacheImpl[int] is BaseCacheImpl
    assert Frozen[int, str] is Frozen
    for cls in CACHE_CLASSES:
        assert cls[int, str] is cls


@pytest.mark.parametrize("cls", CACHE_CLASSES, ids=lambda c: c.__name__)
def test_every_cache_is_a_base_instance(cls):
    assert issubclass(cls, BaseCacheImpl)
    assert isinstance(build(cls), BaseCacheImpl)


@pytest.mark.parametrize("cls", CACHE_CLASSES, ids=lambda c: c.__name__)
def test_subclass_with_own_init(cls):
    class Named(cls):
        def __init__(self, name, size, **kwargs):
            if cls is TTLCache:
                super().__init__(size, 60, **kwargs)
            else:
                super().__init__(size, **kwargs)
            self.name = name

    cache = Named("mine", 5, iterable={1: "a"})
    assert (cache.name, cache.maxsize, cache[1]) == ("mine", 5, "a")
    assert isinstance(cache, cls) and isinstance(cache, BaseCacheImpl)
    assert Named[int, str] is Named
    assert repr(cache).startswith(f"{__name__}.Named[1/5")
    cache.extra = [1]
    assert cache.extra == [1]


# ---------------------------------------------------------------------------------------
# Frozen (BEHAVIOUR.md §11.3)
# ---------------------------------------------------------------------------------------

BLOCKED = [
    ("setitem", lambda f: f.__setitem__(1, "x")),
    ("delitem", lambda f: f.__delitem__(1)),
    ("insert", lambda f: f.insert(9, "x")),
    ("pop", lambda f: f.pop(1)),
    ("pop-default", lambda f: f.pop(1, "default")),
    ("setdefault", lambda f: f.setdefault(9, "x")),
    ("popitem", lambda f: f.popitem()),
    ("drain", lambda f: f.drain(2)),
    ("clear", lambda f: f.clear()),
    ("clear-reuse", lambda f: f.clear(reuse=True)),
    ("shrink_to_fit", lambda f: f.shrink_to_fit()),
    ("update", lambda f: f.update({9: "x"})),
]

UNAVAILABLE = [
    "peek",
    "first",
    "last",
    "least_recently_used",
    "most_recently_used",
    "least_frequently_used",
    "items_with_frequency",
    "random_key",
    "get_with_expire",
    "pop_with_expire",
    "popitem_with_expire",
    "items_with_expire",
    "expire",
    "ttl",
    "copy",
]


def contents(cache):
    return sorted(cache.items()), cache.memory()


@pytest.fixture(params=CACHE_CLASSES, ids=lambda c: c.__name__)
def cache(request):
    return build(request.param, 10, {1: "a", 2: "b", 3: "c"})


def test_frozen_rejects_non_caches():
    for bad in (42, {}, None, [(1, 2)], BaseCacheImpl):
        with pytest.raises(AssertionError):
            Frozen(bad)


def test_frozen_rejects_frozen(cache):
    with pytest.raises(AssertionError):
        Frozen(Frozen(cache))
    with pytest.raises(AssertionError):
        Frozen(Frozen(cache, ignore=True), ignore=True)


def test_frozen_checks_arguments_under_python_o():  # unlike upstream (BEHAVIOUR.md §11.3)
    script = textwrap.dedent(
        """
        import cachebox
        results = []
        try:
            assert False
            results.append("asserts-disabled")
        except AssertionError:
            results.append("asserts-enabled")
        for bad in (42, cachebox.Frozen(cachebox.LRUCache(0))):
            try:
                cachebox.Frozen(bad)
                results.append("accepted")
            except AssertionError:
                results.append("AssertionError")
        print(" ".join(results))
        """
    )
    output = " ".join(run_isolated(script, flags=("-O",))).split()
    assert output == ["asserts-disabled", "AssertionError", "AssertionError"]


def test_frozen_accepts_python_base_subclasses():
    class Custom(BaseCacheImpl):
        pass

    assert Frozen(Custom()).cache.__class__ is Custom


def test_frozen_attributes(cache):
    frozen = Frozen(cache)
    assert frozen.cache is cache
    assert frozen.ignore is False
    assert Frozen(cache, ignore=True).ignore is True
    frozen.ignore = True
    assert frozen.ignore is True
    assert isinstance(frozen, BaseCacheImpl)


def test_frozen_proxies_reads(cache):
    frozen = Frozen(cache)
    assert (frozen.maxsize, frozen.maxmemory) == (cache.maxsize, cache.maxmemory)
    assert (len(frozen), bool(frozen)) == (3, True)
    assert 1 in frozen and 9 not in frozen
    assert frozen[1] == "a" and frozen.get(2) == "b"
    assert frozen.get(9) is None and frozen.get(9, "d") == "d"
    with pytest.raises(KeyError) as info:
        frozen[9]
    assert info.value.args == (9,)
    assert sorted(frozen) == sorted(cache) == [1, 2, 3]
    assert sorted(frozen.keys()) == [1, 2, 3]
    assert sorted(frozen.values()) == ["a", "b", "c"]
    assert sorted(frozen.items()) == [(1, "a"), (2, "b"), (3, "c")]
    assert frozen.__sizeof__() == cache.__sizeof__()
    assert (frozen.capacity(), frozen.memory()) == (cache.capacity(), cache.memory())
    assert (frozen.is_full(), frozen.is_empty()) == (False, False)
    cache.update({i: i for i in range(4, 11)})
    assert frozen.is_full() and len(frozen) == 10


def test_frozen_reads_still_touch_the_policy():
    lru = LRUCache(0, {1: 1, 2: 2, 3: 3})
    frozen = Frozen(lru)
    frozen[1]
    assert 2 in frozen
    assert list(lru) == [3, 1, 2]
    lfu = LFUCache(0, {1: 1, 2: 2})
    Frozen(lfu).get(1)
    assert list(lfu.items_with_frequency()) == [(2, 2, 0), (1, 1, 1)]


@pytest.mark.parametrize("operation", [op for _, op in BLOCKED], ids=[name for name, _ in BLOCKED])
def test_frozen_blocks_writes(cache, operation):
    frozen = Frozen(cache)
    before = contents(cache)
    with pytest.raises(TypeError, match=FROZEN_MESSAGE):
        operation(frozen)
    assert contents(cache) == before


def test_frozen_blocks_statement_writes(cache):
    frozen = Frozen(cache)
    with pytest.raises(TypeError, match=FROZEN_MESSAGE):
        frozen[1] = "x"
    with pytest.raises(TypeError, match=FROZEN_MESSAGE):
        del frozen[1]
    assert cache[1] == "a" and len(cache) == 3


@pytest.mark.parametrize("operation", [op for _, op in BLOCKED], ids=[name for name, _ in BLOCKED])
def test_frozen_ignores_writes(cache, operation):
    frozen = Frozen(cache, ignore=True)
    before = contents(cache)
    assert operation(frozen) is None
    assert contents(cache) == before


def test_frozen_cache_is_still_mutable_through_cache():
    frozen = Frozen(LRUCache(0))
    frozen.cache[1] = 1
    assert len(frozen) == 1 and frozen[1] == 1


@pytest.mark.parametrize("name", UNAVAILABLE)
def test_frozen_hides_policy_helpers(cache, name):
    with pytest.raises(AttributeError):
        getattr(Frozen(cache), name)


def test_frozen_repr(cache):
    frozen = Frozen(cache)
    assert repr(frozen) == f"<Frozen: {cache!r}>"
    assert repr(Frozen(LRUCache(0))) == "<Frozen: cachebox.LRUCache[0/9223372036854775807]({})>"


def test_frozen_equality_is_identity(cache):
    frozen = Frozen(cache)
    check_equality(frozen, frozen, True)
    check_equality(frozen, cache, False)
    check_equality(cache, frozen, False)
    check_equality(frozen, Frozen(cache), False)
    assert hash(frozen) == hash(frozen)
    assert len({frozen, frozen, Frozen(cache)}) == 2
