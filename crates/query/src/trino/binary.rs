//! Athena's hashes and binary functions, on `varbinary` as in Athena: `to_utf8`, `from_utf8`,
//! `to_hex` (upper case), `from_hex`, `md5`, `sha1`, `sha256`, `crc32` (bigint), `sha512`, `xxhash64` (8 bytes, big
//! endian), `to_base64`, `from_base64`, `to_base64url`, `from_base64url`; numbers as big-endian
//! bytes and back: `to_big_endian_64`/`from_big_endian_64` (bigint), `to_big_endian_32`/
//! `from_big_endian_32` (integer), `to_ieee754_64`/`from_ieee754_64` (double) and
//! `to_ieee754_32`/`from_ieee754_32` (real); the `from_` forms refuse input of another length;
//! `hmac_md5`, `hmac_sha1`, `hmac_sha256`, `hmac_sha512` (message, key); `murmur3` (128 bits);
//! `to_base32`, `from_base32` (RFC 4648, padded).

use arrow::array::{Array, ArrayRef, BinaryArray, StringArray};
use arrow::datatypes::DataType;
use base64::Engine;
use md5::Digest;

use super::fun::{Call, Fun, Result, arc, arity, text};

fn bytes(a: &ArrayRef) -> Result<BinaryArray> {
    let b = arrow::compute::cast(a, &DataType::Binary)?;
    Ok(b.as_any()
        .downcast_ref::<BinaryArray>()
        .expect("cast to Binary")
        .clone())
}

fn map_bytes(a: &ArrayRef, f: impl Fn(&[u8]) -> Vec<u8>) -> Result<ArrayRef> {
    let b = bytes(a)?;
    let out: Vec<Option<Vec<u8>>> = b.iter().map(|v| v.map(&f)).collect();
    Ok(arc(BinaryArray::from_iter(out)))
}

fn hex_upper(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[usize::from(x >> 4)] as char);
        s.push(H[usize::from(x & 15)] as char);
    }
    s
}

fn from_hex(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    decode_each(call, &a[0], |v| {
        v.as_bytes()
            .chunks(2)
            .map(|p| {
                std::str::from_utf8(p)
                    .ok()
                    .filter(|p| p.len() == 2)
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| format!("{v:?} is not hexadecimal of even length"))
    })
}

/// Each row's text decoded to bytes by `decode`, whose error is the row's.
fn decode_each(
    call: &Call,
    a: &ArrayRef,
    decode: impl Fn(&str) -> std::result::Result<Vec<u8>, String>,
) -> Result<ArrayRef> {
    let s = text(a)?;
    let mut out: Vec<Option<Vec<u8>>> = Vec::with_capacity(s.len());
    for v in s.iter() {
        out.push(match v.map(&decode) {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => call.row_err(e)?,
        });
    }
    Ok(arc(BinaryArray::from_iter(out)))
}

fn base64_decode(call: &Call, a: &[ArrayRef], url: bool) -> Result<ArrayRef> {
    decode_each(call, &a[0], |v| {
        let engine = if url {
            &base64::engine::general_purpose::URL_SAFE
        } else {
            &base64::engine::general_purpose::STANDARD
        };
        engine
            .decode(v)
            .map_err(|e| format!("{v:?} is not base64: {e}"))
    })
}

fn to_text(a: &ArrayRef, f: impl Fn(&[u8]) -> String) -> Result<ArrayRef> {
    let b = bytes(a)?;
    Ok(arc(StringArray::from(
        b.iter().map(|v| v.map(&f)).collect::<Vec<_>>(),
    )))
}

/// A number column as its big-endian bytes (`width` 4 or 8; `float`: IEEE 754).
fn number_bytes(call: &Call, a: &[ArrayRef], width: usize, float: bool) -> Result<ArrayRef> {
    let target = match (width, float) {
        (8, false) => DataType::Int64,
        (4, false) => DataType::Int32,
        (8, true) => DataType::Float64,
        _ => DataType::Float32,
    };
    let v = arrow::compute::cast_with_options(
        &a[0],
        &target,
        &arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        },
    )
    .map_err(|e| datafusion::common::DataFusionError::Execution(format!("{}: {e}", call.name)))?;
    use arrow::array::AsArray;
    use arrow::datatypes::{Float32Type, Float64Type, Int32Type, Int64Type};
    let out: Vec<Option<Vec<u8>>> = match target {
        DataType::Int64 => v
            .as_primitive::<Int64Type>()
            .iter()
            .map(|x| x.map(|x| x.to_be_bytes().to_vec()))
            .collect(),
        DataType::Int32 => v
            .as_primitive::<Int32Type>()
            .iter()
            .map(|x| x.map(|x| x.to_be_bytes().to_vec()))
            .collect(),
        DataType::Float64 => v
            .as_primitive::<Float64Type>()
            .iter()
            .map(|x| x.map(|x| x.to_be_bytes().to_vec()))
            .collect(),
        _ => v
            .as_primitive::<Float32Type>()
            .iter()
            .map(|x| x.map(|x| x.to_be_bytes().to_vec()))
            .collect(),
    };
    Ok(arc(BinaryArray::from_iter(out)))
}

/// `hmac_*(message, key)`: the keyed hash of each row's message.
fn hmac_of<D>(a: &[ArrayRef]) -> Result<ArrayRef>
where
    D: hmac::digest::Digest + hmac::digest::core_api::BlockSizeUser,
{
    use hmac::Mac;
    let (msg, key) = (bytes(&a[0])?, bytes(&a[1])?);
    let out: Vec<Option<Vec<u8>>> = (0..msg.len())
        .map(|i| {
            if msg.is_null(i) || key.is_null(i) {
                return None;
            }
            let mut mac = hmac::SimpleHmac::<D>::new_from_slice(key.value(i))
                .expect("HMAC takes a key of any length");
            mac.update(msg.value(i));
            Some(mac.finalize().into_bytes().to_vec())
        })
        .collect();
    Ok(arc(BinaryArray::from_iter(out)))
}

/// Big-endian bytes back to a number of `call.ret`'s type, refusing another length.
fn bytes_number(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    use arrow::array::{Float32Array, Float64Array, Int32Array, Int64Array};
    let b = bytes(&a[0])?;
    let width = match call.ret {
        DataType::Int64 | DataType::Float64 => 8,
        _ => 4,
    };
    let mut raw: Vec<Option<[u8; 8]>> = Vec::with_capacity(b.len());
    for v in b.iter() {
        raw.push(match v {
            None => None,
            Some(v) if v.len() == width => {
                let mut x = [0u8; 8];
                x[..width].copy_from_slice(v);
                Some(x)
            }
            Some(v) => call.row_err(format!(
                "expected {width}-byte input, but got instead: {}",
                v.len()
            ))?,
        });
    }
    let four = |x: &[u8; 8]| [x[0], x[1], x[2], x[3]];
    Ok(match call.ret {
        DataType::Int64 => arc(Int64Array::from_iter(
            raw.iter().map(|x| x.map(i64::from_be_bytes)),
        )),
        DataType::Int32 => arc(Int32Array::from_iter(
            raw.iter()
                .map(|x| x.as_ref().map(|x| i32::from_be_bytes(four(x)))),
        )),
        DataType::Float64 => arc(Float64Array::from_iter(
            raw.iter().map(|x| x.map(f64::from_be_bytes)),
        )),
        _ => arc(Float32Array::from_iter(
            raw.iter()
                .map(|x| x.as_ref().map(|x| f32::from_be_bytes(four(x)))),
        )),
    })
}

/// MurmurHash3's 128-bit x64 form with seed 0, as 16 bytes: the two 64-bit halves, each little
/// endian, the first half first.
fn murmur3_128(b: &[u8]) -> Vec<u8> {
    let h = murmur3::murmur3_x64_128(&mut std::io::Cursor::new(b), 0)
        .expect("reading from memory cannot fail");
    h.to_le_bytes().to_vec()
}

/// `from_base32(text)`: RFC 4648 base32 in upper-case letters, the padding optional.
fn from_base32(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    decode_each(call, &a[0], |v| {
        data_encoding::BASE32_NOPAD
            .decode(v.trim_end_matches('=').as_bytes())
            .map_err(|e| format!("{v:?} is not base32: {e}"))
    })
}

fn bin(n: &str, t: &[DataType]) -> Result<DataType> {
    arity(n, t, &[1])?;
    Ok(DataType::Binary)
}

fn bin2(n: &str, t: &[DataType]) -> Result<DataType> {
    arity(n, t, &[2])?;
    Ok(DataType::Binary)
}

fn varchar(n: &str, t: &[DataType]) -> Result<DataType> {
    arity(n, t, &[1])?;
    Ok(DataType::Utf8)
}

/// The functions above.
pub fn functions() -> Vec<Fun> {
    vec![
        Fun::new("hmac_md5", bin2, |_, a| hmac_of::<md5::Md5>(a)),
        Fun::new("hmac_sha1", bin2, |_, a| hmac_of::<sha1::Sha1>(a)),
        Fun::new("hmac_sha256", bin2, |_, a| hmac_of::<sha2::Sha256>(a)),
        Fun::new("hmac_sha512", bin2, |_, a| hmac_of::<sha2::Sha512>(a)),
        Fun::new("to_big_endian_64", bin, |c, a| number_bytes(c, a, 8, false)),
        Fun::new("to_big_endian_32", bin, |c, a| number_bytes(c, a, 4, false)),
        Fun::new("to_ieee754_64", bin, |c, a| number_bytes(c, a, 8, true)),
        Fun::new("to_ieee754_32", bin, |c, a| number_bytes(c, a, 4, true)),
        Fun::new(
            "from_big_endian_64",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Int64)
            },
            bytes_number,
        ),
        Fun::new(
            "from_big_endian_32",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Int32)
            },
            bytes_number,
        ),
        Fun::new(
            "from_ieee754_64",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Float64)
            },
            bytes_number,
        ),
        Fun::new(
            "from_ieee754_32",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Float32)
            },
            bytes_number,
        ),
        Fun::new("to_utf8", bin, |_, a| map_bytes(&a[0], |b| b.to_vec())),
        Fun::new("from_utf8", varchar, |_, a| {
            to_text(&a[0], |b| String::from_utf8_lossy(b).into_owned())
        }),
        Fun::new("to_hex", varchar, |_, a| to_text(&a[0], hex_upper)),
        Fun::new("from_hex", bin, from_hex),
        Fun::new("md5", bin, |_, a| {
            map_bytes(&a[0], |b| md5::Md5::digest(b).to_vec())
        }),
        Fun::new("sha1", bin, |_, a| {
            map_bytes(&a[0], |b| sha1::Sha1::digest(b).to_vec())
        }),
        Fun::new(
            "crc32",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Int64)
            },
            |_, a| {
                let b = bytes(&a[0])?;
                Ok(arc(arrow::array::Int64Array::from_iter(
                    b.iter().map(|v| v.map(|v| i64::from(crc32fast::hash(v)))),
                )))
            },
        ),
        Fun::new("sha256", bin, |_, a| {
            map_bytes(&a[0], |b| sha2::Sha256::digest(b).to_vec())
        }),
        Fun::new("sha512", bin, |_, a| {
            map_bytes(&a[0], |b| sha2::Sha512::digest(b).to_vec())
        }),
        Fun::new("xxhash64", bin, |_, a| {
            map_bytes(&a[0], |b| {
                xxhash_rust::xxh64::xxh64(b, 0).to_be_bytes().to_vec()
            })
        }),
        Fun::new("to_base64", varchar, |_, a| {
            to_text(&a[0], |b| {
                base64::engine::general_purpose::STANDARD.encode(b)
            })
        }),
        Fun::new("from_base64", bin, |c, a| base64_decode(c, a, false)),
        Fun::new("to_base64url", varchar, |_, a| {
            to_text(&a[0], |b| {
                base64::engine::general_purpose::URL_SAFE.encode(b)
            })
        }),
        Fun::new("from_base64url", bin, |c, a| base64_decode(c, a, true)),
        Fun::new("murmur3", bin, |_, a| map_bytes(&a[0], murmur3_128)),
        Fun::new("to_base32", varchar, |_, a| {
            to_text(&a[0], |b| data_encoding::BASE32.encode(b))
        }),
        Fun::new("from_base32", bin, from_base32),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_as_athena_prints_them() {
        assert_eq!(
            hex_upper(&md5::Md5::digest(b"")),
            "D41D8CD98F00B204E9800998ECF8427E"
        );
        assert_eq!(
            hex_upper(&xxhash_rust::xxh64::xxh64(b"", 0).to_be_bytes()),
            "EF46DB3751D8E999"
        );
    }
}
