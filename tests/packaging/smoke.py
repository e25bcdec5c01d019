"""A smoke test of an installed wheel (`make wheels` runs it in a fresh venv, outside the source
tree): the package imports from the venv, reports the version its metadata carries, and every
class and the decorator work. Exits non-zero on the first failure."""

import asyncio
import importlib.metadata
import pickle
import sys

import cachebox

assert "site-packages" in cachebox.__file__, f"imported from {cachebox.__file__}, not the venv"
assert cachebox.__version__ == importlib.metadata.version("cachebox"), cachebox.__version__

for cls in (cachebox.Cache, cachebox.FIFOCache, cachebox.RRCache, cachebox.LRUCache, cachebox.LFUCache):
    c = cls(10, {1: "one"})
    c[2] = "two"
    assert c[1] == "one" and c.get(3, "none") == "none" and len(c) == 2, cls
    assert pickle.loads(pickle.dumps(c)) == c, cls
ttl = cachebox.TTLCache(10, 60, {1: 1})
vttl = cachebox.VTTLCache(10)
vttl.insert("k", "v", 60)
assert ttl[1] == 1 and vttl["k"] == "v" and ttl.memory() > 0


@cachebox.cached(cachebox.LRUCache(16))
def square(x):
    return x * x


@cachebox.cached(cachebox.TTLCache(16, 60))
async def double(x):
    return 2 * x


assert [square(3), square(3)] == [9, 9] and square.cache_info().hits == 1
assert asyncio.run(double(4)) == 8
print(f"smoke: cachebox {cachebox.__version__} works on {sys.implementation.name} {sys.version.split()[0]}")
