"""cachebox: fast, correct in-process caches and memoizing decorators, written in Rust."""

from . import _core
from ._core import *

__all__ = []
__all__ += _core.__all__
