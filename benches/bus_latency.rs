//! The event bus end to end on the stand-ins: from ingest's 2xx to the event in the receiving
//! team's consumer, and the events/s one fan-out process delivers on one core.
//!
//! ```text
//! cargo bench -p eventlake-benches --bench bus_latency -- [--seconds 20] [--rate 5] [--batch 10] [--kafka]
//! ```
//!
//! Builds the release `ingest` and `bus` binaries, starts moto (DynamoDB and its stream, SQS) with
//! the project's script, and runs, as on a laptop: `bus init`, `ingest serve` with the ledger,
//! `bus fanout` and `bus consume --team growth` (with `--kafka`: also the local broker, `bus
//! bridge`, and the consumer reading the team's topic). Then:
//! 1. latency: `--rate` requests/s of `--batch` purchase events from team checkout for
//!    `--seconds`; for every event, the time from the 2xx to the line the consumer prints; p50,
//!    p95, p99, max, and the events lost or printed twice (both must be 0);
//! 2. fan-out throughput: 2,000 events ingested while the fan-out is stopped, then one
//!    `bus fanout` pinned to one core (`taskset -c 0`) delivers them while the team's consumer
//!    drains the queue: events/s against moto, and events per CPU-second of the fan-out itself.
//!
//! Every process listens on or talks to 127.0.0.1; every wait is bounded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventlake_benches::{moto, root, standin};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

/// A child process killed and reaped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn batch(prefix: &str, seq: u64, n: usize) -> (Vec<String>, String) {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{seq}-{i}")).collect();
    let events: Vec<serde_json::Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            serde_json::json!({
                "event_id": id,
                "event_type": "purchase",
                "event_time": "2026-12-01T10:00:00Z",
                "user_id": format!("u{}", (seq as usize * n + i) % 97),
                "source": "web",
                "properties": {"amount": 12.5}
            })
        })
        .collect();
    (ids, serde_json::json!({ "events": events }).to_string())
}

/// Posts a batch as a client does: a 503 or 429 (the ledger on a busy stand-in past the
/// request's deadline) is retried with the same body after a pause; the number of retries.
async fn post(client: &reqwest::Client, url: &str, token: &str, body: String) -> usize {
    for retry in 0..20 {
        let r = client
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("idempotency-key", format!("{:016x}", key_of(&body)))
            .body(body.clone())
            .send()
            .await
            .expect("ingest answers");
        if r.status().is_success() {
            return retry;
        }
        assert!([429, 503].contains(&r.status().as_u16()), "{}", r.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("a batch was refused 20 times");
}

/// A key per body: a retried batch is the same batch.
fn key_of(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

fn bus(bin: &Path, env: &[(String, String)]) -> Command {
    let mut c = Command::new(bin);
    c.envs(env.iter().cloned());
    c
}

fn main() {
    let seconds: u64 = arg("--seconds", "20").parse().unwrap();
    let rate: u64 = arg("--rate", "5").parse().unwrap();
    let per_request: usize = arg("--batch", "10").parse().unwrap();
    let kafka = std::env::args().any(|a| a == "--kafka");
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
    let ingest = root().join("target/release/ingest");
    let bus_bin = root().join("target/release/bus");

    let work = tempfile::tempdir().unwrap();
    let run = std::process::id();
    let mut env = moto();
    // The stand-ins take any credentials; a region is needed to sign.
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "eventlake-bench"),
        ("AWS_SECRET_ACCESS_KEY", "eventlake-bench-secret"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var_os(k).is_none() {
            env.push((k.into(), v.into()));
        }
    }
    env.push((
        "EVENTLAKE_LEDGER_TABLE".into(),
        format!("bench-ledger-{run}"),
    ));
    env.push(("EVENTLAKE_BUS_QUEUE_PREFIX".into(), format!("bench-{run}-")));
    if kafka {
        env.extend(standin("kafka.sh"));
        let brokers = env
            .iter()
            .find(|(k, _)| k == "EVENTLAKE_TEST_KAFKA")
            .map(|(_, v)| v.clone())
            .expect("the broker's address");
        env.push(("EVENTLAKE_KAFKA_BROKERS".into(), brokers));
        env.push((
            "EVENTLAKE_KAFKA_TOPIC_PREFIX".into(),
            format!("bench-{run}."),
        ));
    }
    let subs = work.path().join("subscriptions.json");
    std::fs::write(
        &subs,
        r#"{"version": 1, "teams": ["checkout", "growth"],
            "subscriptions": [{"team": "growth", "from": "checkout", "event_types": ["purchase"]}]}"#,
    )
    .unwrap();
    env.push(("EVENTLAKE_SUBSCRIPTIONS".into(), subs.display().to_string()));
    let lake = work.path().join("lake");
    env.push(("EVENTLAKE_LAKE".into(), lake.display().to_string()));
    let out = bus(&bus_bin, &env).arg("init").output().unwrap();
    assert!(
        out.status.success(),
        "bus init: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let tokens = work.path().join("tokens.json");
    let out = Command::new(&ingest)
        .arg("--tokens")
        .arg(&tokens)
        .args(["token", "create", "--team", "checkout"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let addr = "127.0.0.1:18797";
    let _server = Proc(
        Command::new(&ingest)
            .arg("--lake")
            .arg(&lake)
            .arg("--tokens")
            .arg(&tokens)
            .args(["serve", "--addr", addr, "--rate", "1000000"])
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/events");
    rt.block_on(async {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if client
                .get(format!("http://{addr}/healthz"))
                .send()
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("ingest did not start");
    });

    // The consumer: every line it prints, with the moment it arrived.
    let arrived: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
    let mut consume = bus(&bus_bin, &env);
    consume.args(["consume", "--team", "growth"]);
    if kafka {
        consume.args(["--from", "kafka", "--session-timeout", "6s"]);
    }
    let mut consumer = Proc(
        consume
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = consumer.0.stdout.take().unwrap();
    let sink = arrived.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let at = Instant::now();
            if let Some(id) = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v["event_id"].as_str().map(str::to_owned))
            {
                sink.lock().unwrap().entry(id).or_default().push(at);
            }
        }
    });
    let fanout = Proc(
        bus(&bus_bin, &env)
            .arg("fanout")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let bridge = kafka.then(|| {
        Proc(
            bus(&bus_bin, &env)
                .arg("bridge")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    });
    if kafka {
        // The consumer group's first join takes about half the session timeout.
        std::thread::sleep(Duration::from_secs(5));
    }

    // 1. Latency, from each 2xx to the consumer's line.
    let mut retries = 0;
    let acked: HashMap<String, Instant> = rt.block_on(async {
        let mut acked = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        for seq in 0..seconds * rate {
            tick.tick().await;
            let (ids, body) = batch("lat", seq, per_request);
            retries += post(&client, &url, &token, body).await;
            let at = Instant::now();
            for id in ids {
                acked.insert(id, at);
            }
        }
        acked
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let n = arrived
            .lock()
            .unwrap()
            .keys()
            .filter(|k| acked.contains_key(*k))
            .count();
        if n == acked.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = arrived.lock().unwrap().clone();
    let mut ms: Vec<f64> = acked
        .iter()
        .filter_map(|(id, sent)| {
            got.get(id)
                .map(|t| t[0].saturating_duration_since(*sent).as_secs_f64() * 1000.0)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let lost = acked.len() - ms.len();
    let twice = got.values().filter(|v| v.len() > 1).count();
    println!(
        "end to end ({}): {} events from {} requests at {rate}/s; 2xx to consumer p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms; lost {lost}, printed twice {twice}",
        if kafka {
            "ingest, ledger, stream, fan-out, SQS, bridge, Kafka, consumer"
        } else {
            "ingest, ledger, stream, fan-out, SQS, consumer"
        },
        acked.len(),
        seconds * rate,
        pct(&ms, 50.0),
        pct(&ms, 95.0),
        pct(&ms, 99.0),
        ms.last().copied().unwrap_or(0.0),
    );
    println!(
        "requests retried after a 503 or 429 (the ledger on the stand-in past the deadline): {retries}"
    );
    drop(bridge);
    drop(fanout);
    drop(consumer);

    // 2. One fan-out process on one core: a backlog of 2,000 events, delivered while the
    // team's consumer drains the queue. The stand-in (moto, a Python server on the same cores)
    // bounds the wall-clock rate; the fan-out's own CPU time says what one core sustains.
    let backlog_requests = 20;
    rt.block_on(async {
        for seq in 0..backlog_requests {
            let (_, body) = batch("tput", seq, 100);
            post(&client, &url, &token, body).await;
        }
    });
    let _drain = Proc(
        bus(&bus_bin, &env)
            .args(["consume", "--team", "growth"])
            .args(if kafka {
                &["--from", "queue"][..]
            } else {
                &[][..]
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(&bus_bin)
        .args(["fanout", "--idle", "3s"])
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let pid = child.id();
    let reader = std::thread::spawn(move || {
        let (mut delivered, mut last) = (0usize, Instant::now());
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            // "<n> batches, <m> messages delivered..."
            if let Some(m) = line
                .split_once(" batches, ")
                .and_then(|(_, rest)| rest.split_once(' '))
                .and_then(|(m, _)| m.parse::<usize>().ok())
            {
                delivered += m;
                last = Instant::now();
            }
        }
        (delivered, last)
    });
    // Reaped with its CPU time; `child` is not waited on again.
    let (status, cpu) = eventlake_benches::wait_cpu(pid);
    drop(child);
    assert_eq!(status, 0, "bus fanout failed");
    let (delivered, last) = reader.join().unwrap();
    let secs = last.duration_since(started).as_secs_f64();
    // The stream still holds the latency run's batches: the poller delivers them again (the
    // queue drops the repeats), so count what it sent.
    println!(
        "fan-out on one core: {delivered} messages (a backlog of {} events plus the {} re-read from the stream's start) in {secs:.1} s: {:.0} events/s against moto; the fan-out's own CPU time {:.2} s: {:.0} events per CPU-second",
        backlog_requests * 100,
        acked.len(),
        delivered as f64 / secs,
        cpu.as_secs_f64(),
        delivered as f64 / cpu.as_secs_f64().max(1e-3),
    );
}
