"""``copy_level``: which results a decorated function hands out as copies of what the cache
stores (0: none; 1, the default, and any other value: exact dicts, lists and sets, shallowly;
2: every result, through ``copy.copy``)."""

import collections

import pytest

from cachebox import (
    LRUCache,
    cached,
    cachedmethod,
)


class DictSub(dict):
    pass


class ListSub(list):
    pass


class SetSub(set):
    pass


class Obj:
    copies = 0

    def __init__(self):
        self.items = []

    def __copy__(self):
        Obj.copies += 1
        new = Obj.__new__(Obj)
        new.items = list(self.items)
        return new


COPIED_AT_LEVEL_1 = [lambda: {"a": [1]}, lambda: [1, [2]], lambda: {1, 2}]


NOT_COPIED_AT_LEVEL_1 = [
    lambda: DictSub(a=1),
    lambda: ListSub([1]),
    lambda: SetSub({1}),
    lambda: (1, [2]),
    lambda: frozenset({1}),
    lambda: Obj(),
    lambda: collections.OrderedDict(a=1),
    lambda: bytearray(b"x"),
]


@pytest.mark.parametrize("level", [1, 3, -1, None])
@pytest.mark.parametrize("make", COPIED_AT_LEVEL_1, ids=["dict", "list", "set"])
def test_copy_level_1_copies_exact_dict_list_set(make, level):
    # "Any other value, including the default 1" behaves like 1
    kwargs = {} if level == 1 else {"copy_level": level}

    @cached(LRUCache(0), **kwargs)
    def func(x):
        return make()

    r1 = func(1)  # the first caller on a miss gets a copy too
    r2 = func(1)
    stored = func.cache[1]
    assert type(r1) is type(stored) and type(r2) is type(stored)
    assert r1 == stored and r2 == stored
    assert r1 is not stored and r2 is not stored and r1 is not r2
    if isinstance(stored, (dict, list)):
        # shallow: nested objects are shared
        inner = stored["a"] if isinstance(stored, dict) else stored[1]
        assert (r1["a"] if isinstance(r1, dict) else r1[1]) is inner


@pytest.mark.parametrize("level", [1.5, "other"])
def test_copy_level_any_other_value_behaves_like_1(level):
    # any value but 0 and 2 behaves like the default 1 (BEHAVIOUR.md §13.5), not only other ints
    @cached(LRUCache(0), copy_level=level)
    def func(x):
        return [x] if x else DictSub(a=1)

    r1 = func(1)
    assert r1 == [1] and r1 is not func.cache[1]
    assert func(0) is func.cache[0]


@pytest.mark.parametrize("make", NOT_COPIED_AT_LEVEL_1)
def test_copy_level_1_returns_other_types_as_is(make):
    @cached(LRUCache(0))
    def func(x):
        return make()

    r1 = func(1)
    r2 = func(1)
    assert r1 is func.cache[1]
    assert r2 is r1


@pytest.mark.parametrize("make", COPIED_AT_LEVEL_1 + NOT_COPIED_AT_LEVEL_1)
def test_copy_level_0_never_copies(make):
    @cached(LRUCache(0), copy_level=0)
    def func(x):
        return make()

    r1 = func(1)
    assert r1 is func.cache[1]
    assert func(1) is r1


@pytest.mark.parametrize("make", COPIED_AT_LEVEL_1 + NOT_COPIED_AT_LEVEL_1[:3] + [lambda: Obj()])
def test_copy_level_2_always_copies(make):
    @cached(LRUCache(0), copy_level=2)
    def func(x):
        return make()

    r1 = func(1)
    r2 = func(1)
    stored = func.cache[1]
    assert type(r1) is type(stored)
    assert r1 is not stored and r2 is not stored and r1 is not r2


def test_copy_level_2_uses_copy_copy():
    sentinel = object()

    class Special:
        def __copy__(self):
            return sentinel

    @cached(None, copy_level=2)
    def func(x):
        return Special()

    assert func(1) is sentinel
    assert func(1) is sentinel
    assert type(func.cache[1]) is Special


def test_copy_level_2_immutables_come_back_equal():
    @cached(None, copy_level=2)
    def func(x):
        return (x, "s")

    assert func(1) == (1, "s")
    assert func(1) == (1, "s")


def test_copy_level_2_mutation_does_not_leak_upstream():
    Obj.copies = 0

    @cached(LRUCache(0), copy_level=2)
    def func(x):
        return Obj()

    a = func(1)
    a.items.append("leak")
    b = func(1)
    assert b.items == []
    assert Obj.copies == 2  # the first caller on a miss receives a copy too


def test_default_copy_level_mutation_leaks_upstream():
    @cached(LRUCache(0))
    def func(x):
        return Obj()

    a = func(1)
    a.items.append("leak")
    b = func(1)
    assert b is a
    assert b.items == ["leak"]


def test_copy_level_applies_to_cachedmethod():
    class A:
        @cachedmethod(None)
        def m(self, x):
            return {"x": x}

    r1 = A().m(1)
    r1["y"] = 2
    assert A().m(1) == {"x": 1}
