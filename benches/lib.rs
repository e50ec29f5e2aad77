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

/// Waits for the child `pid` and returns its exit status and the CPU time (user and system) it
/// used.
#[allow(unsafe_code)]
pub fn wait_cpu(pid: u32) -> (i32, Duration) {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, fully written by wait4 on success.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped; both pointers are valid for the call.
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(r, pid as libc::pid_t, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    (code, tv(usage.ru_utime) + tv(usage.ru_stime))
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

/// The variable that makes a bench binary run as `etl` (so benches time the real command, built
/// with the bench profile, without building the binary separately).
pub const CHILD_ENV: &str = "EVENTLAKE_BENCH_AS_ETL";

/// Runs as `etl` when started by [`etl_command`]; call first thing in `main`.
pub fn run_as_etl_if_asked() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // As `etl` sets it, so the child's memory and time are the shipped binary's.
        eventlake_etl::tune_allocator();
        std::process::exit(match eventlake_etl::main() {
            c if c == std::process::ExitCode::SUCCESS => 0,
            _ => 1,
        });
    }
}

/// An `etl` command (this bench binary, re-executed as `etl`).
pub fn etl_command() -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current exe"));
    c.env(CHILD_ENV, "1").env("ETL_LOG", "warn");
    c
}

/// Every file under `dir`, at any depth (none when it does not exist).
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The workspace root.
pub fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Starts a stand-in with the project's script (a no-op when it runs); returns its environment
/// (the `export NAME=value` lines the script prints).
pub fn standin(script: &str) -> Vec<(String, String)> {
    let out = Command::new(root().join("tests/standins").join(script))
        .arg("start")
        .output()
        .unwrap_or_else(|e| panic!("{script} runs: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Starts SeaweedFS (S3) with the project's script; returns its environment.
pub fn seaweedfs() -> Vec<(String, String)> {
    standin("seaweedfs.sh")
}

/// Starts moto (DynamoDB and its stream, SQS, ...) with the project's script; returns its
/// environment.
pub fn moto() -> Vec<(String, String)> {
    standin("moto.sh")
}

/// The nearest-rank percentile of unsorted samples (as `etl check-p95` computes it).
pub fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    eventlake_query::p95::percentile(&s, p)
}

/// The number after `name` on the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}
