//! Load on the ingestion server over loopback, storing to the local S3 stand-in (SeaweedFS).
//!
//! ```text
//! cargo bench -p eventlake-benches --bench ingest_load -- [--seconds 60] [--store seaweedfs|local] [--baseline-bin PATH] [--ledger]
//! ```
//!
//! Builds the release `ingest` binary, then measures:
//! 1. cold start: process start to the first answered request, and the binary's size;
//! 2. the promised load: 3 teams x 1,000 events/s in batches of 100 for `--seconds`, with request
//!    latency percentiles and the error count (every answer must be 202), without and with an
//!    `Idempotency-Key` on every request; with `--baseline-bin PATH` the same runs against that
//!    binary (an earlier build), in turn, and the ratio of the p99s;
//!    With `--ledger`, claims and answers go to a DynamoDB ledger on moto (started by the
//!    project's script) instead of the lake, and every request is recorded there;
//! 3. the most events/s the server sustains on one core (pinned with `taskset`), 32 requests in
//!    flight, for 10 s.
//!
//! Every request goes to 127.0.0.1; every loop is bounded in time and count.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlake_benches::{median, moto, root, seaweedfs};

const TEAMS: [&str; 3] = ["checkout", "search", "growth"];

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

struct Server {
    child: Child,
    addr: String,
    cold_start: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(
    bin: &Path,
    tokens: &Path,
    lake: &str,
    env: &[(String, String)],
    port: u16,
    pin: bool,
) -> Server {
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(["--lake", lake, "--tokens"])
        .arg(tokens)
        .args(["serve", "--addr", &addr, "--rate", "1000000"])
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    // Dropping the Server kills and reaps the child, on every path.
    let mut server = Server {
        child: cmd.spawn().expect("ingest starts"),
        addr: addr.clone(),
        cold_start: Duration::ZERO,
    };
    // Bounded: 10 s at most.
    while started.elapsed() < Duration::from_secs(10) {
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.read_exact(&mut buf).is_ok() && &buf == b"HTTP/1.1 200" {
                server.cold_start = started.elapsed();
                return server;
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    panic!("ingest did not answer within 10 s");
}

fn batch(team: &str, seq: u64, n: usize) -> String {
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"event_id":"{team}-{seq}-{i}","event_type":"page_view","event_time":"2026-11-25T10:00:00.000Z","user_id":"u-{i}","session_id":"s-{seq}","source":"web","properties":{{"path":"/p/{i}","duration_ms":{i}}},"context":{{"ip":"203.0.113.7","user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36","locale":"fr-FR","app_version":"3.2.1"}}}}"#
            )
        })
        .collect();
    format!(r#"{{"events":[{}]}}"#, events.join(","))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// 3 teams x 1,000 events/s in batches of 100 for `seconds`: request latencies (ms) and errors.
async fn load(
    client: &reqwest::Client,
    addr: &str,
    team_tokens: &[(&str, String)],
    seconds: u64,
    keyed: bool,
) -> (Vec<f64>, u64) {
    let url = format!("http://{addr}/v1/events");
    let mut tasks = Vec::new();
    for (team, token) in team_tokens {
        let (client, url, token, team) =
            (client.clone(), url.clone(), token.clone(), team.to_string());
        let run = format!("{:08x}", std::process::id() ^ seconds as u32);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for seq in 0..seconds * 10 {
                tick.tick().await;
                let body = batch(&team, seq, 100);
                let t = Instant::now();
                let mut req = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json");
                if keyed {
                    req = req.header("idempotency-key", format!("{run}-{keyed}-{seq}"));
                }
                let r = req.body(body).send().await;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                match r {
                    Ok(r) if r.status() == 202 => {}
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    (all, errors)
}

fn main() {
    let seconds: u64 = arg("--seconds", "60").parse().unwrap();
    let store = arg("--store", "seaweedfs");
    let status = Command::new("cargo")
        .current_dir(root())
        .args([
            "build",
            "--release",
            "--locked",
            "-q",
            "--bin",
            "ingest",
            "--bin",
            "bus",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let bin = root().join("target/release/ingest");
    let size = std::fs::metadata(&bin).unwrap().len();

    let work = tempfile::tempdir().unwrap();
    let tokens = work.path().join("tokens.json");
    let mut team_tokens = Vec::new();
    for team in TEAMS {
        let out = Command::new(&bin)
            .args(["--tokens"])
            .arg(&tokens)
            .args(["token", "create", "--team", team])
            .output()
            .unwrap();
        assert!(out.status.success());
        team_tokens.push((
            team,
            String::from_utf8(out.stdout).unwrap().trim().to_owned(),
        ));
    }
    let (lake, env) = if store == "seaweedfs" {
        let run = format!("s3://eventlake-test/load-{}", std::process::id());
        (run, seaweedfs())
    } else {
        (work.path().join("lake").display().to_string(), Vec::new())
    };
    let ledger = std::env::args().any(|a| a == "--ledger");
    let mut env = env;
    if ledger {
        // The ledger table on moto, made by `bus init` as on a laptop.
        let table = format!("load-ledger-{}", std::process::id());
        env.extend(moto());
        env.push(("EVENTLAKE_LEDGER_TABLE".into(), table));
        let subs = work.path().join("subscriptions.json");
        std::fs::write(
            &subs,
            r#"{"version": 1, "teams": ["checkout", "search", "growth"]}"#,
        )
        .unwrap();
        let out = Command::new(root().join("target/release/bus"))
            .arg("init")
            .arg("--subscriptions")
            .arg(&subs)
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bus init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "ingest binary: {:.1} MiB; storing to {lake}{}",
        size as f64 / (1024.0 * 1024.0),
        if ledger {
            ", claims and answers in a DynamoDB ledger on moto"
        } else {
            ""
        }
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    // 1. Cold start, median of 5.
    let mut colds = Vec::new();
    for i in 0..5 {
        let s = start_server(&bin, &tokens, &lake, &env, 18_700 + i, false);
        colds.push(s.cold_start.as_secs_f64() * 1000.0);
    }
    println!(
        "cold start (process start to first answer): median {:.1} ms of 5",
        median(colds)
    );

    // 2. The promised load: without and with an Idempotency-Key on every request (a claim and
    // a recorded answer each), and the same against a baseline binary when one is given.
    let baseline = std::env::args()
        .position(|a| a == "--baseline-bin")
        .and_then(|i| std::env::args().nth(i + 1))
        .map(std::path::PathBuf::from);
    let mut runs = vec![
        ("this build", bin.clone(), false),
        ("this build", bin.clone(), true),
    ];
    if let Some(b) = &baseline {
        runs.insert(1, ("baseline", b.clone(), false));
        runs.push(("baseline", b.clone(), true));
    }
    let mut p99 = std::collections::BTreeMap::new();
    for (i, (name, bin, keyed)) in runs.iter().enumerate() {
        let server = start_server(bin, &tokens, &lake, &env, 18_780 + i as u16, false);
        let (lat, errors) = rt.block_on(load(&client, &server.addr, &team_tokens, seconds, *keyed));
        drop(server);
        let mut sorted = lat.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let keys = if *keyed { "with keys" } else { "no keys" };
        println!(
            "load ({name}, {keys}): 3 teams x 1,000 events/s, batches of 100, {seconds} s: {} requests, {} events, {errors} errors; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, mean {:.2} ms",
            lat.len(),
            lat.len() * 100,
            pct(&sorted, 0.5),
            pct(&sorted, 0.99),
            sorted.last().unwrap(),
            lat.iter().sum::<f64>() / lat.len() as f64
        );
        p99.insert((*name, *keyed), pct(&sorted, 0.99));
    }
    for keyed in [false, true] {
        if let (Some(this), Some(base)) = (
            p99.get(&("this build", keyed)),
            p99.get(&("baseline", keyed)),
        ) {
            println!(
                "p99 {}: this build / baseline = {:.2}",
                if keyed { "with keys" } else { "no keys" },
                this / base
            );
        }
    }

    // 3. The most events/s on one core.
    let pinned = Command::new("taskset").arg("-V").output().is_ok();
    let server = start_server(&bin, &tokens, &lake, &env, 18_791, pinned);
    let url = format!("http://{}/v1/events", server.addr);
    let (token, team) = (team_tokens[0].1.clone(), team_tokens[0].0);
    let body = Arc::new(
        (0..64)
            .map(|s| batch(team, 1_000_000 + s, 100))
            .collect::<Vec<_>>(),
    );
    let (done, errs, elapsed) = rt.block_on(async {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(10);
        let mut tasks = Vec::new();
        for w in 0..32 {
            let (client, url, token, body) =
                (client.clone(), url.clone(), token.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut err) = (0u64, 0u64);
                let mut i = w;
                while Instant::now() < deadline {
                    let r = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(body[i % body.len()].clone())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 202 => ok += 100,
                        _ => err += 1,
                    }
                    i += 32;
                }
                (ok, err)
            }));
        }
        let (mut ok, mut err) = (0, 0);
        for t in tasks {
            let (o, e) = t.await.unwrap();
            ok += o;
            err += e;
        }
        (ok, err, started.elapsed())
    });
    drop(server);
    println!(
        "one core{}: {:.0} events/s accepted over {:.1} s ({errs} errors)",
        if pinned {
            " (server pinned with taskset)"
        } else {
            " (taskset missing: not pinned)"
        },
        done as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    if store == "seaweedfs" {
        let _ = Command::new(root().join("tests/standins/seaweedfs.sh"))
            .arg("stop")
            .status();
    }
}
