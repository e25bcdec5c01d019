"""The shared tier's key encoding: canonical bytes for a key, the same in every process, that
decode back into an equal key."""

import enum
import math
import os
import struct
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

import cachebox
from cachebox._core import _decode_key, _encode_key


class Color(enum.Enum):
    RED = 1
    GREEN = "g"
    BLUE = (1, "b")


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Marker:
    class Inner:
        pass


class Holder(enum.Enum):
    BOX = (1, (2, Marker()))


class IntSub(int):
    pass


class FloatSub(float):
    pass


class StrSub(str):
    pass


class BytesSub(bytes):
    pass


class TupleSub(tuple):
    pass


class FrozensetSub(frozenset):
    pass


def _varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _name(text):
    raw = text.encode()
    return _varint(len(raw)) + raw


# --------------------------------------------------------------------------------------
# The format, byte for byte
# --------------------------------------------------------------------------------------

GOLDEN = [
    (None, b"\x01N"),
    (True, b"\x01T"),
    (False, b"\x01F"),
    (0, b"\x01i\x00"),
    (-1, b"\x01i\x01\xff"),
    (255, b"\x01i\x02\xff\x00"),
    (2**70, b"\x01i\x09\x00\x00\x00\x00\x00\x00\x00\x00\x40"),
    (1.5, b"\x01f\x00\x00\x00\x00\x00\x00\xf8\x3f"),
    (-0.0, b"\x01f\x00\x00\x00\x00\x00\x00\x00\x00"),
    ("é", b"\x01s\x02\xc3\xa9"),
    ("\ud800", b"\x01S\x03\xed\xa0\x80"),
    (b"x", b"\x01b\x01x"),
    ((1, "a"), b"\x01t\x02i\x01\x01s\x01a"),
    (frozenset({1, 2, 3}), b"\x01z\x03i\x01\x01i\x01\x02i\x01\x03"),
    (cachebox.make_key((1,), {"b": 2}), b"\x01t\x04i\x01\x01y\x08builtins\x06objects\x01bi\x01\x02"),
    (cachebox.make_typed_key((1,), {}), b"\x01t\x02i\x01\x01y\x08builtins\x03int"),
    (Level.LOW, b"\x01e\x0etest_tier_keys\x05Leveli\x01\x01"),
]


@pytest.mark.parametrize(("key", "expected"), GOLDEN, ids=[repr(k) for k, _ in GOLDEN])
def test_golden_bytes(key, expected):
    assert _encode_key(key) == expected
    decoded = _decode_key(expected)
    assert decoded == key or (isinstance(key, float) and math.isnan(key))
    assert type(decoded) is type(key)


def test_distinct_types_encode_apart():
    assert len({_encode_key(1), _encode_key(1.0), _encode_key(True)}) == 3
    assert _encode_key(Level.LOW) != _encode_key(1)
    assert _encode_key("1") != _encode_key(b"1")


def test_zeros_and_nans_are_one_encoding():
    assert _encode_key(0.0) == _encode_key(-0.0)
    other_nan = struct.unpack("<d", bytes.fromhex("010000000000f8ff"))[0]
    assert math.isnan(other_nan)
    assert _encode_key(float("nan")) == _encode_key(other_nan) == _encode_key(-math.nan)
    assert _encode_key(float("nan")) == b"\x01f" + bytes.fromhex("000000000000f87f")
    assert math.isnan(_decode_key(_encode_key(other_nan)))


@pytest.mark.parametrize(
    ("key", "base"),
    [
        (IntSub(5), 5),
        (FloatSub(2.5), 2.5),
        (StrSub("ab"), "ab"),
        (BytesSub(b"ab"), b"ab"),
        (TupleSub((1, 2)), (1, 2)),
        (FrozensetSub({1}), frozenset({1})),
    ],
)
def test_subclasses_encode_as_their_base(key, base):
    assert _encode_key(key) == _encode_key(base)
    assert type(_decode_key(_encode_key(key))) is type(base)


def test_big_ints_match_the_int_fast_path_at_the_boundary():
    for v in [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, -(2**64), -(2**71), 2**71 - 1]:
        raw = v.to_bytes((v if v >= 0 else ~v).bit_length() // 8 + 1, "little", signed=True)
        assert _encode_key(v) == b"\x01i" + _varint(len(raw)) + raw, v
        assert _decode_key(_encode_key(v)) == v


# --------------------------------------------------------------------------------------
# The same bytes whatever the hash seed
# --------------------------------------------------------------------------------------

WORDS = [f"word{i}" for i in range(24)]
GROUPS = [WORDS[i : i + 3] for i in range(0, 24, 3)]


def _seed_keys(turn):
    """The same keys, with sets built in an order that depends on `turn` (CPython's set order
    follows the hash seed, PyPy's follows insertion)."""
    order = WORDS[turn:] + WORDS[:turn]
    groups = GROUPS[turn % 8 :] + GROUPS[: turn % 8]
    return (
        frozenset(order),
        tuple(WORDS),
        frozenset((w, WORDS.index(w)) for w in order),
        frozenset(frozenset(g[::-1] if turn % 2 else g) for g in groups),
    )


SEED_CODE = f"""
import sys
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from cachebox._core import _encode_key
from test_tier_keys import _seed_keys
key = _seed_keys(int(sys.argv[1]))
print(_encode_key(key).hex())
print(repr(list(key[0])))
"""


def _in_child(seed, turn):
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    out = subprocess.run(
        [sys.executable, "-c", SEED_CODE, str(turn)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    encoded, order = out.stdout.splitlines()
    return bytes.fromhex(encoded), order


def test_same_bytes_under_every_hash_seed():
    runs = [_in_child(seed, turn) for seed, turn in [(0, 0), (1, 5), (12345, 11)]]
    assert [encoded for encoded, _ in runs] == [_encode_key(_seed_keys(0))] * 3
    # The sets did iterate in different orders, which the encoding does not follow.
    assert len({order for _, order in runs}) == 3


# --------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------

surrogates = st.integers(0xD800, 0xDFFF).map(chr)
texts = st.text() | st.lists(st.characters() | surrogates, max_size=8).map("".join)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**300), max_value=2**300)
    | st.floats(allow_nan=False)
    | texts
    | st.binary()
)
keys = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5).map(tuple) | st.frozensets(children, max_size=5),
    max_leaves=30,
)


@given(keys)
def test_round_trip(key):
    encoded = _encode_key(key)
    decoded = _decode_key(encoded)
    assert decoded == key
    assert type(decoded) is type(key)
    assert hash(decoded) == hash(key)
    assert _encode_key(decoded) == encoded


@given(st.binary() | st.binary().map(lambda b: b"\x01" + b))
def test_arbitrary_bytes_decode_or_raise_value_error(data):
    try:
        _decode_key(data)
    except ValueError:
        pass


@given(keys, st.data())
def test_damaged_encodings_decode_or_raise_value_error(key, data):
    encoded = bytearray(_encode_key(key))
    at = data.draw(st.integers(0, len(encoded) - 1))
    encoded[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(encoded)))
    try:
        decoded = _decode_key(bytes(encoded[:cut]))
    except ValueError:
        return
    # What decodes is canonical: it encodes back to the very same bytes.
    assert _encode_key(decoded) == bytes(encoded[:cut])


def test_enum_members_round_trip():
    for member in [Color.RED, Color.GREEN, Color.BLUE, Level.LOW, Level.HIGH]:
        assert _decode_key(_encode_key(member)) is member
    key = (Color.BLUE, Level.HIGH, 2)
    assert _decode_key(_encode_key(key)) == key


def test_types_round_trip_to_the_same_object():
    for ty in [int, object, type(None), Marker, Marker.Inner, Color]:
        assert _decode_key(_encode_key(ty)) is ty
    key = cachebox.make_typed_key((None, 1), {"x": 2.5}) + (Level, Marker.Inner)
    assert key[-5:-2] == (type(None), int, float)
    assert _decode_key(_encode_key(key)) == key


def test_a_type_of_a_module_not_loaded_does_not_decode():
    data = b"\x01y" + _name("cachebox_no_such_module") + _name("Thing")
    with pytest.raises(ValueError, match="not loaded"):
        _decode_key(data)
    assert "cachebox_no_such_module" not in sys.modules


def test_decoding_a_type_imports_nothing():
    if "tabnanny" in sys.modules:
        pytest.skip("tabnanny is already imported")
    data = b"\x01y" + _name("tabnanny") + _name("NannyNag")
    with pytest.raises(ValueError, match="not loaded"):
        _decode_key(data)
    assert "tabnanny" not in sys.modules


@pytest.mark.parametrize(
    ("module", "qualname", "match"),
    [
        ("builtins", "len", "not a type"),
        ("test_tier_keys", "Marker.missing", "no such name"),
        ("os", "path", "not a type"),
        ("os", "error", "alias"),
    ],
)
def test_a_name_that_is_no_type_does_not_decode(module, qualname, match):
    with pytest.raises(ValueError, match=match):
        _decode_key(b"\x01y" + _name(module) + _name(qualname))


def test_only_an_enum_class_is_called_to_decode_a_member():
    # `int(1)` would succeed: a type found by name is called only if it is an Enum.
    with pytest.raises(ValueError, match="not an Enum"):
        _decode_key(b"\x01e" + _name("builtins") + _name("int") + b"i\x01\x01")
    with pytest.raises(ValueError, match="malformed key encoding: an Enum value"):
        _decode_key(b"\x01e" + _name("test_tier_keys") + _name("Level") + b"T")
    with pytest.raises(ValueError, match="no member"):
        _decode_key(b"\x01e" + _name("test_tier_keys") + _name("Level") + b"i\x01\x07")


# --------------------------------------------------------------------------------------
# What cannot be encoded
# --------------------------------------------------------------------------------------


def test_unencodable_keys_name_their_type():
    class Local:
        pass

    with pytest.raises(TypeError, match=r"cannot encode a key of type 'object' for the shared tier"):
        _encode_key(object())
    with pytest.raises(
        TypeError, match=r"'test_tier_keys\.test_unencodable_keys_name_their_type\.<locals>\.Local'"
    ):
        _encode_key(Local())
    with pytest.raises(TypeError, match=r"<locals>\.Local'.*inside a function"):
        _encode_key(Local)
    with pytest.raises(TypeError, match=r"type 'list'"):
        _encode_key([1])
    with pytest.raises(TypeError, match=r"type 'list'"):
        _encode_key((1, (2, [1])))
    with pytest.raises(TypeError, match=r"type 'dict'"):
        _encode_key((1, {1: 2}))
    with pytest.raises(TypeError, match=r"type 'set'"):
        _encode_key((frozenset({1}), {1, 2}))
    with pytest.raises(TypeError, match=r"type 'test_tier_keys\.Marker'"):
        _encode_key((Holder.BOX,))


def test_a_type_whose_module_is_not_a_str_is_refused():
    odd = type("Odd", (), {})
    odd.__module__ = 5
    with pytest.raises(TypeError, match="__module__ is not a str"):
        _encode_key(odd)


# --------------------------------------------------------------------------------------
# Nesting and malformed input
# --------------------------------------------------------------------------------------


def _nested(depth):
    key = ()
    for _ in range(depth - 1):
        key = (key,)
    return key


def test_deep_nesting_is_refused():
    with pytest.raises(ValueError, match="key nests too deeply to encode"):
        _encode_key(_nested(300))
    with pytest.raises(ValueError, match="nests too deeply"):
        _encode_key(frozenset({_nested(299)}))
    assert _decode_key(_encode_key(_nested(256))) == _nested(256)
    with pytest.raises(ValueError, match="too deeply"):
        _encode_key(_nested(257))
    with pytest.raises(ValueError, match="malformed key encoding"):
        _decode_key(b"\x01" + b"t\x01" * 299 + b"t\x00")
    with pytest.raises(ValueError, match="malformed key encoding"):
        _decode_key(b"\x01" + b"t\x01" * 256 + b"t\x00")
    assert _decode_key(b"\x01" + b"t\x01" * 255 + b"t\x00") == _nested(256)


MALFORMED = [
    b"",
    b"\x00N",
    b"\x02N",
    b"\x01",
    b"\x01N\x00",
    b"\x01?",
    b"\x01i",
    b"\x01i\x01",
    b"\x01i\x01\x00",
    b"\x01i\x02\x01\x00",
    b"\x01i\x02\xff\xff",
    b"\x01i\x80\x01\x01",
    b"\x01i\x81\x00\x01",
    b"\x01f\x00\x00",
    b"\x01f\x00\x00\x00\x00\x00\x00\x00\x80",
    b"\x01f\x01\x00\x00\x00\x00\x00\xf8\x7f",
    b"\x01s\x02\xc3",
    b"\x01s\x01\xff",
    b"\x01S\x01a",
    b"\x01S\x01\xff",
    b"\x01b\x05abc",
    b"\x01t\x02N",
    b"\x01t\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01N",
    b"\x01t\xff\xff\xff\xff\x0fN",
    b"\x01z\x02i\x01\x02i\x01\x01",
    b"\x01z\x02i\x01\x01i\x01\x01",
    b"\x01z\x02TF",
    b"\x01z\x02i\x01\x01T",
    b"\x01z\x02Ti\x01\x01",
    b"\x01y\x00\x00",
    b"\x01y\x08builtins\x04int.",
    b"\x01y\x08builtins\x05\xff\xff\xff\xff\xff",
]


@pytest.mark.parametrize("data", MALFORMED, ids=[d.hex() for d in MALFORMED])
def test_malformed_encodings_raise_value_error(data):
    with pytest.raises(ValueError, match="malformed key encoding"):
        _decode_key(data)
