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

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`] unless `MIMALLOC_PURGE_DELAY` is set. For a
/// binary whose global allocator is mimalloc (`etl`, and the benchmarks that run as `etl`), before
/// it starts any other thread.
#[allow(unsafe_code)]
pub fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return; // mimalloc read it when the process started
    }
    // SAFETY: sets an integer option before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) }
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
}
