//! The shared tier's key encoding: a call's key as bytes that are the same in every process
//! and on every host (no `hash()`, which is salted per process; no `repr`, which can hold an
//! address; no pickle, which is not canonical), and that decode back into an equal key, so a
//! remote invalidation can find its entry in this process's first tier.
//!
//! Format 1: the version byte `0x01`, then one value: a tag byte and its payload. Lengths and
//! counts are LEB128 varints. `N` None, `T`/`F` bools, `i` int (varint byte count, then the
//! shortest two's-complement little-endian bytes), `f` float (binary64 little-endian, -0.0 as
//! 0.0, one NaN), `s` str (UTF-8) or `S` (a str with lone surrogates, as "surrogatepass"
//! writes it), `b` bytes, `t` tuple (count, items), `z` frozenset (count, items sorted by their
//! encodings), `y` a class (module and qualified name), `e` an enum member (its class as `y`
//! writes it, then its value). Subclasses of int, float, str, bytes and tuple are encoded as
//! their base type, which decodes to an equal key.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyFrozenSet, PyInt, PyString, PyTuple, PyType};
use pyo3::{intern, PyTypeInfo};

const VERSION: u8 = 1;
/// How deep keys may nest; deeper ones are refused (encoding and decoding alike).
const MAX_DEPTH: usize = 256;

/// `_encode_key(key) -> bytes`: the canonical encoding of a key.
#[pyfunction]
pub fn _encode_key<'py>(key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(key.py(), &encode_key(key)?))
}

/// `_decode_key(data) -> object`: the key `_encode_key` encoded.
#[pyfunction]
pub fn _decode_key<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    decode_key(py, data)
}

pub fn encode_key(key: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let mut out = vec![VERSION];
    encode(key, &mut out, 0)?;
    Ok(out)
}

pub fn decode_key<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let mut reader = Reader { data, at: 0 };
    if reader.byte()? != VERSION {
        return Err(malformed("unknown format version"));
    }
    let value = reader.value(py, 0)?;
    if reader.at != data.len() {
        return Err(malformed("trailing bytes"));
    }
    Ok(value)
}

fn malformed(why: &str) -> PyErr {
    PyValueError::new_err(format!("malformed key encoding: {why}"))
}

fn too_deep() -> PyErr {
    PyValueError::new_err("key nests too deeply to encode")
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The shortest two's-complement little-endian bytes of `n` (none for 0).
pub(crate) fn int_bytes(n: i128) -> Vec<u8> {
    let mut bytes = n.to_le_bytes().to_vec();
    // Drop high bytes that only repeat the sign of the byte below them.
    while let [.., below, top] = bytes[..] {
        if (top == 0 && below < 0x80) || (top == 0xff && below >= 0x80) {
            bytes.pop();
        } else {
            break;
        }
    }
    if bytes == [0] {
        bytes.clear();
    }
    bytes
}

/// The float's bits as the encoding writes them: -0.0 is 0.0 and every NaN is one NaN.
pub(crate) fn float_bits(x: f64) -> u64 {
    if x.is_nan() {
        0x7ff8_0000_0000_0000
    } else if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

fn is_enum_member(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = obj.py();
    static ENUM: pyo3::sync::PyOnceLock<Py<PyType>> = pyo3::sync::PyOnceLock::new();
    let enum_type = ENUM.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import(intern!(py, "enum"))?.getattr(intern!(py, "Enum"))?.cast_into::<PyType>()?.unbind())
    })?;
    obj.is_instance(enum_type.bind(py))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    let ty = obj.get_type();
    match (ty.module(), ty.qualname()) {
        (Ok(module), Ok(name)) if module.to_cow().is_ok_and(|m| m != "builtins") => format!("{module}.{name}"),
        (_, Ok(name)) => name.to_string(),
        _ => "?".to_owned(),
    }
}

fn encode_class(ty: &Bound<'_, PyType>, out: &mut Vec<u8>) -> PyResult<()> {
    let module = ty.module()?;
    let qualname = ty.qualname()?;
    let (module, qualname) = (module.to_str()?, qualname.to_str()?);
    if qualname.contains('<') {
        return Err(PyTypeError::new_err(format!(
            "cannot encode the class {module}.{qualname} in a key for the shared tier: it is not reachable \
             by name (define it at module level)"
        )));
    }
    put_varint(out, module.len() as u64);
    out.extend_from_slice(module.as_bytes());
    put_varint(out, qualname.len() as u64);
    out.extend_from_slice(qualname.as_bytes());
    Ok(())
}

fn encode(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    let py = obj.py();
    if obj.is_none() {
        out.push(b'N');
    } else if let Ok(b) = obj.cast::<PyBool>() {
        out.push(if b.is_true() { b'T' } else { b'F' });
    } else if obj.is_exact_instance_of::<PyString>() || obj.is_exact_instance_of::<PyInt>() {
        // The common keys first; exact types are never enum members.
        encode_scalar(obj, out)?;
    } else if is_enum_member(obj)? {
        out.push(b'e');
        encode_class(&obj.get_type(), out)?;
        encode(&obj.getattr(intern!(py, "value"))?, out, depth + 1)?;
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        out.push(b't');
        put_varint(out, t.len() as u64);
        for item in t.iter() {
            encode(&item, out, depth + 1)?;
        }
    } else if let Ok(set) = obj.cast::<PyFrozenSet>() {
        let mut items = Vec::with_capacity(set.len());
        for item in set.iter() {
            let mut one = Vec::new();
            encode(&item, &mut one, depth + 1)?;
            items.push(one);
        }
        items.sort_unstable();
        out.push(b'z');
        put_varint(out, items.len() as u64);
        for item in items {
            out.extend_from_slice(&item);
        }
    } else if let Ok(ty) = obj.cast::<PyType>() {
        out.push(b'y');
        encode_class(ty, out)?;
    } else {
        encode_scalar(obj, out)?;
    }
    Ok(())
}

/// ints, floats, strs and bytes (and their subclasses); anything else is refused.
fn encode_scalar(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    let py = obj.py();
    if let Ok(s) = obj.cast::<PyString>() {
        match s.to_str() {
            Ok(text) => put_bytes(out, b's', text.as_bytes()),
            Err(_) => {
                let raw = s.call_method1(intern!(py, "encode"), ("utf-8", "surrogatepass"))?;
                put_bytes(out, b'S', raw.cast::<PyBytes>()?.as_bytes());
            }
        }
    } else if let Ok(i) = obj.cast::<PyInt>() {
        out.push(b'i');
        let bytes = match i.extract::<i128>() {
            Ok(n) => int_bytes(n),
            Err(_) => {
                // Beyond 128 bits: the shortest signed length, as `int.to_bytes` writes it.
                let bits: usize = i.call_method0(intern!(py, "bit_length"))?.extract()?;
                let len = bits / 8 + 1;
                let kwargs = pyo3::types::PyDict::new(py);
                kwargs.set_item(intern!(py, "signed"), true)?;
                let raw = i.call_method(intern!(py, "to_bytes"), (len, "little"), Some(&kwargs))?;
                int_trim(raw.cast::<PyBytes>()?.as_bytes().to_vec())
            }
        };
        put_varint(out, bytes.len() as u64);
        out.extend_from_slice(&bytes);
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        out.push(b'f');
        out.extend_from_slice(&float_bits(f.value()).to_le_bytes());
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        put_bytes(out, b'b', b.as_bytes());
    } else {
        return Err(PyTypeError::new_err(format!(
            "cannot encode a key of type '{}' for the shared tier: give a key_maker that returns str or bytes",
            type_name(obj)
        )));
    }
    Ok(())
}

fn int_trim(mut bytes: Vec<u8>) -> Vec<u8> {
    while let [.., below, top] = bytes[..] {
        if (top == 0 && below < 0x80) || (top == 0xff && below >= 0x80) {
            bytes.pop();
        } else {
            break;
        }
    }
    bytes
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> PyResult<u8> {
        let b = *self.data.get(self.at).ok_or_else(|| malformed("truncated"))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> PyResult<usize> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n).map_err(|_| malformed("length out of range"));
            }
        }
        Err(malformed("overlong varint"))
    }

    fn take(&mut self, len: usize) -> PyResult<&'a [u8]> {
        let end = self.at.checked_add(len).filter(|&e| e <= self.data.len()).ok_or_else(|| malformed("truncated"))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn counted(&mut self) -> PyResult<&'a [u8]> {
        let len = self.varint()?;
        self.take(len)
    }

    fn text(&mut self) -> PyResult<&'a str> {
        std::str::from_utf8(self.counted()?).map_err(|_| malformed("invalid UTF-8"))
    }

    /// A class by module and qualified name, from modules already imported: decoding data from
    /// the network never imports anything.
    fn class<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyType>> {
        let module = self.text()?;
        let qualname = self.text()?;
        let modules = py.import(intern!(py, "sys"))?.getattr(intern!(py, "modules"))?;
        let mut found = modules.get_item(module).map_err(|_| malformed("a class of a module not imported"))?;
        for part in qualname.split('.') {
            found = found.getattr(part).map_err(|_| malformed("a class that does not exist"))?;
        }
        found.cast_into::<PyType>().map_err(|_| malformed("a name that is not a class"))
    }

    fn value<'py>(&mut self, py: Python<'py>, depth: usize) -> PyResult<Bound<'py, PyAny>> {
        if depth >= MAX_DEPTH {
            return Err(malformed("nests too deeply"));
        }
        Ok(match self.byte()? {
            b'N' => py.None().into_bound(py),
            b'T' => PyBool::new(py, true).to_owned().into_any(),
            b'F' => PyBool::new(py, false).to_owned().into_any(),
            b'i' => {
                let bytes = self.counted()?;
                if bytes.len() <= 16 {
                    let fill = if bytes.last().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
                    let mut wide = [fill; 16];
                    wide[..bytes.len()].copy_from_slice(bytes);
                    i128::from_le_bytes(wide).into_pyobject(py)?.into_any()
                } else {
                    let kwargs = pyo3::types::PyDict::new(py);
                    kwargs.set_item(intern!(py, "signed"), true)?;
                    PyInt::type_object(py).call_method(
                        intern!(py, "from_bytes"),
                        (PyBytes::new(py, bytes), "little"),
                        Some(&kwargs),
                    )?
                }
            }
            b'f' => {
                let raw: [u8; 8] = self.take(8)?.try_into().map_err(|_| malformed("truncated"))?;
                PyFloat::new(py, f64::from_bits(u64::from_le_bytes(raw))).into_any()
            }
            b's' => PyString::new(py, self.text()?).into_any(),
            b'S' => PyBytes::new(py, self.counted()?)
                .call_method1(intern!(py, "decode"), ("utf-8", "surrogatepass"))
                .map_err(|_| malformed("invalid surrogate text"))?,
            b'b' => PyBytes::new(py, self.counted()?).into_any(),
            b't' => {
                let count = self.varint()?;
                // Every item takes at least a byte: a count beyond the input is a lie.
                if count > self.data.len() - self.at {
                    return Err(malformed("truncated"));
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(py, depth + 1)?);
                }
                PyTuple::new(py, items)?.into_any()
            }
            b'z' => {
                let count = self.varint()?;
                if count > self.data.len() - self.at {
                    return Err(malformed("truncated"));
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(py, depth + 1)?);
                }
                PyFrozenSet::new(py, &items).map_err(|_| malformed("an unhashable set item"))?.into_any()
            }
            b'y' => self.class(py)?.into_any(),
            b'e' => {
                let class = self.class(py)?;
                let value = self.value(py, depth + 1)?;
                class.call1((value,)).map_err(|_| malformed("an enum member that does not exist"))?
            }
            _ => return Err(malformed("unknown tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_varint(bytes: &[u8]) -> Option<usize> {
        let mut n: u64 = 0;
        for (i, b) in bytes.iter().enumerate() {
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(n as usize);
            }
        }
        None
    }

    #[test]
    fn varints_round_trip() {
        for n in [0u64, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            assert_eq!(read_varint(&out), Some(n as usize));
        }
        let mut out = Vec::new();
        put_varint(&mut out, 128);
        assert_eq!(out, [0x80, 0x01]);
    }

    #[test]
    fn ints_take_their_shortest_twos_complement() {
        assert_eq!(int_bytes(0), Vec::<u8>::new());
        assert_eq!(int_bytes(1), [1]);
        assert_eq!(int_bytes(-1), [0xff]);
        assert_eq!(int_bytes(127), [0x7f]);
        assert_eq!(int_bytes(128), [0x80, 0]);
        assert_eq!(int_bytes(-128), [0x80]);
        assert_eq!(int_bytes(-129), [0x7f, 0xff]);
        assert_eq!(int_bytes(255), [0xff, 0]);
        assert_eq!(int_bytes(i64::MAX as i128), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(int_bytes(i64::MIN as i128), [0, 0, 0, 0, 0, 0, 0, 0x80]);
        assert_eq!(int_bytes(i128::MIN).len(), 16);
    }

    #[test]
    fn floats_have_one_zero_and_one_nan() {
        assert_eq!(float_bits(-0.0), float_bits(0.0));
        assert_eq!(float_bits(f64::NAN), float_bits(-f64::NAN));
        assert_eq!(float_bits(1.5), 1.5f64.to_bits());
    }
}
