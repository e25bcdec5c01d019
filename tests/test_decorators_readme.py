"""The README's examples of the memoizing decorators, run as written (where the README is
wrong, as corrected: the comments say what it gets wrong)."""

import sys

import pytest

from cachebox import (
    EVENT_HIT,
    EVENT_MISS,
    CacheInfo,
    FIFOCache,
    LRUCache,
    TTLCache,
    cached,
    cachedmethod,
    is_cached,
)


def test_readme_factorial_is_120():
    # the README asserts 125; 5! is 120
    @cached(FIFOCache(maxsize=128))
    def factorial(number: int) -> int:
        fact = 1
        for num in range(2, number + 1):
            fact *= num
        return fact

    assert factorial(5) == 120
    assert len(factorial.cache) == 1
    assert factorial.cache[5] == 120


def test_readme_sum_as_string():
    @cached(LRUCache(128))
    def sum_as_string(a, b):
        return str(a + b)

    assert sum_as_string(1, 2) == "3"
    assert len(sum_as_string.cache) == 1
    sum_as_string.cache_clear()
    assert len(sum_as_string.cache) == 0


def test_readme_cache_clear_not_clear_cache():
    # the method is cache_clear; clear_cache does not exist (BEHAVIOUR.md §13.7)
    @cached(LRUCache(0))
    def func(a):
        return a

    assert callable(func.cache_clear)
    assert not hasattr(func, "clear_cache")


def test_readme_cache_info_repr_memory_zero():
    # memory=0 for an empty cache, not 8 (BEHAVIOUR.md §13.7)
    @cached(LRUCache(0))
    def sum_as_string(a, b):
        return str(a + b)

    info = sum_as_string.cache_info()
    assert isinstance(info, CacheInfo)
    assert info == CacheInfo(hits=0, misses=0, maxsize=sys.maxsize, length=0, memory=0)
    assert repr(info) == "CacheInfo(hits=0, misses=0, maxsize=9223372036854775807, length=0, memory=0)"
    assert repr(sum_as_string.cache) == "cachebox.LRUCache[0/9223372036854775807]({})"


def test_readme_make_dict_copy_example():
    @cached(LRUCache(maxsize=128))
    def make_dict(name: str, age: int) -> dict:
        return {"name": name, "age": age}

    d = make_dict("cachebox", 10)
    assert d == {"name": "cachebox", "age": 10}
    d["new-key"] = "new-value"
    d2 = make_dict("cachebox", 10)
    assert d2 == {"name": "cachebox", "age": 10}
    assert make_dict.cache_info().hits == 1


def test_readme_callback_example():
    log = []

    def callback_func(event, key, value):
        if event == EVENT_MISS:
            log.append(("miss", key, value))
        elif event == EVENT_HIT:
            log.append(("hit", key, value))
        else:  # pragma: no cover
            raise NotImplementedError

    @cached(LRUCache(0), callback=callback_func)
    def func(a, b):
        return a + b

    assert func(1, 2) == 3
    assert func(1, 2) == 3
    assert func(1, 2) == 3
    assert func(5, 4) == 9
    assert log == [("miss", (1, 2), 3), ("hit", (1, 2), 3), ("hit", (1, 2), 3), ("miss", (5, 4), 9)]
    assert func.callback is callback_func


def test_readme_is_cached_example():
    @cached(FIFOCache(0))
    def func():
        pass

    assert is_cached(func) is True


def test_readme_cachedmethod_example():
    # the README calls c.my_method() without the required argument (BEHAVIOUR.md §13.8)
    calls = []

    class MyClass:
        @cachedmethod(TTLCache(0, ttl=10))
        def my_method(self, name: str):
            calls.append(name)
            return "Hello, " + name + "!"

    c = MyClass()
    assert c.my_method("x") == "Hello, x!"
    assert c.my_method("x") == "Hello, x!"
    assert calls == ["x"]
    assert list(MyClass.my_method.cache.keys()) == ["x"]
    with pytest.raises(TypeError):
        c.my_method()


def test_readme_classmethod_staticmethod_note():
    created = []

    class MyClass:
        def __init__(self, num: int) -> None:
            self.num = num
            created.append(num)

        @classmethod
        @cachedmethod({}, copy_level=2)
        def class_func(cls, num: int):
            return cls(num)

        @staticmethod
        @cached({})
        def static_func(num: int):
            created.append(("static", num))
            return num * 5

    a = MyClass.class_func(1)
    b = MyClass.class_func(1)
    assert type(a) is MyClass and a.num == 1
    assert type(b) is MyClass and b.num == 1
    assert a is not b  # copy_level=2 copies every result
    assert created == [1]
    assert MyClass.class_func.cache_info().hits == 1
    assert list(MyClass.class_func.cache.keys()) == [1]  # cls is not part of the key

    assert MyClass.static_func(2) == 10
    assert MyClass(0).static_func(2) == 10
    assert created == [1, ("static", 2), 0]
    assert list(MyClass.static_func.cache.keys()) == [2]
    assert is_cached(MyClass.static_func)
    assert is_cached(MyClass.class_func)
