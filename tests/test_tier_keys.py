"""The shared tier's key encoding: canonical (the same bytes in every process, whatever its hash
seed), typed, decodable back into an equal key, and strict about what it refuses."""

from __future__ import annotations

import enum
import math
import os
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

import cachebox
from cachebox._core import _decode_key, _encode_key


class Color(enum.Enum):
    RED = 1
    BLUE = "b"


class Level(enum.IntEnum):
    LOW = 1


class Plain:
    pass


GOLDEN = [
    (None, b"\x01N"),
    (True, b"\x01T"),
    (0, b"\x01i\x00"),
    (-1, b"\x01i\x01\xff"),
    (255, b"\x01i\x02\xff\x00"),
    (2**70, b"\x01i\x09" + b"\x00" * 8 + b"\x40"),
    (1.5, b"\x01f\x00\x00\x00\x00\x00\x00\xf8\x3f"),
    (-0.0, b"\x01f" + b"\x00" * 8),
    ("é", b"\x01s\x02\xc3\xa9"),
    (b"x", b"\x01b\x01x"),
    ((1, "a"), b"\x01t\x02i\x01\x01s\x01a"),
    (frozenset({3, 1, 2}), b"\x01z\x03i\x01\x01i\x01\x02i\x01\x03"),
    (cachebox.make_key((1,), {"b": 2}), b"\x01t\x04i\x01\x01y\x08builtins\x06objects\x01bi\x01\x02"),
    (cachebox.make_typed_key((1,), {}), b"\x01t\x02i\x01\x01y\x08builtins\x03int"),
]


@pytest.mark.parametrize(("key", "encoded"), GOLDEN)
def test_golden_encodings(key, encoded):
    assert _encode_key(key) == encoded
    assert _decode_key(encoded) == key


def test_types_are_told_apart():
    assert len({_encode_key(k) for k in (1, 1.0, True, "1", b"1", (1,))}) == 6
    assert _encode_key(0.0) == _encode_key(-0.0)
    assert _encode_key(float("nan")) == _encode_key(-float("nan"))


def test_the_same_bytes_in_every_process():
    code = (
        "import sys; from cachebox._core import _encode_key; "
        "k = (frozenset({'alpha', 'beta', 'gamma', 'delta', 'eps'}), ('x', frozenset({b'a', b'b', 'c'})));"
        "sys.stdout.write(_encode_key(k).hex())"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        outputs.add(out.stdout)
    assert len(outputs) == 1


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**300), max_value=2**300)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
keys = st.recursive(
    scalars, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4), max_leaves=20
)


@given(keys)
def test_round_trip(key):
    encoded = _encode_key(key)
    back = _decode_key(encoded)
    assert back == key
    assert type(back) is type(key)
    assert hash(back) == hash(key)
    assert _encode_key(back) == encoded


@given(st.binary(max_size=64))
def test_decoding_junk_raises_value_error_or_succeeds(data):
    try:
        _decode_key(b"\x01" + data)
    except ValueError:
        pass


def test_malformed():
    for data in (
        b"",
        b"\x02N",
        b"\x01",
        b"\x01q",
        b"\x01NN",
        b"\x01s\x05ab",
        b"\x01t\xff\xff\xff\xff\x0f",
        b"\x01s\x01\xff",
    ):
        with pytest.raises(ValueError, match="malformed"):
            _decode_key(data)


def test_refused_keys_name_their_type():
    with pytest.raises(TypeError, match="'object'"):
        _encode_key(object())
    with pytest.raises(TypeError, match="test_tier_keys.Plain"):
        _encode_key((1, Plain()))
    with pytest.raises(TypeError, match="'list'"):
        _encode_key((1, [1]))
    with pytest.raises(TypeError, match="'dict'"):
        _encode_key(({1: 2},))

    class Local:
        pass

    with pytest.raises(TypeError, match="Local"):
        _encode_key(Local)


def test_enums_and_classes():
    for key in (Color.RED, Color.BLUE, Level.LOW, int, object, Plain, (Color.RED, Level.LOW)):
        back = _decode_key(_encode_key(key))
        assert back == key
        if not isinstance(key, tuple):
            assert back is key
    assert _encode_key(Level.LOW) != _encode_key(1)
    # A class of a module that is not imported is not imported by decoding.
    encoded = b"\x01y\x10not_imported_mod\x01X"
    with pytest.raises(ValueError, match="not imported"):
        _decode_key(encoded)
    assert "not_imported_mod" not in sys.modules


def test_depth_is_bounded():
    key: object = ()
    for _ in range(300):
        key = (key,)
    with pytest.raises(ValueError, match="deeply"):
        _encode_key(key)
    with pytest.raises(ValueError, match="malformed"):
        _decode_key(b"\x01" + b"t\x01" * 300 + b"N")


def test_surrogates_and_subclasses():
    assert _decode_key(_encode_key("\udc80x")) == "\udc80x"

    class MyInt(int):
        pass

    assert _decode_key(_encode_key(MyInt(5))) == 5
    assert not math.isnan(_decode_key(_encode_key(2.5)))
