//! A fast path for the common raw line: one pass over a JSON object that picks out the raw text of
//! the fields the contract reads.
//!
//! It only ever accepts: a line it is not sure of (an escape, a control character, deep nesting, a
//! repeated field, anything outside plain JSON) makes it return `None`, and the line goes through
//! `serde_json`, which then decides what is valid and why not. When it accepts, every field's text
//! is the text `serde_json` would have given for it (`null` counts as absent, as there), so the
//! validation that follows cannot tell the two paths apart.

/// Deeper objects and arrays are left to `serde_json` (its own limit is 128).
const MAX_DEPTH: usize = 64;

/// Whether `text` can be scanned: no backslash (so a string ends at the next quote and needs no
/// decoding) and no control character (which JSON forbids inside strings).
pub(crate) fn is_plain(text: &str) -> bool {
    // One branch-free pass over the bytes, so it vectorises.
    !text
        .as_bytes()
        .iter()
        .fold(false, |acc, &c| acc | (c < 0x20) | (c == b'\\'))
}

/// `a == b` for the short keys of an envelope, without a call to `memcmp` for each: a key of 4 to
/// 16 bytes is two overlapping word compares.
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word8 = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let word4 = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("4 bytes"));
    match n {
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        _ => a == b,
    }
}

/// Scans `text`, a whole JSON object without leading or trailing whitespace, into `slots`: the raw
/// text of the value of `keys[i]` goes to `slots[i]` (`None` when absent or `null`). Other keys are
/// validated and skipped. `text` must be [`is_plain`].
pub(crate) fn object<'a>(
    text: &'a str,
    keys: &[&str],
    slots: &mut [Option<&'a str>],
) -> Option<()> {
    object_with(text, keys, slots, None).map(drop)
}

/// A field of an object whose own fields are picked out in the same pass, when its value is an
/// object: `keys[at]` of the outer object, and the inner keys and their slots.
pub(crate) type Nested<'k, 's, 'a> = (usize, &'k [&'k str], &'s mut [Option<&'a str>]);

/// [`object`], and the fields of `nested` when its value is an object (then the result is `true`).
/// The inner fields' text is what [`object`] would give for the inner object's text.
pub(crate) fn object_with<'a>(
    text: &'a str,
    keys: &[&str],
    slots: &mut [Option<&'a str>],
    nested: Option<Nested<'_, '_, 'a>>,
) -> Option<bool> {
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
        block: usize::MAX,
        quotes: 0,
    };
    let scanned = s.fields(text, keys, slots, 1, nested)?;
    (s.i == text.len()).then_some(scanned)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// The 64-byte block of `b` whose quotes `quotes` holds (`usize::MAX`: none yet).
    block: usize,
    /// One bit per byte of `block`, set where the byte is a quote.
    quotes: u64,
}

/// One bit per byte of `block` (the lowest for its first byte), set where the byte is `"`.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn quote_mask(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let mut mask = 0;
    for (k, part) in block.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of every x86_64 CPU (the target's baseline), and the unaligned
        // load reads the 16 bytes of `part`.
        let bits = unsafe {
            let bytes = _mm_loadu_si128(part.as_ptr().cast::<__m128i>());
            _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'"' as i8)))
        };
        mask |= u64::from(bits as u16) << (16 * k);
    }
    mask
}

/// One bit per byte of `block` (the lowest for its first byte), set where the byte is `"`.
#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
fn quote_mask(block: &[u8; 64]) -> u64 {
    use std::arch::aarch64::{
        vandq_u8, vceqq_u8, vdupq_n_u8, vgetq_lane_u64, vld1q_u8, vpaddq_u8, vreinterpretq_u64_u8,
    };
    // Each lane's bit within its byte: lanes i and i + 8 of a 16-byte part get bit i % 8.
    const WEIGHTS: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    // SAFETY: NEON is part of every aarch64 CPU (the target's baseline), and each load reads 16
    // bytes of `block` (or of `WEIGHTS`).
    unsafe {
        let quote = vdupq_n_u8(b'"');
        let weights = vld1q_u8(WEIGHTS.as_ptr());
        let part = |k: usize| {
            let bytes = vld1q_u8(block.as_ptr().add(16 * k));
            vandq_u8(vceqq_u8(bytes, quote), weights)
        };
        // Three rounds of pairwise sums fold the 64 weighted lanes into 8 bytes, byte j holding
        // the bits of bytes 8j to 8j + 7.
        let sums = vpaddq_u8(vpaddq_u8(part(0), part(1)), vpaddq_u8(part(2), part(3)));
        let sums = vpaddq_u8(sums, sums);
        vgetq_lane_u64::<0>(vreinterpretq_u64_u8(sums))
    }
}

/// One bit per byte of `block` (the lowest for its first byte), set where the byte is `"`.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn quote_mask(block: &[u8; 64]) -> u64 {
    block
        .iter()
        .enumerate()
        .fold(0, |mask, (j, &c)| mask | (u64::from(c == b'"') << j))
}

impl<'a> Scanner<'a> {
    /// The object at the cursor, its values at `depth`: the raw text of `keys[i]`'s value goes to
    /// `slots[i]` (`None` when `null`). Whether `nested` was scanned.
    fn fields(
        &mut self,
        text: &'a str,
        keys: &[&str],
        slots: &mut [Option<&'a str>],
        depth: usize,
        mut nested: Option<Nested<'_, '_, 'a>>,
    ) -> Option<bool> {
        debug_assert_eq!(keys.len(), slots.len());
        let b = self.b;
        let mut seen = 0u64;
        let mut scanned = false;
        // Fields mostly come in the same order line after line: the key after the last one found
        // is tried first.
        let mut next_key = 0;
        self.expect(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(false);
        }
        loop {
            let key = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let name = &b[key.0..key.1];
            let found = match keys.get(next_key) {
                Some(k) if same_key(k.as_bytes(), name) => Some(next_key),
                _ => keys.iter().position(|k| same_key(k.as_bytes(), name)),
            };
            let start = self.i;
            match &mut nested {
                Some((at, inner_keys, inner_slots))
                    if found == Some(*at) && self.peek()? == b'{' =>
                {
                    // As `value` would for an object at this depth.
                    if depth >= MAX_DEPTH {
                        return None;
                    }
                    self.fields(text, inner_keys, inner_slots, depth + 1, None)?;
                    scanned = true;
                }
                _ => self.value(depth)?,
            }
            let value = &text[start..self.i];
            if let Some(k) = found {
                if seen & (1 << k) != 0 {
                    return None; // serde_json refuses a repeated field: let it say so
                }
                seen |= 1 << k;
                next_key = k + 1;
                slots[k] = (value.as_bytes() != b"null").then_some(value);
            }
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b'}' => return Some(scanned),
                _ => return None,
            }
        }
    }
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn ws(&mut self) {
        while self.b.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }

    /// A string's content as a byte range (the cursor is on its opening quote).
    #[inline(always)]
    fn string(&mut self) -> Option<(usize, usize)> {
        self.expect(b'"')?;
        let start = self.i;
        let end = self.next_quote(start)?;
        self.i = end + 1;
        Some((start, end))
    }

    /// Where the first quote at or after `from` is. The text has no backslash ([`is_plain`]), so
    /// that quote ends the string. The quotes of a 64-byte block are found at once, and the
    /// block's mask serves every string that starts in it.
    #[inline(always)]
    fn next_quote(&mut self, from: usize) -> Option<usize> {
        let mut block = from / 64;
        let mut mask = self.quotes_of(block) & (u64::MAX << (from % 64));
        while mask == 0 {
            block += 1;
            if block * 64 >= self.b.len() {
                return None;
            }
            mask = self.quotes_of(block);
        }
        Some(block * 64 + mask.trailing_zeros() as usize)
    }

    #[inline(always)]
    fn quotes_of(&mut self, block: usize) -> u64 {
        if block != self.block {
            self.load_quotes(block);
        }
        self.quotes
    }

    /// Finds the quotes of `block`.
    #[inline(never)]
    fn load_quotes(&mut self, block: usize) {
        let start = block * 64;
        self.quotes = match self.b.get(start..start + 64) {
            Some(full) => quote_mask(full.try_into().expect("64 bytes")),
            None => {
                // The last block, shorter: padded with bytes that are not quotes.
                let rest = &self.b[start.min(self.b.len())..];
                let mut padded = [0; 64];
                padded[..rest.len()].copy_from_slice(rest);
                quote_mask(&padded)
            }
        };
        self.block = block;
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => {
                self.i += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return None;
                }
            }
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.ws();
                    self.expect(b':')?;
                    self.ws();
                    self.value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan<'a>(text: &'a str, keys: &[&str]) -> Option<Vec<Option<&'a str>>> {
        if !is_plain(text) {
            return None;
        }
        let mut slots = vec![None; keys.len()];
        object(text, keys, &mut slots)?;
        Some(slots)
    }

    #[test]
    fn key_compare_agrees_with_slice_equality() {
        let words: Vec<Vec<u8>> = (0..=20)
            .flat_map(|n: usize| {
                let base: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
                // The same length with one byte changed at each end and in the middle.
                let mut variants = vec![base.clone()];
                for at in [0, n / 2, n.saturating_sub(1)] {
                    if at < n {
                        let mut v = base.clone();
                        v[at] = b'_';
                        variants.push(v);
                    }
                }
                variants
            })
            .collect();
        for a in &words {
            for b in &words {
                assert_eq!(same_key(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn quote_masks_agree_with_a_byte_loop() {
        let mut rng = Lcg(3);
        for _ in 0..2_000 {
            let mut block = [0u8; 64];
            for b in &mut block {
                // Mostly quotes and bytes next to them in value, and some of every value.
                *b = match rng.below(4) {
                    0 => b'"',
                    1 => [b'!', b'#', b'"' | 0x80, 0xA2][rng.below(4) as usize],
                    _ => rng.below(256) as u8,
                };
            }
            let expected = block
                .iter()
                .enumerate()
                .fold(0u64, |m, (j, &c)| m | (u64::from(c == b'"') << j));
            assert_eq!(quote_mask(&block), expected, "{block:?}");
        }
    }

    #[test]
    fn strings_end_wherever_their_block_does() {
        // Strings of every length from 0 to 200, after a prefix of every length up to 70: their
        // quotes fall at every place in a block, in the last (short) block, and blocks apart.
        for pad in 0..70 {
            for len in 0..200 {
                let value = "x".repeat(len);
                let text = format!(r#"{{"{}":1,"a":"{value}","b":[]}}"#, "p".repeat(pad));
                assert_eq!(
                    scan(&text, &["a", "b"]),
                    Some(vec![Some(format!(r#""{value}""#).as_str()), Some("[]")]),
                    "{text}"
                );
                // The same string left open: no quote ends it.
                let open = &text[..text.len() - r#"","b":[]}"#.len()];
                assert_eq!(scan(open, &["a"]), None, "{open}");
            }
        }
    }

    #[test]
    fn picks_out_the_raw_text_of_known_fields() {
        let got = scan(
            r#"{"a": "x y", "skip": {"n": [1, -2.5e+3, true, false, null, {}, []]}, "b":{"c":"d"} , "c":null}"#,
            &["a", "b", "c", "d"],
        );
        assert_eq!(
            got,
            Some(vec![Some(r#""x y""#), Some(r#"{"c":"d"}"#), None, None])
        );
        assert_eq!(scan("{}", &["a"]), Some(vec![None]));
        // Fields in any order, known ones among many unknown ones.
        assert_eq!(
            scan(r#"{"c": 1, "b": 2, "a": 3}"#, &["a", "b", "c"]),
            Some(vec![Some("3"), Some("2"), Some("1")])
        );
        let many: Vec<String> = (0..300).map(|i| format!(r#""k{i}": "v{i}""#)).collect();
        let text = format!(r#"{{{}, "a": "last"}}"#, many.join(", "));
        assert_eq!(
            scan(&text, &["a", "k299", "k0"]),
            Some(vec![Some(r#""last""#), Some(r#""v299""#), Some(r#""v0""#)])
        );
        assert_eq!(scan(&text.replace("\"last\"", "\"last"), &["a"]), None);
    }

    #[test]
    fn leaves_anything_unusual_to_the_exact_parser() {
        for text in [
            r#"{"a":"x\"y"}"#,
            "{\"a\":\"tab\there\"}",
            "{\"a\":1,\t\"b\":2}",
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":+1}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":tru}"#,
            r#"{"a":NaN}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":{"b":1,}}"#,
            r#"{"a":{"b" 1}}"#,
            r#"{"a":'x'}"#,
            r#"{"a":1} x"#,
            r#"{"a":1"#,
            r#"{"a":"x"#,
            r#"{a:1}"#,
        ] {
            assert_eq!(scan(text, &["a", "b"]), None, "{text}");
        }
        let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(70), "]".repeat(70));
        assert_eq!(scan(&deep, &["a"]), None);
        // A repeated unknown field is fine, as it is for serde_json.
        assert!(scan(r#"{"z":1,"z":2}"#, &["a"]).is_some());
    }

    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    fn space(rng: &mut Lcg, out: &mut String) {
        if rng.below(4) == 0 {
            out.push(' ');
        }
    }

    fn object_text(rng: &mut Lcg, out: &mut String, depth: u32) {
        out.push('{');
        let n = rng.below(4);
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            space(rng, out);
            out.push_str(["\"a\"", "\"b\"", "\"z\"", "\"\""][rng.below(4) as usize]);
            space(rng, out);
            out.push(':');
            space(rng, out);
            value_text(rng, out, depth + 1);
            space(rng, out);
        }
        out.push('}');
    }

    fn value_text(rng: &mut Lcg, out: &mut String, depth: u32) {
        match rng.below(if depth > 3 { 5 } else { 7 }) {
            0 => out.push_str(["\"s\"", "\"\"", "\"é x\""][rng.below(3) as usize]),
            1 => out.push_str(["0", "-1", "12.5", "3e7", "-0.0E-2", "10"][rng.below(6) as usize]),
            2 => out.push_str(["true", "false"][rng.below(2) as usize]),
            3 | 4 => out.push_str("null"),
            5 => object_text(rng, out, depth),
            _ => {
                out.push('[');
                for i in 0..rng.below(3) {
                    if i > 0 {
                        out.push(',');
                    }
                    space(rng, out);
                    value_text(rng, out, depth + 1);
                }
                out.push(']');
            }
        }
    }

    /// Picking out an inner object's fields in the outer pass gives what scanning the inner
    /// object's text afterwards gives, and accepts the same texts.
    #[test]
    fn nested_fields_agree_with_a_second_scan() {
        let mut rng = Lcg(11);
        let (keys, inner_keys) = (["a", "b"], ["a", "z"]);
        let mut nested_objects = 0;
        for _ in 0..50_000 {
            let mut text = String::new();
            object_text(&mut rng, &mut text, 0);
            if !is_plain(&text) {
                continue;
            }
            let (mut slots, mut inner) = ([None; 2], [None; 2]);
            let got = object_with(&text, &keys, &mut slots, Some((1, &inner_keys, &mut inner)));
            let mut outer = [None; 2];
            let expected = object(&text, &keys, &mut outer).and_then(|()| {
                match outer[1].filter(|b| b.starts_with('{')) {
                    None => Some(None),
                    Some(b) => {
                        let mut second = [None; 2];
                        object(b, &inner_keys, &mut second).map(|()| Some(second))
                    }
                }
            });
            match expected {
                None => assert_eq!(got, None, "{text}"),
                Some(second) => {
                    assert_eq!(got, Some(second.is_some()), "{text}");
                    assert_eq!(slots, outer, "{text}");
                    if let Some(second) = second {
                        nested_objects += 1;
                        assert_eq!(inner, second, "{text}");
                    }
                }
            }
        }
        assert!(
            nested_objects > 1000,
            "only {nested_objects} nested objects"
        );
    }

    /// Whatever the scanner accepts, serde_json accepts too, with the same text per field.
    #[test]
    fn agrees_with_serde_json_on_what_it_accepts() {
        use serde::Deserialize;
        use serde_json::value::RawValue;
        #[derive(Deserialize)]
        struct Two<'a> {
            #[serde(borrow, default)]
            a: Option<&'a RawValue>,
            #[serde(borrow, default)]
            b: Option<&'a RawValue>,
        }
        let mut rng = Lcg(7);
        let mut accepted = 0;
        for _ in 0..50_000 {
            let mut text = String::new();
            object_text(&mut rng, &mut text, 0);
            // Half of them broken somewhere: a byte dropped, doubled or replaced.
            let at = rng.below(text.len() as u64) as usize;
            if rng.below(2) == 0 && text.is_char_boundary(at) && text.is_char_boundary(at + 1) {
                let junk = [
                    ",", "}", "]", "\"", ":", "0", "-", ".", "e", " ", "n", "{", "[",
                ];
                match rng.below(3) {
                    0 => drop(text.remove(at)),
                    1 => text.insert(at, text.as_bytes()[at] as char),
                    _ => {
                        text.replace_range(at..at + 1, junk[rng.below(junk.len() as u64) as usize])
                    }
                }
            }
            let Some(fast) = scan(&text, &["a", "b"]) else {
                continue;
            };
            accepted += 1;
            let exact: Two<'_> = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{text:?} accepted by the scanner, not by serde: {e}"));
            assert_eq!(
                fast,
                vec![exact.a.map(RawValue::get), exact.b.map(RawValue::get)],
                "{text}"
            );
        }
        assert!(
            accepted > 1000,
            "only {accepted} texts exercised the scanner"
        );
    }
}
