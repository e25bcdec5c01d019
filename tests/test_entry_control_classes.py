"""Entry control on each of the seven cache classes: the eviction listener (``on_evict``) with
every cause, and the weigher. The tests are the mixins of ``mixins.py`` (``ListenerMixin``,
``ExpiryListenerMixin``, ``WeigherMixin``); the class attributes say what differs between
policies, as in ``tests/test_impls.py``.

The listener tests here never use the cache from inside the listener or the weigher: those
could deadlock, so they run in child interpreters (``tests/test_entry_control_reentrancy.py``).
"""

import pytest

pytest.register_assert_rewrite("mixins")

from mixins import ExpiryListenerMixin, ListenerMixin, WeigherMixin

import cachebox


class EntryControl(ListenerMixin, WeigherMixin):
    pass


class TestCacheEntryControl(EntryControl):
    CACHE = cachebox.Cache
    ORDERED = False
    EVICTS = False
    OLDEST_FIRST = False
    POPITEM = False


class TestFIFOCacheEntryControl(EntryControl):
    CACHE = cachebox.FIFOCache


class TestRRCacheEntryControl(EntryControl):
    CACHE = cachebox.RRCache
    ORDERED = False
    OLDEST_FIRST = False


class TestLRUCacheEntryControl(EntryControl):
    CACHE = cachebox.LRUCache
    KEY_READERS = ("peek",)


class TestLFUCacheEntryControl(EntryControl):
    CACHE = cachebox.LFUCache
    KEY_READERS = ("peek",)


class TestTTLCacheEntryControl(ExpiryListenerMixin, EntryControl):
    CACHE = cachebox.TTLCache
    TTL = 3600.0
    KEY_READERS = ("get_with_expire",)


class TestVTTLCacheEntryControl(ExpiryListenerMixin, EntryControl):
    CACHE = cachebox.VTTLCache
    KEY_READERS = ("get_with_expire",)


def test_every_class_in_the_table_is_covered_here():
    tested = {
        cls.CACHE for cls in globals().values() if isinstance(cls, type) and getattr(cls, "CACHE", None)
    }
    assert tested == set(cachebox._core.CACHE_CLASSES)
