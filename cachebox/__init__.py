"""cachebox: fast, correct in-process caches and memoizing decorators, written in Rust."""

from . import _core
from ._core import *
from .redis_tier import RedisTier, TierStats

__all__ = ["RedisTier", "TierStats"]
__all__ += _core.__all__
