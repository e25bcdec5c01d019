"""Every capability mixin applied to each of the seven cache classes (BEHAVIOUR.md §2-§10)."""

import pytest

pytest.register_assert_rewrite("mixins")

from mixins import AllMixins, ExplicitCapacityPickleMixin

import cachebox


class TestCache(ExplicitCapacityPickleMixin, AllMixins):
    CACHE = cachebox.Cache
    ORDERED = False
    EVICTS = False
    OLDEST_FIRST = False
    POPITEM = False

    def test_has_no_policy_helpers(self):
        cache = self.make(0, {1: 1})
        for name in ("random_key", "first", "last", "peek"):
            assert not hasattr(cache, name), name


class TestFIFOCache(ExplicitCapacityPickleMixin, AllMixins):
    CACHE = cachebox.FIFOCache


class TestRRCache(ExplicitCapacityPickleMixin, AllMixins):
    CACHE = cachebox.RRCache
    ORDERED = False
    OLDEST_FIRST = False


class TestLRUCache(ExplicitCapacityPickleMixin, AllMixins):
    CACHE = cachebox.LRUCache
    KEY_READERS = ("peek",)
    TOUCH_REORDERS = True


class TestLFUCache(ExplicitCapacityPickleMixin, AllMixins):
    CACHE = cachebox.LFUCache
    KEY_READERS = ("peek",)

    def test_insert_has_no_frequency_parameter(self):
        cache = self.make(0)
        with pytest.raises(TypeError):
            cache.insert(1, 1, 5)
        with pytest.raises(TypeError):
            cache.insert(1, 1, freq=5)
        assert len(cache) == 0


class TestTTLCache(ExplicitCapacityPickleMixin, AllMixins):
    CACHE = cachebox.TTLCache
    TTL = 3600.0
    UPDATE_INVALIDATES = True
    FULL_POSITIONAL = (0, 3600, None)
    KEY_READERS = ("get_with_expire",)
    KEY_REMOVERS = ("pop_with_expire",)


class TestVTTLCache(ExplicitCapacityPickleMixin, AllMixins):
    CACHE = cachebox.VTTLCache
    FULL_POSITIONAL = (0, None, None)
    KEY_READERS = ("get_with_expire",)
    KEY_REMOVERS = ("pop_with_expire",)
    WRITE_ARITY = 3


def test_every_class_in_the_table_is_covered_here_and_modelled():
    """A new row in the native class table fails here until it has a test class and a model."""
    from models import MODELS

    tested = {
        cls.CACHE for cls in globals().values() if isinstance(cls, type) and getattr(cls, "CACHE", None)
    }
    assert tested == set(cachebox._core.CACHE_CLASSES)
    assert set(MODELS) == {cls.__name__ for cls in cachebox._core.CACHE_CLASSES}
