//! The canonical key encoding: bytes that every process writes alike for equal keys, whatever
//! its hash seed or interpreter, and that decode back into an equal key (same `==`, same hash).
//!
//! Version 1 is the byte 0x01, then one value: a tag byte and its payload. Lengths and counts
//! are unsigned LEB128 varints.
//!
//! | tag | value | payload |
//! |---|---|---|
//! | `N` `T` `F` | `None`, `True`, `False` | nothing |
//! | `i` | int | length, shortest two's-complement little-endian bytes (0 has none) |
//! | `f` | float | binary64 little-endian; -0.0 as 0.0, every NaN as 0x7ff8000000000000 |
//! | `s` | str | length, UTF-8 |
//! | `S` | str with lone surrogates | length, UTF-8 written with `surrogatepass` |
//! | `b` | bytes | length, the bytes |
//! | `t` | tuple | count, the items |
//! | `z` | frozenset | count, the items' encodings in bytewise order |
//! | `y` | type | length, module name; length, `__qualname__` (UTF-8) |
//! | `e` | Enum member | its class as for `y`, then its `.value` |
//!
//! Subclasses of int, float, str, bytes, tuple and frozenset are written as their base type.
//! Decoding is strict: it accepts one encoding per value (re-encoding what it decodes gives the
//! same bytes), and, since its input comes from other hosts, it never imports: a type is looked
//! up in the namespaces of modules already in `sys.modules`, which runs no module `__getattr__`.

use pyo3::exceptions::{PyAttributeError, PyException, PyOverflowError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyString, PyTuple, PyType};

const VERSION: u8 = 1;

/// The most containers (tuples, frozensets, Enum members) one key may nest, so that neither
/// direction's recursion can exhaust the stack.
const MAX_DEPTH: usize = 256;

const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

mod tag {
    pub const NONE: u8 = b'N';
    pub const TRUE: u8 = b'T';
    pub const FALSE: u8 = b'F';
    pub const INT: u8 = b'i';
    pub const FLOAT: u8 = b'f';
    pub const STR: u8 = b's';
    pub const SURROGATE_STR: u8 = b'S';
    pub const BYTES: u8 = b'b';
    pub const TUPLE: u8 = b't';
    pub const FROZENSET: u8 = b'z';
    pub const TYPE: u8 = b'y';
    pub const ENUM: u8 = b'e';
}

// ---------------------------------------------------------------------------------------------
// The pure parts: varints, ints and floats as bytes, reading.

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_blob(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `v` as its shortest two's-complement little-endian bytes: the buffer and how many of its
/// bytes count (none for 0).
fn int_bytes(v: i64) -> ([u8; 8], usize) {
    // The bits that differ from the sign, plus one sign bit.
    let magnitude = if v < 0 { !v } else { v };
    let bits = 64 - magnitude.leading_zeros() as usize + 1;
    let len = if v == 0 { 0 } else { bits.div_ceil(8) };
    (v.to_le_bytes(), len)
}

/// The value of at most 8 two's-complement little-endian bytes.
fn int_from_bytes(b: &[u8]) -> i64 {
    debug_assert!(b.len() <= 8);
    let fill = if b.last().is_some_and(|top| top & 0x80 != 0) { 0xff } else { 0 };
    let mut buf = [fill; 8];
    buf[..b.len()].copy_from_slice(b);
    i64::from_le_bytes(buf)
}

/// Whether `b` is the shortest two's-complement form of its value: a top byte of 0x00 or 0xff
/// must be needed to carry the sign. Zero is no bytes.
fn is_shortest(b: &[u8]) -> bool {
    match b {
        [] => true,
        [.., top] if *top != 0x00 && *top != 0xff => true,
        [only] => *only == 0xff,
        [.., below, top] => (below & 0x80 != 0) == (*top == 0x00),
    }
}

/// The bits a float is written as: one zero and one NaN, so equal keys give equal bytes.
fn float_bits(v: f64) -> u64 {
    if v.is_nan() {
        CANONICAL_NAN
    } else if v == 0.0 {
        0
    } else {
        v.to_bits()
    }
}

/// Why an encoding cannot be read; becomes `ValueError("malformed key encoding: ...")`.
#[derive(Debug, PartialEq, Eq)]
struct Malformed(&'static str);

impl From<Malformed> for PyErr {
    fn from(m: Malformed) -> PyErr {
        PyValueError::new_err(format!("malformed key encoding: {}", m.0))
    }
}

type Parse<T> = Result<T, Malformed>;

const TRUNCATED: Malformed = Malformed("truncated");

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn byte(&mut self) -> Parse<u8> {
        let b = *self.data.get(self.pos).ok_or(TRUNCATED)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Parse<&'a [u8]> {
        if n > self.remaining() {
            return Err(TRUNCATED);
        }
        let data: &'a [u8] = self.data;
        let taken = &data[self.pos..self.pos + n];
        self.pos += n;
        Ok(taken)
    }

    fn varint(&mut self) -> Parse<u64> {
        let mut n = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            // The tenth byte holds the 64th bit only.
            if i == 9 && b > 1 {
                break;
            }
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(Malformed("an overlong varint"));
                }
                return Ok(n);
            }
        }
        Err(Malformed("a varint beyond 64 bits"))
    }

    /// A length or count of what follows. Everything counted takes at least a byte, so it is
    /// never more than what is left: allocations sized by it stay within the input's size.
    fn len(&mut self) -> Parse<usize> {
        match usize::try_from(self.varint()?) {
            Ok(n) if n <= self.remaining() => Ok(n),
            _ => Err(Malformed("a length beyond the end")),
        }
    }

    fn blob(&mut self) -> Parse<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    fn utf8(&mut self) -> Parse<&'a str> {
        std::str::from_utf8(self.blob()?).map_err(|_| Malformed("invalid UTF-8"))
    }
}

/// The depth of a container's items, if a container may stand at `depth`.
fn nest(depth: usize) -> Option<usize> {
    (depth < MAX_DEPTH).then_some(depth + 1)
}

// ---------------------------------------------------------------------------------------------
// Python's side.

/// `sys.modules`, the only place decoding looks types up.
fn sys_modules(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    static MODULES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    MODULES.import(py, "sys", "modules")
}

/// `enum.Enum`, if `enum` is loaded: until it is, no object is an Enum member, and the codec
/// imports nothing.
fn enum_type(py: Python<'_>) -> PyResult<Option<&Bound<'_, PyType>>> {
    static ENUM: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    if let Some(e) = ENUM.get(py) {
        return Ok(Some(e.bind(py)));
    }
    let Some(module) = sys_modules(py)?.get_item(intern!(py, "enum"))? else {
        return Ok(None);
    };
    let e = module.getattr(intern!(py, "Enum"))?.cast_into::<PyType>()?;
    Ok(Some(ENUM.get_or_init(py, || e.unbind()).bind(py)))
}

/// `int.<name>(*args, signed=True)`, through `int` itself so that a subclass's overrides
/// play no part.
fn int_call<'py>(
    py: Python<'py>,
    name: &Bound<'py, PyString>,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "signed"), true)?;
    py.get_type::<PyInt>().call_method(name, args, Some(&kwargs))
}

/// A type's name as Python prints it: qualified by its module unless that is `builtins`.
fn display_name(module: &str, qualname: &str) -> String {
    if module == "builtins" {
        qualname.to_owned()
    } else {
        format!("{module}.{qualname}")
    }
}

fn type_name(ty: &Bound<'_, PyType>) -> String {
    let qualname = ty.qualname().map_or_else(|_| "?".to_owned(), |q| q.to_string());
    let module = ty.getattr(intern!(ty.py(), "__module__")).ok();
    match module.as_ref().and_then(|m| m.cast::<PyString>().ok()).and_then(|m| m.to_str().ok()) {
        Some(module) => display_name(module, &qualname),
        None => qualname,
    }
}

fn unencodable(obj: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "cannot encode a key of type '{}' for the shared tier: give a key_maker that returns str or bytes",
        type_name(&obj.get_type())
    ))
}

fn too_deep() -> PyErr {
    PyValueError::new_err("key nests too deeply to encode")
}

/// The key `obj` in the shared tier's encoding (version byte included).
pub fn encode_key(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let mut out = Vec::with_capacity(16);
    out.push(VERSION);
    encode_value(obj, &mut out, 0)?;
    Ok(out)
}

fn is_exact_builtin(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_none()
        || obj.is_exact_instance_of::<PyInt>()
        || obj.is_exact_instance_of::<PyString>()
        || obj.is_exact_instance_of::<PyTuple>()
        || obj.is_exact_instance_of::<PyBool>()
        || obj.is_exact_instance_of::<PyFloat>()
        || obj.is_exact_instance_of::<PyBytes>()
        || obj.is_exact_instance_of::<PyFrozenSet>()
}

fn encode_value(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    let py = obj.py();
    // Types and Enum members first: an IntEnum member is an int too. Exact builtins are
    // neither, which spares the common keys the test.
    if !is_exact_builtin(obj) {
        if let Ok(ty) = obj.cast::<PyType>() {
            out.push(tag::TYPE);
            return encode_type(ty, out);
        }
        if let Some(e) = enum_type(py)? {
            if obj.is_instance(e)? {
                return encode_enum(obj, out, depth);
            }
        }
    }
    if obj.is_none() {
        out.push(tag::NONE);
    } else if let Ok(b) = obj.cast::<PyBool>() {
        out.push(if b.is_true() { tag::TRUE } else { tag::FALSE });
    } else if obj.is_instance_of::<PyInt>() {
        encode_int(obj, out)?;
    } else if let Ok(s) = obj.cast::<PyString>() {
        encode_str(s, out)?;
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        let depth = nest(depth).ok_or_else(too_deep)?;
        out.push(tag::TUPLE);
        put_varint(out, t.len() as u64);
        for item in t.iter() {
            encode_value(&item, out, depth)?;
        }
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        out.push(tag::FLOAT);
        out.extend_from_slice(&float_bits(f.value()).to_le_bytes());
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        out.push(tag::BYTES);
        put_blob(out, b.as_bytes());
    } else if let Ok(s) = obj.cast::<PyFrozenSet>() {
        let depth = nest(depth).ok_or_else(too_deep)?;
        // Bytewise order of the items' encodings: iteration order follows the hash seed.
        let mut items = Vec::with_capacity(s.len());
        for item in s.iter() {
            let mut enc = Vec::new();
            encode_value(&item, &mut enc, depth)?;
            items.push(enc);
        }
        items.sort_unstable();
        out.push(tag::FROZENSET);
        put_varint(out, items.len() as u64);
        for enc in &items {
            out.extend_from_slice(enc);
        }
    } else {
        return Err(unencodable(obj));
    }
    Ok(())
}

fn encode_int(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    let py = obj.py();
    out.push(tag::INT);
    match obj.extract::<i64>() {
        Ok(v) => {
            let (buf, len) = int_bytes(v);
            put_blob(out, &buf[..len]);
        }
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => {
            // bit_length() / 8 + 1 bytes always hold the value and its sign; at most the top
            // byte is then redundant (a negative power of two's sign extension).
            let bits: usize = py.get_type::<PyInt>().call_method1(intern!(py, "bit_length"), (obj,))?.extract()?;
            let bytes = int_call(py, intern!(py, "to_bytes"), (obj, bits / 8 + 1, intern!(py, "little")))?;
            let mut bytes = bytes.cast_into::<PyBytes>()?.as_bytes().to_vec();
            while !is_shortest(&bytes) {
                bytes.pop();
            }
            put_blob(out, &bytes);
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

fn encode_str(s: &Bound<'_, PyString>, out: &mut Vec<u8>) -> PyResult<()> {
    if let Ok(text) = s.to_str() {
        out.push(tag::STR);
        put_blob(out, text.as_bytes());
        return Ok(());
    }
    // Lone surrogates have no UTF-8 form; `str.encode` itself, past a subclass's override.
    let py = s.py();
    let raw = py
        .get_type::<PyString>()
        .call_method1(intern!(py, "encode"), (s, intern!(py, "utf-8"), intern!(py, "surrogatepass")))?;
    out.push(tag::SURROGATE_STR);
    put_blob(out, raw.cast_into::<PyBytes>()?.as_bytes());
    Ok(())
}

/// A type as its module's name and its `__qualname__`, which another process looks up.
fn encode_type(ty: &Bound<'_, PyType>, out: &mut Vec<u8>) -> PyResult<()> {
    let py = ty.py();
    let qualname = ty.qualname()?;
    let qualname = qualname.to_str()?;
    let module = match ty.getattr(intern!(py, "__module__")) {
        Ok(m) => m.cast_into::<PyString>().ok(),
        Err(e) if e.is_instance_of::<PyAttributeError>(py) => None,
        Err(e) => return Err(e),
    };
    let Some(module) = module else {
        return Err(PyTypeError::new_err(format!(
            "cannot encode the type '{qualname}' for the shared tier: its __module__ is not a str"
        )));
    };
    let module = module.to_str()?;
    if qualname.contains("<locals>") {
        return Err(PyTypeError::new_err(format!(
            "cannot encode the type '{}' for the shared tier: it is defined inside a function, \
             where no other process can look it up",
            display_name(module, qualname)
        )));
    }
    put_blob(out, module.as_bytes());
    put_blob(out, qualname.as_bytes());
    Ok(())
}

fn encode_enum(member: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    let depth = nest(depth).ok_or_else(too_deep)?;
    out.push(tag::ENUM);
    encode_type(&member.get_type(), out)?;
    encode_value(&member.getattr(intern!(member.py(), "value"))?, out, depth)
}

/// The key that `encode_key` wrote as `data`.
pub fn decode_key<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let mut r = Reader::new(data);
    if r.byte()? != VERSION {
        return Err(Malformed("an unknown format version").into());
    }
    let key = decode_value(py, &mut r, 0)?;
    if r.remaining() != 0 {
        return Err(Malformed("trailing bytes").into());
    }
    Ok(key)
}

/// A Python error met while decoding, as the `ValueError` that decoding raises (an error that
/// is not an `Exception`, such as `KeyboardInterrupt`, stays itself).
fn undecodable(py: Python<'_>, err: PyErr, what: String) -> PyErr {
    if !err.is_instance_of::<PyException>(py) {
        return err;
    }
    let e = PyValueError::new_err(format!("cannot decode the key: {what}"));
    e.set_cause(py, Some(err));
    e
}

fn decode_value<'py>(py: Python<'py>, r: &mut Reader<'_>, depth: usize) -> PyResult<Bound<'py, PyAny>> {
    let too_deep = Malformed("nested deeper than 256 levels");
    Ok(match r.byte()? {
        tag::NONE => py.None().into_bound(py),
        tag::TRUE => PyBool::new(py, true).to_owned().into_any(),
        tag::FALSE => PyBool::new(py, false).to_owned().into_any(),
        tag::INT => decode_int(py, r.blob()?)?,
        tag::FLOAT => {
            let raw = r.take(8)?;
            let bits = u64::from_le_bytes(raw.try_into().map_err(|_| TRUNCATED)?);
            let v = f64::from_bits(bits);
            if float_bits(v) != bits {
                return Err(Malformed("a float not in its canonical form").into());
            }
            PyFloat::new(py, v).into_any()
        }
        tag::STR => PyString::new(py, r.utf8()?).into_any(),
        tag::SURROGATE_STR => decode_surrogates(py, r.blob()?)?,
        tag::BYTES => PyBytes::new(py, r.blob()?).into_any(),
        tag::TUPLE => {
            let depth = nest(depth).ok_or(too_deep)?;
            let n = r.len()?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(decode_value(py, r, depth)?);
            }
            PyTuple::new(py, items)?.into_any()
        }
        tag::FROZENSET => {
            let depth = nest(depth).ok_or(too_deep)?;
            decode_frozenset(py, r, depth)?
        }
        tag::TYPE => {
            let (module, qualname) = (r.utf8()?, r.utf8()?);
            resolve_type(py, module, qualname)?.into_any()
        }
        tag::ENUM => {
            let depth = nest(depth).ok_or(too_deep)?;
            decode_enum(py, r, depth)?
        }
        _ => return Err(Malformed("an unknown tag").into()),
    })
}

fn decode_int<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if !is_shortest(b) {
        return Err(Malformed("an int not in its shortest form").into());
    }
    if b.len() <= 8 {
        return Ok(PyInt::new(py, int_from_bytes(b)).into_any());
    }
    int_call(py, intern!(py, "from_bytes"), (PyBytes::new(py, b), intern!(py, "little")))
}

fn decode_surrogates<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if std::str::from_utf8(b).is_ok() {
        return Err(Malformed("a surrogate str that is valid UTF-8").into());
    }
    PyBytes::new(py, b)
        .call_method1(intern!(py, "decode"), (intern!(py, "utf-8"), intern!(py, "surrogatepass")))
        .map_err(|_| Malformed("invalid UTF-8 in a str with surrogates").into())
}

fn decode_frozenset<'py>(py: Python<'py>, r: &mut Reader<'_>, depth: usize) -> PyResult<Bound<'py, PyAny>> {
    let data = r.data;
    let n = r.len()?;
    let mut items = Vec::with_capacity(n);
    let mut previous: &[u8] = &[];
    for _ in 0..n {
        let start = r.pos;
        items.push(decode_value(py, r, depth)?);
        // Equal encodings may repeat: distinct NaN objects are distinct items.
        let enc = &data[start..r.pos];
        if enc < previous {
            return Err(Malformed("frozenset items out of order").into());
        }
        previous = enc;
    }
    let set = PyFrozenSet::new(py, &items).map_err(|e| undecodable(py, e, "an unhashable frozenset item".into()))?;
    if set.len() != n {
        return Err(Malformed("equal frozenset items").into());
    }
    Ok(set.into_any())
}

/// The type `module.qualname`, found in the namespaces of a loaded module and its classes:
/// never imported, and no `__getattr__` of a module (which may import lazily) runs.
fn resolve_type<'py>(py: Python<'py>, module: &str, qualname: &str) -> PyResult<Bound<'py, PyType>> {
    if qualname.split('.').any(str::is_empty) {
        return Err(Malformed("an empty name in a type's qualname").into());
    }
    // The one builtin type a key may hold that `builtins` does not name.
    if module == "builtins" && qualname == "NoneType" {
        return Ok(py.None().into_bound(py).get_type());
    }
    let name = display_name(module, qualname);
    let missing = |why: &str| PyValueError::new_err(format!("cannot decode the key: no type '{name}' here ({why})"));
    let Some(mut obj) = sys_modules(py)?.get_item(module)? else {
        return Err(missing("its module is not loaded"));
    };
    for part in qualname.split('.') {
        let namespace = obj.getattr(intern!(py, "__dict__")).map_err(|_| missing("no such name"))?;
        obj = namespace.get_item(part).map_err(|_| missing("no such name"))?;
    }
    let ty = obj.cast_into::<PyType>().map_err(|_| missing("the name is not a type"))?;
    // An alias (`os.error` is `OSError`) is never what encoding wrote: one type, one encoding.
    let mut names = Vec::new();
    if encode_type(&ty, &mut names).is_err() || names != type_names(module, qualname) {
        return Err(missing("the name is an alias"));
    }
    Ok(ty)
}

/// The payload of `y` for `module.qualname`.
fn type_names(module: &str, qualname: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(module.len() + qualname.len() + 2);
    put_blob(&mut out, module.as_bytes());
    put_blob(&mut out, qualname.as_bytes());
    out
}

fn decode_enum<'py>(py: Python<'py>, r: &mut Reader<'_>, depth: usize) -> PyResult<Bound<'py, PyAny>> {
    let (module, qualname) = (r.utf8()?, r.utf8()?);
    let cls = resolve_type(py, module, qualname)?;
    let name = display_name(module, qualname);
    // Only an Enum class is called: any other type found by name could do anything.
    let is_enum = match enum_type(py) {
        Ok(Some(e)) => cls.is_subclass(e).map_err(|e| undecodable(py, e, format!("'{name}' is not an Enum")))?,
        Ok(None) => false,
        Err(e) => return Err(undecodable(py, e, "no enum module".into())),
    };
    if !is_enum {
        return Err(PyValueError::new_err(format!("cannot decode the key: '{name}' is not an Enum")));
    }
    let data = r.data;
    let start = r.pos;
    let value = decode_value(py, r, depth)?;
    let member =
        cls.call1((value,)).map_err(|e| undecodable(py, e, format!("no member of '{name}' has that value")))?;
    // `Level(True)` is `Level.LOW`, whose value encoding wrote as 1.
    let mut canonical = Vec::new();
    let written = member.getattr(intern!(py, "value")).and_then(|v| encode_value(&v, &mut canonical, depth));
    if written.is_err() || canonical != data[start..r.pos] {
        return Err(Malformed("an Enum value not as its member holds it").into());
    }
    Ok(member)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_bytes(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, n);
        out
    }

    fn read_varint(bytes: &[u8]) -> Parse<u64> {
        let mut r = Reader::new(bytes);
        let n = r.varint()?;
        assert_eq!(r.remaining(), 0, "{bytes:?}");
        Ok(n)
    }

    #[test]
    fn varints_round_trip() {
        for n in [0, 1, 127, 128, 255, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            assert_eq!(read_varint(&varint_bytes(n)), Ok(n), "{n}");
        }
        assert_eq!(varint_bytes(0), [0]);
        assert_eq!(varint_bytes(127), [0x7f]);
        assert_eq!(varint_bytes(128), [0x80, 0x01]);
        assert_eq!(varint_bytes(300), [0xac, 0x02]);
        assert_eq!(varint_bytes(u64::MAX).len(), 10);
    }

    #[test]
    fn malformed_varints() {
        assert_eq!(read_varint(&[]), Err(TRUNCATED));
        assert_eq!(read_varint(&[0x80]), Err(TRUNCATED));
        assert_eq!(read_varint(&[0x80, 0x00]), Err(Malformed("an overlong varint")));
        assert_eq!(read_varint(&[0xff, 0x80, 0x00]), Err(Malformed("an overlong varint")));
        let mut beyond = vec![0xff; 9];
        beyond.push(0x02);
        assert_eq!(read_varint(&beyond), Err(Malformed("a varint beyond 64 bits")));
        let mut eleven = vec![0xff; 10];
        eleven.push(0x01);
        assert_eq!(read_varint(&eleven), Err(Malformed("a varint beyond 64 bits")));
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(read_varint(&max), Ok(u64::MAX));
    }

    #[test]
    fn lengths_stay_within_the_input() {
        assert_eq!(Reader::new(&[3, b'a', b'b', b'c']).blob(), Ok(&b"abc"[..]));
        assert_eq!(Reader::new(&[4, b'a', b'b', b'c']).blob(), Err(Malformed("a length beyond the end")));
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]).len(), Err(Malformed("a length beyond the end")));
        assert_eq!(Reader::new(&[2, 0xc3, 0x28]).utf8(), Err(Malformed("invalid UTF-8")));
    }

    fn int_vec(v: i64) -> Vec<u8> {
        let (buf, len) = int_bytes(v);
        buf[..len].to_vec()
    }

    #[test]
    fn ints_as_shortest_twos_complement() {
        let cases: [(i64, &[u8]); 11] = [
            (0, &[]),
            (1, &[0x01]),
            (-1, &[0xff]),
            (127, &[0x7f]),
            (128, &[0x80, 0x00]),
            (255, &[0xff, 0x00]),
            (-128, &[0x80]),
            (-129, &[0x7f, 0xff]),
            (-256, &[0x00, 0xff]),
            (i64::MIN, &[0, 0, 0, 0, 0, 0, 0, 0x80]),
            (i64::MAX, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        ];
        for (v, bytes) in cases {
            assert_eq!(int_vec(v), bytes, "{v}");
            assert!(is_shortest(bytes), "{v}");
            assert_eq!(int_from_bytes(bytes), v, "{v}");
        }
        for v in (-70_000..70_000).chain([i64::MIN + 1, i64::MAX - 1, 1 << 40, -(1 << 40)]) {
            let bytes = int_vec(v);
            assert!(is_shortest(&bytes), "{v}");
            assert_eq!(int_from_bytes(&bytes), v, "{v}");
            // One byte more of sign extension is never the shortest form.
            let mut longer = v.to_le_bytes().to_vec();
            longer.truncate(bytes.len());
            longer.push(if v < 0 { 0xff } else { 0x00 });
            assert!(!is_shortest(&longer), "{v}");
        }
    }

    #[test]
    fn floats_are_canonical() {
        assert_eq!(float_bits(-0.0), 0);
        assert_eq!(float_bits(0.0), 0);
        assert_eq!(float_bits(f64::NAN), CANONICAL_NAN);
        assert_eq!(float_bits(-f64::NAN), CANONICAL_NAN);
        assert_eq!(float_bits(f64::from_bits(0x7ff0_0000_0000_0001)), CANONICAL_NAN);
        assert_eq!(float_bits(f64::from_bits(0xfff8_0000_dead_beef)), CANONICAL_NAN);
        assert_eq!(float_bits(1.5), 1.5f64.to_bits());
        assert_eq!(float_bits(f64::INFINITY), f64::INFINITY.to_bits());
        assert_eq!(float_bits(f64::NEG_INFINITY), f64::NEG_INFINITY.to_bits());
        assert_eq!(float_bits(-1.5), (-1.5f64).to_bits());
    }

    #[test]
    fn depth_is_bounded() {
        assert_eq!(nest(0), Some(1));
        assert_eq!(nest(MAX_DEPTH - 1), Some(MAX_DEPTH));
        assert_eq!(nest(MAX_DEPTH), None);
    }
}
