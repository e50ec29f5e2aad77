//! Helpers for the whole-process benchmarks: run a command, time it, and read its peak memory
//! from the kernel's accounting of the finished process.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Measured {
    pub wall: Duration,
    /// Peak resident set size of the process, KiB.
    pub max_rss_kib: u64,
    pub stdout: Vec<u8>,
}

/// Runs `cmd` to completion; panics when it fails.
// The child is reaped by `wait4` (which also reports its peak memory), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
pub fn run_measured(mut cmd: Command) -> Measured {
    let out_file = tempfile::NamedTempFile::new().expect("temp file");
    cmd.stdout(Stdio::from(out_file.reopen().expect("reopen")))
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let child = cmd.spawn().expect("command starts");
    let (status, rss) = wait_with_rusage(child.id() as libc::pid_t);
    let wall = started.elapsed();
    assert!(status == 0, "{cmd:?} failed with status {status}");
    Measured {
        wall,
        max_rss_kib: rss,
        stdout: std::fs::read(out_file.path()).expect("read stdout"),
    }
}

/// Waits for `pid` and returns its exit status and peak RSS (KiB).
#[allow(unsafe_code)]
fn wait_with_rusage(pid: libc::pid_t) -> (i32, u64) {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, fully written by wait4 on success.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped; both pointers are valid for the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage.ru_maxrss as u64)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty());
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
