//! A gzip raw object decompressed whole, in one call.
//!
//! A raw object is one request's batch, and its gzip trailer gives its size, so it can be
//! decompressed into one buffer at once instead of streamed through a reader: libdeflate does
//! that in about 0.72 of the time of the streaming decoder (`flate2` with `zlib-rs`) on the
//! generated raw objects. Only an object that is exactly one gzip member, whose bytes are the
//! size its trailer says and match its checksum, and whose header both decoders read alike, is
//! decompressed this way. Anything else (more members, bytes after the member, a trailer that
//! lies, corrupt data, a header CRC, an overlong name) is left to the streaming decoder, which
//! keeps the lines before a break and says where it broke: an object gives what it gave before.

use std::cell::RefCell;
use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// Objects whose trailer says more than this are streamed: a whole one would be held at once.
pub const MAX_WHOLE_BYTES: usize = 16 << 20;

/// The most bytes one stored byte of a deflate stream can give (its longest match, 258 bytes,
/// in about two bits): a trailer that says more lies, and no buffer is made for it.
const MAX_RATIO: usize = 1032;

/// A libdeflate decompressor (its tables, about 32 KiB), owned by one thread.
struct Decompressor(NonNull<libdeflate_decompressor>);

impl Decompressor {
    #[allow(unsafe_code)]
    fn new() -> Option<Self> {
        // SAFETY: no precondition; a null pointer (no memory) is turned into `None`.
        NonNull::new(unsafe { libdeflate_alloc_decompressor() }).map(Self)
    }
}

impl Drop for Decompressor {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the pointer came from `libdeflate_alloc_decompressor` and is freed once, here.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

thread_local! {
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// The size a gzip object's trailer gives (of its last member), if it is long enough to have one.
pub fn trailer_size(data: &[u8]) -> Option<usize> {
    // A header (10 bytes) and a trailer (8) at the least.
    if data.len() < 18 || !data.starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    data.last_chunk::<4>()
        .map(|size| u32::from_le_bytes(*size) as usize)
}

/// The gzip header's flags: a CRC of the header, a name, a comment.
const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;

/// The longest name or comment the streaming decoder takes (it refuses the object past that).
const MAX_HEADER_FIELD: usize = 65_535;

/// Whether `data`'s gzip header is one both decoders read alike. libdeflate does not check a
/// header's own CRC, which the streaming decoder does, and takes a name or a comment of any
/// length, which the streaming decoder refuses past [`MAX_HEADER_FIELD`] bytes: such an object
/// is streamed, so it gives what it gave before, whole or not.
fn header_read_alike(data: &[u8]) -> bool {
    let Some(&flags) = data.get(3) else {
        return false;
    };
    if flags & FHCRC != 0 {
        return false;
    }
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let Some(xlen) = data.get(10..12) else {
            return false;
        };
        at += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field == 0 {
            continue;
        }
        let Some(rest) = data.get(at..) else {
            return false;
        };
        match memchr::memchr(0, &rest[..rest.len().min(MAX_HEADER_FIELD + 1)]) {
            Some(len) => at += len + 1,
            None => return false,
        }
    }
    true
}

/// Decompresses `data`, a gzip object, into the start of `out` when it is exactly one member of
/// at most [`MAX_WHOLE_BYTES`] whose size and checksum match its trailer, and returns its size.
/// `out` is grown (zeroed) when it is shorter, never shrunk: a buffer kept between objects is
/// not zeroed again. `None` otherwise, `out` then holding nothing of use: stream the object.
pub fn gunzip_whole(data: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let size = trailer_size(data)
        .filter(|&s| s <= MAX_WHOLE_BYTES && s <= data.len().saturating_mul(MAX_RATIO))?;
    if !header_read_alike(data) {
        return None;
    }
    if out.len() < size {
        out.resize(size, 0);
    }
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Decompressor::new();
        }
        let d = slot.as_ref()?;
        decompress(d, data, &mut out[..size]).then_some(size)
    })
}

#[allow(unsafe_code)]
fn decompress(d: &Decompressor, data: &[u8], out: &mut [u8]) -> bool {
    let (mut used, mut written) = (0usize, 0usize);
    // SAFETY: `d` is a live decompressor that only this thread uses, and this call is not
    // re-entered. The input and output pointers and lengths come from slices that outlive the
    // call; libdeflate reads at most `data.len()` bytes, writes at most `out.len()` bytes to
    // `out`, and writes the two counts through pointers to locals.
    let result = unsafe {
        libdeflate_gzip_decompress_ex(
            d.0.as_ptr(),
            data.as_ptr().cast(),
            data.len(),
            out.as_mut_ptr().cast(),
            out.len(),
            &mut used,
            &mut written,
        )
    };
    // libdeflate has checked the member's own checksum and size; its member must also be the
    // whole object, and fill `out` exactly.
    result == libdeflate_result_LIBDEFLATE_SUCCESS && used == data.len() && written == out.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::{Read, Write};

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn streamed(data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn one_member_is_decompressed_whole() {
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect();
        let mut out = vec![7; 3];
        let n = gunzip_whole(&gzip(&text), &mut out).unwrap();
        assert_eq!(out[..n], text);
        // Again into the same buffer, now larger than the object: it is not shrunk.
        assert_eq!(gunzip_whole(&gzip(b"{}\n"), &mut out), Some(3));
        assert_eq!(&out[..3], b"{}\n");
        assert_eq!(out.len(), text.len());
        assert_eq!(gunzip_whole(&gzip(b""), &mut out), Some(0));
    }

    #[test]
    fn anything_but_one_whole_member_is_left_to_the_stream() {
        let (a, b) = (gzip(b"{\"a\":1}\n"), gzip(b"{\"b\":2}\n"));
        let mut out = Vec::new();
        // Two members, and the same member twice (its trailer then matches the last one's).
        for object in [
            [a.clone(), b.clone()].concat(),
            [a.clone(), a.clone()].concat(),
        ] {
            assert_eq!(None, gunzip_whole(&object, &mut out));
            assert_eq!(streamed(&object).unwrap().len(), 16);
        }
        // Bytes after the member.
        assert_eq!(
            None,
            gunzip_whole(&[a.clone(), b"\0\0\0\0".to_vec()].concat(), &mut out)
        );
        // A trailer that says more, or less, than the member holds (more than a deflate stream
        // of its size can hold, too: no buffer is grown for it).
        for size in [7u32, 9, 1 << 20, u32::MAX] {
            let mut lying = a.clone();
            let at = lying.len() - 4;
            lying[at..].copy_from_slice(&size.to_le_bytes());
            assert_eq!(None, gunzip_whole(&lying, &mut out), "{size}");
        }
        assert!(
            out.len() < 1 << 20,
            "a buffer was grown for a trailer that lies"
        );
        // A wrong checksum, a cut-off member, damaged data, too short, not gzip.
        let mut crc = a.clone();
        let at = crc.len() - 8;
        crc[at] ^= 1;
        assert_eq!(None, gunzip_whole(&crc, &mut out));
        assert_eq!(None, gunzip_whole(&a[..a.len() - 3], &mut out));
        let mut damaged = gzip(&b"{\"x\":\"yyyyyyyy\"}\n".repeat(1000));
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0xff;
        assert_eq!(None, gunzip_whole(&damaged, &mut out));
        assert_eq!(None, gunzip_whole(&a[..17], &mut out));
        assert_eq!(
            None,
            gunzip_whole(b"{\"a\":1}\n plain NDJSON, not gzip", &mut out)
        );
        assert_eq!(trailer_size(&a), Some(8));
    }

    /// `gzip(data)` with `flags` set and their fields (an empty extra field, `name`, `comment`,
    /// and a header CRC, right when `crc_ok`) put after its header's first ten bytes.
    fn with_header(data: &[u8], flags: u8, name: &[u8], comment: &[u8], crc_ok: bool) -> Vec<u8> {
        let plain = gzip(data);
        let mut header = plain[..10].to_vec();
        header[3] = flags;
        if flags & FEXTRA != 0 {
            header.extend([4, 0, b'e', b'x', 0, 0]);
        }
        for (bit, field) in [(FNAME, name), (FCOMMENT, comment)] {
            if flags & bit != 0 {
                header.extend(field);
                header.push(0);
            }
        }
        if flags & FHCRC != 0 {
            let crc = crc32(&header) as u16 ^ u16::from(!crc_ok);
            header.extend(crc.to_le_bytes());
        }
        [header, plain[10..].to_vec()].concat()
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        crc.sum()
    }

    #[test]
    fn a_header_the_decoders_read_differently_is_left_to_the_stream() {
        let text = b"{\"a\":1}\n".repeat(50);
        let mut out = Vec::new();
        let name = vec![b'n'; MAX_HEADER_FIELD];
        let too_long = vec![b'n'; MAX_HEADER_FIELD + 1];
        // Read alike: whole.
        for (flags, name, comment) in [
            (FNAME, &b"events.ndjson"[..], &b""[..]),
            (FEXTRA | FNAME | FCOMMENT, &name[..], &b"a comment"[..]),
            (FCOMMENT, &b""[..], &name[..]),
        ] {
            let object = with_header(&text, flags, name, comment, true);
            assert_eq!(streamed(&object).unwrap(), text, "{flags}");
            assert_eq!(gunzip_whole(&object, &mut out), Some(text.len()), "{flags}");
        }
        // A header CRC, right or wrong (libdeflate does not check it; the stream does), and a
        // name or comment too long for the stream: streamed, whatever the stream then says.
        for (flags, name, comment, crc_ok, stream_reads) in [
            (FHCRC | FNAME, &b"x"[..], &b""[..], true, true),
            (FHCRC, &b""[..], &b""[..], false, false),
            (FNAME, &too_long[..], &b""[..], true, false),
            (FNAME | FCOMMENT, &b"x"[..], &too_long[..], true, false),
        ] {
            let object = with_header(&text, flags, name, comment, crc_ok);
            assert_eq!(streamed(&object).is_ok(), stream_reads, "{flags}");
            assert_eq!(gunzip_whole(&object, &mut out), None, "{flags}");
        }
    }
}
