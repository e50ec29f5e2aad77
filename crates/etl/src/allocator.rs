//! The allocator's settings for a long run.

/// `mi_option_purge_delay`, which follows `mi_option_eager_commit_delay` in mimalloc v2's option
/// enumeration (the bindings name only the latter).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_eager_commit_delay + 1;

/// How long freed memory stays with the process before it goes back to the system. mimalloc v2's
/// 10 ms returns the buffers of one partition just before the next one asks for them again: every
/// page is then faulted in afresh (a tenth of a backfill's time went to the kernel). 100 ms keeps
/// them across that gap and still returns what a finished partition left. `MIMALLOC_PURGE_DELAY`
/// overrides it.
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`] unless `MIMALLOC_PURGE_DELAY` is set, and
/// the C allocator's thresholds (see [`tune_c_allocator`]). For a binary whose global allocator is
/// mimalloc (`etl`, and the benchmarks that run as `etl`), before it starts any other thread.
#[allow(unsafe_code)]
pub fn tune_allocator() {
    tune_c_allocator();
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return; // mimalloc read it when the process started
    }
    // SAFETY: sets an integer option before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) }
}

/// zstd allocates with the C library's `malloc`, not the program's allocator, and Parquet's
/// codec makes a compression and a decompression context for each ZSTD column chunk it writes or
/// reads (about 0.6 MB once it has compressed, at level 1, and 0.1 MB), and frees them when the
/// chunk is done. glibc's defaults gave each context fresh pages: a block above its mapping
/// threshold was mapped and unmapped (a TLB shootdown on every core), and one freed at the top
/// of a thread's heap was trimmed away (`madvise`), to be faulted in again by the next. With
/// many small partitions that was about a tenth of a backfill's wall time. Fixed thresholds keep
/// the freed contexts for the next ones: blocks under 4 MiB come from a heap, and a heap keeps
/// up to 32 MiB free at its top; a run's contexts take a few MB.
#[allow(unsafe_code)]
fn tune_c_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` sets two integer parameters of glibc's allocator; it takes the
    // allocator's lock and may be called at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_is_the_option_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads an integer option.
        let get = || unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(get(), 10, "mimalloc v2's default purge delay");
        super::tune_allocator();
        assert_eq!(get(), super::PURGE_DELAY_MS);
    }

    /// glibc has no getter for its thresholds: what they do is seen in where a block of the
    /// size of a zstd context comes from, a mapping of its own or a heap.
    #[test]
    #[allow(unsafe_code)]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn a_c_allocation_the_size_of_a_zstd_context_comes_from_a_heap() {
        super::tune_c_allocator();
        // Larger than glibc's default mapping threshold (128 KiB) and than any it would raise
        // itself to after the frees of this process so far; below the one set (4 MiB).
        let size = 3 << 20;
        // SAFETY: `mallinfo2` reads the allocator's counters; the block is freed once, below.
        unsafe {
            let mapped_before = libc::mallinfo2().hblks;
            let block = libc::malloc(size);
            assert!(!block.is_null());
            let mapped_with = libc::mallinfo2().hblks;
            libc::free(block);
            assert_eq!(
                mapped_with, mapped_before,
                "a block below the threshold is not mapped"
            );
        }
    }
}
