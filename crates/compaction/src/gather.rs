//! Gathering a column's rows into sorted order before they are encoded.
//!
//! A partition's rows arrive in the order of its raw objects and are written sorted by event
//! type and time, so the rows of a slice are read from all over the partition's memory. For a
//! string column each row is then a cache miss that the copy waits for. The copy here asks for
//! the bytes of the rows a little ahead of the one it copies, so that the misses overlap; any
//! other column goes through arrow's `interleave`. The result is the array `interleave` gives.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanBufferBuilder, StringArray};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::compute::interleave;
use arrow::datatypes::DataType;
use arrow::error::ArrowError;

/// How many rows ahead of the one being copied its bytes are asked for: far enough that a miss
/// has come in by the time its row is copied, near enough that it is still in cache.
const AHEAD: usize = 16;

/// How many rows ahead a row's offsets are asked for, in the first pass, which does little else
/// per row than wait for them.
const OFFSETS_AHEAD: usize = 64;

/// The rows at `positions` (array, row) of `arrays`, which share one data type, in that order.
pub(crate) fn gather(
    arrays: &[&dyn Array],
    positions: &[(usize, usize)],
) -> Result<ArrayRef, ArrowError> {
    match arrays.first().map(|a| a.data_type()) {
        Some(DataType::Utf8) if arrays.iter().all(|a| a.data_type() == &DataType::Utf8) => {
            let strings: Vec<&StringArray> = arrays.iter().map(|a| a.as_string::<i32>()).collect();
            gather_strings(&strings, positions)
        }
        _ => interleave(arrays, positions),
    }
}

fn gather_strings(
    arrays: &[&StringArray],
    positions: &[(usize, usize)],
) -> Result<ArrayRef, ArrowError> {
    let rows = positions.len();
    let mut offsets = Vec::with_capacity(rows + 1);
    offsets.push(0i32);
    let mut spans: Vec<&[u8]> = Vec::with_capacity(rows);
    let mut nulls = arrays
        .iter()
        .any(|a| a.null_count() > 0)
        .then(|| BooleanBufferBuilder::new(rows));
    let mut total = 0usize;
    for (i, &(a, r)) in positions.iter().enumerate() {
        if let Some(&(next_a, next_r)) = positions.get(i + OFFSETS_AHEAD)
            && let Some(offset) = arrays
                .get(next_a)
                .and_then(|n| n.value_offsets().get(next_r))
        {
            prefetch(std::ptr::from_ref(offset).cast());
        }
        let array = arrays[a];
        let value = array.value(r).as_bytes();
        total += value.len();
        offsets.push(i32::try_from(total).map_err(|_| ArrowError::OffsetOverflowError(total))?);
        spans.push(value);
        if let Some(nulls) = &mut nulls {
            nulls.append(array.is_valid(r));
        }
    }
    let mut values = Vec::with_capacity(total);
    for (i, value) in spans.iter().enumerate() {
        if let Some(next) = spans.get(i + AHEAD) {
            prefetch(next.as_ptr());
            if next.len() > 64 {
                prefetch(next[64..].as_ptr());
            }
        }
        values.extend_from_slice(value);
    }
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    let nulls = nulls.map(|mut n| NullBuffer::new(n.finish()));
    #[allow(unsafe_code)]
    // SAFETY: `values` is whole values of string arrays laid end to end, each valid UTF-8, and
    // every offset is where one of them starts or the last ends; `OffsetBuffer::new` checked
    // that the offsets start at zero and never fall, and there is one per row plus one, as
    // many as `nulls` has rows. Checking the UTF-8 again cost about 1 % of a compaction's CPU.
    let array = unsafe { StringArray::new_unchecked(offsets, values.into(), nulls) };
    Ok(Arc::new(array))
}

/// Asks for the cache line at `p` without waiting for it. Only a hint: it never faults, whatever
/// the address, and does nothing where the architecture has no stable way to say it.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch reads nothing the program sees and cannot fault; SSE, which it
        // needs, is part of every x86_64 target.
        #[allow(unsafe_code, unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn check(arrays: &[&dyn Array], positions: &[(usize, usize)]) {
        let ours = gather(arrays, positions).unwrap();
        let theirs = interleave(arrays, positions).unwrap();
        assert_eq!(ours.as_ref(), theirs.as_ref());
        assert_eq!(ours.null_count(), theirs.null_count());
    }

    #[test]
    fn strings_gather_as_interleave_does() {
        let long = "x".repeat(300);
        let a = StringArray::from(vec![Some("a"), None, Some(""), Some(long.as_str())]);
        let b = StringArray::from(vec![Some("bé"), Some("{\"k\":1}"), None]);
        // A sliced array: its offsets do not start at zero.
        let c_whole = StringArray::from(vec!["skip", "c0", "c1", "c2"]);
        let c = c_whole.slice(1, 3);
        let arrays: [&dyn Array; 3] = [&a, &b, &c];
        let positions: Vec<(usize, usize)> = (0..40)
            .map(|i| match i % 5 {
                0 => (0, i % 4),
                1 => (1, i % 3),
                2 => (2, i % 3),
                3 => (0, 3),
                _ => (1, 1),
            })
            .collect();
        check(&arrays, &positions);
        check(&arrays, &positions[..3]);
        check(&arrays, &[]);
        // Without nulls anywhere.
        let arrays: [&dyn Array; 1] = [&c];
        check(&arrays, &[(0, 2), (0, 0), (0, 1), (0, 2)]);
    }

    #[test]
    fn other_types_go_through_interleave() {
        let a = Int64Array::from(vec![Some(1), None, Some(3)]);
        let b = Int64Array::from(vec![7, 8]);
        let arrays: [&dyn Array; 2] = [&a, &b];
        check(&arrays, &[(1, 1), (0, 0), (0, 1), (1, 0), (0, 2)]);
    }

    #[test]
    fn a_position_out_of_range_panics_as_interleave_would() {
        let a = StringArray::from(vec!["a"]);
        let arrays: [&dyn Array; 1] = [&a];
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| gather(&arrays, &[(0, 1)])));
        assert!(r.is_err());
    }
}
