"""Key builders (BEHAVIOUR.md §12) and how the decorators call them (§13.1, §13.4 step 3)."""

import pytest

import cachebox
from cachebox import make_hash_key, make_key, make_typed_key


class IntSub(int):
    pass


class StrSub(str):
    pass


def _same(actual, expected):
    """Equal and of the same type, recursively for tuples (so 1 != True and 1 != 1.0 here)."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, tuple):
        return len(actual) == len(expected) and all(_same(a, e) for a, e in zip(actual, expected))
    return actual == expected


# --------------------------------------------------------------------------------------
# make_key
# --------------------------------------------------------------------------------------

MAKE_KEY_TABLE = [
    (((1,), {}), 1),
    ((("a",), {}), "a"),
    (((1.0,), {}), (1.0,)),
    (((True,), {}), (True,)),
    (((1, 2), {}), (1, 2)),
    (((), {}), ()),
    (((), {"a": 1}), (object, "a", 1)),
    (((1,), {"b": 2}), (1, object, "b", 2)),
]


@pytest.mark.parametrize(("call", "expected"), MAKE_KEY_TABLE, ids=[repr(c) for c, _ in MAKE_KEY_TABLE])
def test_make_key_table(call, expected):
    args, kwds = call
    key = make_key(args, kwds)
    assert _same(key, expected), (key, expected)


def test_make_key_true_stays_a_tuple():
    key = make_key((True,), {})
    assert type(key) is tuple
    assert len(key) == 1
    assert key[0] is True


def test_make_key_fast_path_returns_the_argument_itself():
    s = str(object())  # a fresh, non-interned string
    n = 10**30
    assert make_key((s,), {}) is s
    assert make_key((n,), {}) is n


def test_make_key_separator_is_builtin_object_type():
    key = make_key((1,), {"b": 2})
    assert key[1] is object
    key = make_key((), {"a": 1, "b": 2})
    assert key == (object, "a", 1, "b", 2)
    assert key[0] is object
    assert key.count(object) == 1


def test_make_key_keyword_pairs_in_dict_order():
    assert make_key((1, 2), {"x": 3, "y": 4}) == (1, 2, object, "x", 3, "y", 4)
    assert make_key((), {"a": 1, "b": 2}) != make_key((), {"b": 2, "a": 1})
    assert make_key((), {"b": 2, "a": 1}) == (object, "b", 2, "a", 1)


def test_make_key_positional_and_keyword_forms_differ():
    assert make_key((1,), {}) != make_key((), {"a": 1})
    assert make_key((1, 2), {}) != make_key((1,), {"b": 2})


def test_make_key_fast_path_is_exact_type_match():
    # bool and int/str subclasses do not qualify for the fast path
    for value in (True, False, IntSub(3), StrSub("x")):
        key = make_key((value,), {})
        assert type(key) is tuple, value
        assert len(key) == 1
        assert key[0] is value


def test_make_key_fast_path_only_for_length_one():
    assert _same(make_key((1, "a"), {}), (1, "a"))
    assert _same(make_key((), {"a": 1}), (object, "a", 1))
    # a single kw pair makes the key length 3, never the fast path
    assert _same(make_key((), {"a": "b"}), (object, "a", "b"))


def test_make_key_int_and_float_differ_but_longer_tuples_compare_equal():
    assert make_key((1,), {}) != make_key((1.0,), {})
    assert make_key((1, 2, 3), {}) == make_key((1.0, 2, 3.0), {})
    assert make_key((1, 2, 3), {}) != make_key((3, 2, 1), {})


def test_make_key_custom_fasttype():
    assert _same(make_key((1.0,), {}, (float,)), 1.0)
    assert _same(make_key((1.0,), {}, fasttype=(float,)), 1.0)
    assert _same(make_key((1,), {}, fasttype=(float,)), (1,))
    assert _same(make_key(("a",), {}, fasttype=(float,)), ("a",))
    # bool listed explicitly qualifies
    assert _same(make_key((True,), {}, fasttype=(bool,)), True)


@pytest.mark.parametrize("falsy", [(), None, False, 0])
def test_make_key_falsy_fasttype_disables_fast_path(falsy):
    assert _same(make_key((1,), {}, fasttype=falsy), (1,))
    assert _same(make_key(("a",), {}, fasttype=falsy), ("a",))


def test_make_key_marker_collision_is_kept():
    # upstream's behaviour, kept so that keys keep their exact shapes (BEHAVIOUR.md §12.1)
    assert make_key((1, object, "b", 2), {}) == make_key((1,), {"b": 2})


def test_make_key_does_not_mutate_its_inputs():
    args = (1, [2])
    kwds = {"a": 1}
    make_key(args, kwds)
    assert args == (1, [2])
    assert kwds == {"a": 1}


def test_make_key_takes_positional_tuple_and_dict():
    # the two-argument calling convention of v5 (not v6's *args/**kwargs)
    assert make_key((1, 2), {}) == (1, 2)
    with pytest.raises(TypeError):
        make_key(1, 2, 3, 4)


# --------------------------------------------------------------------------------------
# make_hash_key
# --------------------------------------------------------------------------------------


def test_make_hash_key_example():
    key = make_hash_key((1,), {})
    assert type(key) is int
    assert key == 1


@pytest.mark.parametrize(("call", "expected"), MAKE_KEY_TABLE, ids=[repr(c) for c, _ in MAKE_KEY_TABLE])
def test_make_hash_key_is_hash_of_make_key(call, expected):
    args, kwds = call
    key = make_hash_key(args, kwds)
    assert type(key) is int
    assert key == hash(expected)
    assert key == hash(make_key(args, kwds))


def test_make_hash_key_string_and_tuple():
    assert make_hash_key(("abc",), {}) == hash("abc")
    assert make_hash_key((1, 2), {"k": "v"}) == hash((1, 2, object, "k", "v"))


def test_make_hash_key_unhashable_raises_type_error():
    with pytest.raises(TypeError):
        make_hash_key(([1, 2],), {})
    with pytest.raises(TypeError):
        make_hash_key((), {"a": {}})


# --------------------------------------------------------------------------------------
# make_typed_key
# --------------------------------------------------------------------------------------

TYPED_TABLE = [
    (((1,), {}), (1, int)),
    (((1, 2.0), {"a": "x"}), (1, 2.0, object, "a", "x", int, float, str)),
    (((), {}), ()),
    ((("a",), {}), ("a", str)),
    (((True,), {}), (True, bool)),
    (((1.0,), {}), (1.0, float)),
    (((), {"a": 1}), (object, "a", 1, int)),
    (((None, (1,)), {}), (None, (1,), type(None), tuple)),
]


@pytest.mark.parametrize(("call", "expected"), TYPED_TABLE, ids=[repr(c) for c, _ in TYPED_TABLE])
def test_make_typed_key_table(call, expected):
    args, kwds = call
    key = make_typed_key(args, kwds)
    assert _same(key, expected), (key, expected)


def test_make_typed_key_types_are_the_type_objects():
    key = make_typed_key((1, 2.0), {"a": "x"})
    assert key[2] is object
    assert key[5] is int
    assert key[6] is float
    assert key[7] is str


def test_make_typed_key_distinguishes_types():
    assert make_typed_key((1,), {}) != make_typed_key((1.0,), {})
    assert make_typed_key((1, 2, 3), {}) != make_typed_key((1.0, 2, 3.0), {})
    assert make_typed_key((1,), {}) != make_typed_key((True,), {})
    assert make_typed_key((IntSub(1),), {}) == (1, IntSub)


# --------------------------------------------------------------------------------------
# key makers used by the decorators
# --------------------------------------------------------------------------------------


def _calls_123(key_maker):
    calls = []

    @cachebox.cached(cachebox.LRUCache(0), key_maker=key_maker)
    def func(a, b, c):
        calls.append((a, b, c))
        return a + b + c

    assert func(1, 2, 3) == 6
    assert func(1.0, 2, 3.0) == 6
    assert func(3, 2, 1) == 6
    return func, calls


def test_make_key_upstream_expects_two_entries():
    func, calls = _calls_123(make_key)
    assert len(func.cache) == 2
    assert calls == [(1, 2, 3), (3, 2, 1)]
    assert set(func.cache.keys()) == {(1, 2, 3), (3, 2, 1)}


def test_make_typed_key_upstream_expects_three_entries():
    func, calls = _calls_123(make_typed_key)
    assert len(func.cache) == 3
    assert len(calls) == 3
    assert (1, 2, 3, int, int, int) in func.cache
    assert (1.0, 2, 3.0, float, int, float) in func.cache
    assert (3, 2, 1, int, int, int) in func.cache


def test_make_hash_key_as_key_maker_stores_int_keys():
    func, calls = _calls_123(make_hash_key)
    assert len(func.cache) == 2
    assert len(calls) == 2
    assert set(func.cache.keys()) == {hash((1, 2, 3)), hash((3, 2, 1))}


def test_default_key_maker_is_make_key():
    @cachebox.cached(cachebox.LRUCache(0))
    def func(*args, **kwds):
        return 0

    func(1)
    func("a")
    func(1.0)
    func(1, b=2)
    func(a=1)
    keys = list(func.cache.keys())
    assert len(keys) == 5
    for expected in (1, "a", (1.0,), (1, object, "b", 2), (object, "a", 1)):
        assert any(_same(k, expected) for k in keys), expected


def test_readme_typed_key_maker_example():
    @cachebox.cached(cachebox.LRUCache(128), key_maker=cachebox.make_typed_key)
    def sum_as_string(a, b):
        return str(a + b)

    assert sum_as_string(1.0, 1) == "2.0"
    assert sum_as_string(1, 1) == "2"
    assert len(sum_as_string.cache) == 2


def test_readme_untyped_counterpart_shares_entry():
    @cachebox.cached(cachebox.LRUCache(128))
    def sum_as_string(a, b):
        return str(a + b)

    assert sum_as_string(1.0, 1) == "2.0"
    assert sum_as_string(1, 1) == "2.0"  # (1.0, 1) == (1, 1): a hit
    assert len(sum_as_string.cache) == 1


def test_key_maker_receives_args_tuple_and_kwds_dict_positionally():
    # key_maker(args_tuple, kwargs_dict), never the function's own arguments (BEHAVIOUR.md §13.1)
    seen = []

    def key_maker(*a, **k):
        seen.append((a, k))
        return ("K",) + a[0] + tuple(sorted(a[1].items()))

    @cachebox.cached(None, key_maker=key_maker)
    def func(x, y=0, *, z=1):
        return x + y + z

    assert func(1, 2, z=3) == 6
    assert len(seen) == 1
    a, k = seen[0]
    assert k == {}
    assert len(a) == 2
    assert type(a[0]) is tuple and a[0] == (1, 2)
    assert type(a[1]) is dict and a[1] == {"z": 3}
    assert ("K", 1, 2, ("z", 3)) in func.cache


def test_key_maker_result_is_the_cache_key():
    @cachebox.cached(cachebox.FIFOCache(0), key_maker=lambda args, kwds: args[0]["id"])
    def func(request):
        return request["body"]

    assert func({"id": 7, "body": "first"}) == "first"
    # same id: a hit even though the argument differs
    assert func({"id": 7, "body": "second"}) == "first"
    assert list(func.cache.keys()) == [7]
    assert func.cache_info().hits == 1
    assert func.cache_info().misses == 1


def test_key_maker_called_on_every_non_ignored_call():
    count = []

    def key_maker(args, kwds):
        count.append(1)
        return make_key(args, kwds)

    @cachebox.cached(None, key_maker=key_maker)
    def func(x):
        return x

    func(1)
    func(1)
    func(2)
    assert len(count) == 3
    func(1, cachebox__ignore=True)
    assert len(count) == 3


def test_key_maker_exception_propagates_before_func_runs():
    calls = []

    def key_maker(args, kwds):
        raise ValueError("bad key")

    @cachebox.cached(None, key_maker=key_maker)
    def func(x):
        calls.append(x)
        return x

    with pytest.raises(ValueError, match="bad key"):
        func(1)
    assert calls == []
    assert func.cache_info() == (0, 0, func.cache.maxsize, 0, 0)


def test_key_maker_never_sees_cachebox_ignore():
    seen = []

    def key_maker(args, kwds):
        seen.append(dict(kwds))
        return make_key(args, kwds)

    @cachebox.cached(None, key_maker=key_maker)
    def func(x, **kw):
        return x

    func(1, cachebox__ignore=False)
    func(2, a=1, cachebox__ignore=0)
    assert seen == [{}, {"a": 1}]
    assert set(func.cache.keys()) == {1, (2, object, "a", 1)}


def test_cachedmethod_key_maker_gets_args_without_self():
    seen = []

    def key_maker(args, kwds):
        seen.append((args, kwds))
        return make_key(args, kwds)

    class A:
        @cachebox.cachedmethod(None, key_maker=key_maker)
        def method(self, x, y=1):
            return x + y

    assert A().method(1, y=2) == 3
    assert seen == [((1,), {"y": 2})]
    assert list(A.method.cache.keys()) == [(1, object, "y", 2)]


def test_factory_mode_key_maker_gets_args_without_self():
    seen = []

    def key_maker(args, kwds):
        seen.append((args, kwds))
        return make_key(args, kwds)

    class A:
        def __init__(self):
            self._cache = cachebox.LRUCache(0)

        @cachebox.cached(lambda self: self._cache, key_maker=key_maker)
        def method(self, x):
            return x * 2

    a = A()
    assert a.method(5) == 10
    assert seen == [((5,), {})]
    assert list(a._cache.keys()) == [5]


def test_cached_instance_method_key_includes_self():
    seen = []

    def key_maker(args, kwds):
        seen.append(args)
        return make_key(args, kwds)

    class A:
        @cachebox.cached(None, key_maker=key_maker)
        def method(self, x):
            return x

    a = A()
    a.method(3)
    assert len(seen) == 1
    assert seen[0][0] is a
    assert seen[0][1:] == (3,)
    assert list(A.method.cache.keys()) == [(a, 3)]
