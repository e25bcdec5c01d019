"""cachebox: fast, correct in-process caches and memoizing decorators, written in Rust."""

from ._core import (
    BaseCacheImpl as BaseCacheImpl,
)
from ._core import (
    Cache as Cache,
)
from ._core import (
    FIFOCache as FIFOCache,
)
from ._core import (
    Frozen as Frozen,
)
from ._core import (
    LFUCache as LFUCache,
)
from ._core import (
    LRUCache as LRUCache,
)
from ._core import (
    RRCache as RRCache,
)
from ._core import (
    TTLCache as TTLCache,
)
from ._core import (
    VTTLCache as VTTLCache,
)
from ._core import (
    __version__ as __version__,
)

__all__ = [
    "BaseCacheImpl",
    "Cache",
    "FIFOCache",
    "Frozen",
    "LFUCache",
    "LRUCache",
    "RRCache",
    "TTLCache",
    "VTTLCache",
]
