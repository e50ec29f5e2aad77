//! What one fan-out process does on one core, without the network: the stream records of
//! committed batches handled by the real fan-out (raw objects read from a local lake, gunzipped,
//! each event matched against the subscriptions and addressed to every receiving team with its
//! deduplication id and message group), with a delivery that only counts the messages.
//!
//! ```text
//! cargo bench -p eventlake-benches --bench fanout_cpu -- [--batches 2000] [--events 100]
//! ```
//!
//! One thread (a current-thread runtime), records handed over 100 at a time as a Lambda mapping
//! does. It prints events/s and messages/s; the end-to-end bench (`bus_latency`) measures the
//! same fan-out against the stand-ins, where their own speed is the limit.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use eventlake_bus::Subscriptions;
use eventlake_bus::deliver::Deliver;
use eventlake_bus::fanout::Message;
use eventlake_bus::outbox::Committed;
use eventlake_bus::stream::{FanOut, StreamItem, WhenExhausted};
use eventlake_contract::TeamName;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

#[derive(Debug, Default)]
struct Count(AtomicUsize);

#[async_trait::async_trait]
impl Deliver for Count {
    async fn deliver(&self, messages: &[Message]) -> Result<(), eventlake_bus::Error> {
        self.0.fetch_add(messages.len(), Ordering::Relaxed);
        Ok(())
    }
}

fn main() {
    let batches: usize = arg("--batches", "2000").parse().unwrap();
    let per_batch: usize = arg("--events", "100").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let checkout = TeamName::new("checkout").unwrap();
    // Raw objects as ingest writes them: gzip NDJSON, stamped events of a mix of types.
    let types = [
        "purchase",
        "page_view",
        "search",
        "checkout.started",
        "signup",
    ];
    let mut committed = Vec::with_capacity(batches);
    for b in 0..batches {
        let key = format!("raw/team=checkout/dt=2026-12-01/hour=10/b{b}.ndjson.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..per_batch {
            writeln!(
                gz,
                r#"{{"event_id":"e-{b}-{i}","event_type":"{}","event_time":"2026-12-01T10:00:00.000Z","user_id":"u{}","source":"{}","properties":{{"amount":12.5,"sku":"A-{i}"}},"team":"checkout","received_at":"2026-12-01T10:00:01.000Z","schema_version":1}}"#,
                types[(b + i) % types.len()],
                (b * per_batch + i) % 997,
                if i % 3 == 0 { "ios" } else { "web" },
            )
            .unwrap();
        }
        let path = lake.join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        committed.push(Committed {
            team: checkout.clone(),
            batch_id: format!("b{b}"),
            stored_at: key,
        });
    }
    let subs = Subscriptions::parse(
        r#"{"version": 1, "teams": ["checkout", "growth", "search", "ads"],
            "subscriptions": [
              {"team": "growth", "from": "checkout", "event_types": ["purchase", "checkout.*"]},
              {"team": "search", "from": "checkout", "event_types": ["*"], "sources": ["web"]},
              {"team": "ads", "from": "checkout", "event_types": ["page_view", "signup"]}]}"#,
        "bench",
    )
    .unwrap();
    let count = Arc::new(Count::default());
    let location = eventlake_store::open(lake.to_str().unwrap(), false).unwrap();
    let fanout = FanOut::new(location, Arc::new(subs), count.clone());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    rt.block_on(async {
        for (n, chunk) in committed.chunks(100).enumerate() {
            let items = chunk
                .iter()
                .enumerate()
                .map(|(i, c)| StreamItem {
                    sequence_number: format!("{}", n * 100 + i),
                    batch: Ok(Some(c.clone())),
                })
                .collect();
            let handled = fanout.handle(items, WhenExhausted::Report).await.unwrap();
            assert!(handled.retry_from.is_none() && handled.kept.is_empty());
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let events = batches * per_batch;
    let messages = count.0.load(Ordering::Relaxed);
    println!(
        "fan-out on one thread: {events} events in {batches} batches ({messages} messages to 3 teams) in {secs:.2} s: {:.0} events/s, {:.0} messages/s",
        events as f64 / secs,
        messages as f64 / secs
    );
}
