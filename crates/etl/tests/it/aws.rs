//! The cloud path against local stand-ins: S3 (SeaweedFS), Glue and Athena's control flow (moto).
//! `tests/run.sh` starts them and runs these tests; without them these tests fail, never pass.
//!
//! Faults the stand-ins cannot produce (S3 503 SlowDown and dropped connections, Glue
//! AccessDenied, a failed Athena query) come from small servers below: a proxy in front of the S3
//! stand-in that answers 503 or drops the connection, and an endpoint that answers as Glue or
//! Athena do when they refuse.

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_glue::types::{PartitionInput, StorageDescriptor};
use eventlake_catalog::Lake;
use eventlake_catalog::{GlueCatalog, GlueTarget, ObjectCatalog};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{etl_bin, stderr, stdout};
use crate::conformance::conformance;

const IGNORE: &str = "needs the S3 and AWS stand-ins: run tests/run.sh";

fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// `s3://bucket/prefix` on the S3 stand-in, unique to this test.
pub(crate) fn s3_lake(name: &str) -> String {
    let base = std::env::var("EVENTLAKE_TEST_S3_LAKE")
        .expect("EVENTLAKE_TEST_S3_LAKE is not set: run tests/run.sh, which starts the stand-ins");
    format!("{base}/{}", unique(name))
}

fn moto() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run tests/run.sh, which starts the stand-ins")
}

pub(crate) async fn sdk() -> aws_config::SdkConfig {
    moto();
    eventlake_store::sdk_config().await
}

/// A Glue database name unique to this test (names are lower case, no dashes).
pub(crate) fn database(name: &str) -> String {
    unique(name).replace('-', "_")
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = etl_bin();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("etl runs")
}

/// Runs etl and returns its stdout; fails the test with both outputs when it fails.
pub(crate) fn run_ok(args: &[&str]) -> String {
    ok(run(args, &[]))
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "etl failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn count(lake: &str, extra: &[&str]) -> String {
    let mut args = vec!["--lake", lake];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "query",
        "--format",
        "csv",
        "--sql",
        "SELECT count(*) AS n FROM events",
    ]);
    ok(run(&args, &[]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn object_catalog_on_s3_conforms() {
    let _ = IGNORE;
    let sdk = sdk().await;
    let lake = Lake::open_with_sdk(&s3_lake("conf"), false, &sdk).unwrap();
    conformance(Arc::new(ObjectCatalog::new(&lake))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn glue_catalog_conforms() {
    let sdk = sdk().await;
    let lake = Lake::open_with_sdk(&s3_lake("conf"), false, &sdk).unwrap();
    let target = GlueTarget {
        database: database("conf"),
        table: "events".into(),
    };
    let glue = GlueCatalog::new(&sdk, target.clone(), &lake);
    glue.ensure_table().await.unwrap();
    conformance(Arc::new(glue)).await;

    // The table is as Athena needs it.
    let client = aws_sdk_glue::Client::new(&sdk);
    let t = client
        .get_table()
        .database_name(&target.database)
        .name("events")
        .send()
        .await
        .unwrap();
    let t = t.table().unwrap();
    let sd = t.storage_descriptor().unwrap();
    assert_eq!(
        sd.serde_info().unwrap().serialization_library(),
        Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
    );
    let cols: Vec<(&str, &str)> = sd
        .columns()
        .iter()
        .map(|c| (c.name(), c.r#type().unwrap()))
        .collect();
    assert_eq!(cols[0], ("event_id", "string"));
    assert_eq!(cols[2], ("event_time", "timestamp"));
    assert_eq!(cols[7], ("schema_version", "int"));
    let keys: Vec<&str> = t.partition_keys().iter().map(|c| c.name()).collect();
    assert_eq!(keys, ["team", "dt"]);
    assert_eq!(t.parameters().unwrap()["classification"], "parquet");
    assert!(sd.location().unwrap().ends_with("/curated/events/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn backfill_on_s3_registers_every_partition_in_glue() {
    let sdk = sdk().await;
    let lake = s3_lake("glue");
    let db = database("e2e");
    let glue = ["--catalog", "glue", "--glue-database", db.as_str()];
    let client = aws_sdk_glue::Client::new(&sdk);

    ok(run(&["--lake", &lake, "generate"], &[]));

    // A partition someone registered elsewhere: it is repointed, not duplicated.
    let s3 = Lake::open_with_sdk(&lake, false, &sdk).unwrap();
    GlueCatalog::new(
        &sdk,
        GlueTarget {
            database: db.clone(),
            table: "events".into(),
        },
        &s3,
    )
    .ensure_table()
    .await
    .unwrap();
    client
        .create_partition()
        .database_name(&db)
        .table_name("events")
        .partition_input(
            PartitionInput::builder()
                .values("checkout")
                .values("2026-11-20")
                .storage_descriptor(
                    StorageDescriptor::builder()
                        .location("s3://elsewhere/events/team=checkout/dt=2026-11-20/")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    let mut args = vec!["--lake", lake.as_str()];
    args.extend_from_slice(&glue);
    args.extend_from_slice(&["backfill", "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&ok(run(&args, &[]))).unwrap();
    assert_eq!(summary["committed"], 9, "{summary}");

    let parts = client
        .get_partitions()
        .database_name(&db)
        .table_name("events")
        .send()
        .await
        .unwrap();
    assert_eq!(parts.partitions().len(), 9);
    for p in parts.partitions() {
        let loc = p.storage_descriptor().unwrap().location().unwrap();
        assert!(
            loc.starts_with(&format!("{lake}/curated/events/team=")),
            "{loc}"
        );
        assert!(loc.contains("/v="), "{loc}");
    }
    let (c, d) = (&client, &db);
    let table_versions = move || async move {
        c.get_table_versions()
            .database_name(d)
            .table_name("events")
            .send()
            .await
            .unwrap()
            .table_versions()
            .len()
    };
    let versions_before = table_versions().await;

    // What Glue points at is what the local engine reads.
    assert_eq!(count(&lake, &glue), "n\n29647\n");

    // A re-run changes nothing: no partition, and no table version.
    let summary: serde_json::Value = serde_json::from_str(&ok(run(&args, &[]))).unwrap();
    assert_eq!(summary["committed"], 0, "{summary}");
    assert_eq!(summary["unchanged"], 9, "{summary}");
    assert_eq!(versions_before, table_versions().await);

    // A wiped catalog comes back from the manifests.
    client.delete_database().name(&db).send().await.unwrap();
    assert_eq!(count(&lake, &glue), "n\n0\n");
    let mut sync = vec!["--lake", lake.as_str()];
    sync.extend_from_slice(&glue);
    sync.extend_from_slice(&["catalog", "sync", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&ok(run(&sync, &[]))).unwrap();
    assert_eq!(
        report["registered"].as_array().unwrap().len(),
        9,
        "{report}"
    );
    assert_eq!(count(&lake, &glue), "n\n29647\n");
    let again: serde_json::Value = serde_json::from_str(&ok(run(&sync, &[]))).unwrap();
    assert_eq!(again["unchanged"], 9, "{again}");

    // The same lake with the catalog kept in the bucket: backfill, gc and query work on S3 too.
    ok(run(&["--lake", &lake, "backfill"], &[]));
    assert_eq!(count(&lake, &[]), "n\n29647\n");
    ok(run(
        &["--lake", &lake, "gc", "--grace", "0s", "--dry-run"],
        &[],
    ));
}

/// A TCP proxy in front of the S3 stand-in. The first `faults` connections are answered `503 SlowDown` or, every other one, dropped without an
/// answer; the rest are passed through.
async fn fault_proxy(faults: usize) -> (String, Arc<AtomicUsize>) {
    let upstream = std::env::var("AWS_ENDPOINT_URL_S3").expect("AWS_ENDPOINT_URL_S3");
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if n < faults {
                    let mut buf = [0u8; 4096];
                    let _ = client.read(&mut buf).await;
                    if n.is_multiple_of(2) {
                        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                        let _ = client
                            .write_all(
                                format!(
                                    "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                    body.len()
                                )
                                .as_bytes(),
                            )
                            .await;
                    }
                    return; // dropped
                }
                if let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn s3_slowdown_and_dropped_connections_are_retried_then_fail_cleanly() {
    let lake = s3_lake("faults");
    let truth: serde_json::Value = serde_json::from_str(&ok(run(
        &[
            "--lake", &lake, "generate", "--events", "3000", "--teams", "checkout", "--days", "1",
            "--json",
        ],
        &[],
    )))
    .unwrap();
    let rows = format!("n\n{}\n", truth["totals"]["events"]);

    // A burst of 503s and dropped connections: retried with backoff, the run succeeds.
    let (proxy, seen) = fault_proxy(6).await;
    let env = [("AWS_ENDPOINT_URL_S3", proxy.as_str())];
    let out = ok(run(&["--lake", &lake, "backfill", "--json"], &env));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["committed"], 1, "{summary}");
    assert!(seen.load(Ordering::SeqCst) > 6);
    assert_eq!(count(&lake, &[]), rows);

    // New raw data, then S3 refuses every write with 503 SlowDown: the partition fails clearly
    // after the retries, and readers still see the last committed version.
    ok(run(
        &[
            "--lake", &lake, "generate", "--events", "3000", "--teams", "checkout", "--days", "1",
            "--seed", "9",
        ],
        &[],
    ));
    let proxy = writes_refused_proxy().await;
    let env = [
        ("AWS_ENDPOINT_URL_S3", proxy.as_str()),
        ("EVENTLAKE_S3_MAX_RETRIES", "2"),
    ];
    let o = run(&["--lake", &lake, "backfill"], &env);
    assert_eq!(o.status.code(), Some(1));
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(out.contains("FAILED: team=checkout/dt=2026-11-20"), "{out}");
    assert!(out.contains("503"), "{out}");
    assert_eq!(count(&lake, &[]), rows);
}

/// An HTTP proxy in front of the S3 stand-in that answers every write (PUT, POST) with
/// `503 SlowDown` and passes reads through, Host header included (it is signed).
async fn writes_refused_proxy() -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    let upstream = std::env::var("AWS_ENDPOINT_URL_S3").expect("AWS_ENDPOINT_URL_S3");
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let client = client.clone();
            let upstream = upstream.clone();
            async move {
                if method == Method::PUT || method == Method::POST {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        HeaderMap::new(),
                        Bytes::from_static(b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"),
                    );
                }
                let url = format!("{upstream}{}", uri.path_and_query().map_or("/", |p| p.as_str()));
                let mut req = client.request(method, url).body(body);
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                match req.send().await {
                    Ok(r) => {
                        let status = r.status();
                        let mut h = HeaderMap::new();
                        for (k, v) in r.headers() {
                            if k != "content-length" && k != "transfer-encoding" {
                                h.insert(k, v.clone());
                            }
                        }
                        let b = r.bytes().await.unwrap_or_default();
                        (status, h, b)
                    }
                    Err(_) => (StatusCode::BAD_GATEWAY, HeaderMap::new(), Bytes::new()),
                }
            }
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[test]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
fn wrong_credentials_and_missing_bucket_are_named() {
    let lake = s3_lake("creds");
    let o = run(
        &["--lake", &lake, "backfill"],
        &[("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123456789")],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("bucket \"eventlake-test\""), "{e}");
    assert!(e.contains("access key id eventlake-test"), "{e}");
    assert!(
        !e.contains("not-the-secret"),
        "the secret must never be printed: {e}"
    );

    let o = run(
        &["--lake", "s3://no-such-bucket-eventlake/x", "backfill"],
        &[],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("bucket \"no-such-bucket-eventlake\" does not exist"),
        "{e}"
    );
}

/// Answers every request as an AWS JSON-protocol service would with `status` and `body`, counting
/// requests per `X-Amz-Target`.
async fn refusing_endpoint(
    answer: impl Fn(&str) -> (u16, String) + Send + Sync + 'static,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let targets = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&targets);
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen);
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                loop {
                    // Read one request: headers, then Content-Length bytes of body.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let target = head
                        .lines()
                        .find_map(|l| l.strip_prefix("x-amz-target:"))
                        .map(|t| t.trim().to_owned())
                        .unwrap_or_default();
                    seen.lock().unwrap().push(target.clone());
                    let (status, body) = answer(&target);
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), targets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn glue_access_denied_is_not_retried_and_says_so() {
    let lake = s3_lake("denied");
    ok(run(
        &[
            "--lake", &lake, "generate", "--events", "500", "--teams", "checkout", "--days", "1",
        ],
        &[],
    ));
    let (endpoint, targets) = refusing_endpoint(|_| {
        (
            400,
            r#"{"__type":"AccessDeniedException","Message":"User: arn:aws:sts::123456789012:assumed-role/etl/x is not authorized to perform: glue:GetPartition"}"#.to_owned(),
        )
    })
    .await;
    let o = run(
        &["--lake", &lake, "--catalog", "glue", "backfill"],
        &[("AWS_ENDPOINT_URL", endpoint.as_str())],
    );
    assert!(!o.status.success());
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        out.contains("Glue GetPartition on eventlake.events team=checkout/dt=2026-11-20"),
        "{out}"
    );
    assert!(out.contains("access denied (not retried"), "{out}");
    assert!(
        out.contains("not authorized to perform: glue:GetPartition"),
        "{out}"
    );
    let calls = targets.lock().unwrap().clone();
    assert_eq!(
        calls,
        ["awsglue.getpartition"],
        "one call, no retry: {calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn athena_query_goes_through_the_whole_control_flow() {
    let base = moto();
    let http = reqwest::Client::new();
    // Queries pass through QUEUED and RUNNING over successive polls before SUCCEEDED.
    http.post(format!("{base}/moto-api/state-manager/set-transition"))
        .json(&serde_json::json!({
            "model_name": "athena::execution",
            "transition": {"progression": "manual", "times": 2}
        }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let row = |v: &[&str]| serde_json::json!({"Data": v.iter().map(|x| serde_json::json!({"VarCharValue": x})).collect::<Vec<_>>()});
    let result = serde_json::json!({
        "rows": [row(&["team", "events"]), row(&["checkout", "9871"]), row(&["search", "9906"])],
        "column_info": [
            {"Name": "team", "Type": "varchar", "CatalogName": "hive", "SchemaName": "", "TableName": "", "Label": "team", "Nullable": "UNKNOWN", "CaseSensitive": true},
            {"Name": "events", "Type": "bigint", "CatalogName": "hive", "SchemaName": "", "TableName": "", "Label": "events", "Nullable": "UNKNOWN", "CaseSensitive": false}
        ]
    });
    for _ in 0..3 {
        http.post(format!("{base}/moto-api/static/athena/query-results"))
            .json(&serde_json::json!({"region": "us-east-1", "results": [result.clone()]}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
    let lake = s3_lake("athena");
    let sql_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sql");
    let file = sql_dir.join("events_per_team_day.sql");
    let o = run(
        &[
            "--lake",
            &lake,
            "--catalog",
            "glue",
            "query",
            "--engine",
            "athena",
            "--athena-output",
            "s3://eventlake-test/athena-results/",
            "--file",
            file.to_str().unwrap(),
            "--format",
            "csv",
        ],
        &[],
    );
    assert_eq!(ok(o.clone()), "team,events\ncheckout,9871\nsearch,9906\n");
    let e = stderr(&o);
    assert!(
        e.contains("queued ") && e.contains("engine ") && e.contains("2 rows"),
        "{e}"
    );

    // check-p95 on Athena times every run through the same flow.
    let chart = std::env::temp_dir().join(format!("{}.svg", unique("p95")));
    let o = run(
        &[
            "--lake",
            &lake,
            "--catalog",
            "glue",
            "check-p95",
            file.to_str().unwrap(),
            "--engine",
            "athena",
            "--runs",
            "2",
            "--json",
            "--chart",
            chart.to_str().unwrap(),
        ],
        &[],
    );
    let report: serde_json::Value = serde_json::from_str(&ok(o)).unwrap();
    assert_eq!(report["engine"], "athena");
    assert_eq!(
        report["queries"][0]["samples_ms"].as_array().unwrap().len(),
        2
    );
    assert_eq!(report["queries"][0]["rows"], 2);
    let _ = std::fs::remove_file(chart);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn a_failed_athena_query_shows_athenas_reason() {
    let (endpoint, targets) = refusing_endpoint(|target| match target {
        "amazonathena.startqueryexecution" => (200, r#"{"QueryExecutionId":"q-1"}"#.to_owned()),
        _ => (
            200,
            r#"{"QueryExecution":{"QueryExecutionId":"q-1","Status":{"State":"FAILED","StateChangeReason":"COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved","AthenaError":{"ErrorCategory":2,"ErrorType":1006}},"Statistics":{"QueryQueueTimeInMillis":12,"EngineExecutionTimeInMillis":80}}}"#.to_owned(),
        ),
    })
    .await;
    let o = run(
        &[
            "--lake",
            &s3_lake("athena-fail"),
            "query",
            "--engine",
            "athena",
            "--sql",
            "SELECT nope FROM events",
        ],
        &[("AWS_ENDPOINT_URL", endpoint.as_str())],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("query q-1 failed in workgroup primary: COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved (error type 1006)"), "{e}");
    let calls = targets.lock().unwrap().clone();
    assert_eq!(calls[0], "amazonathena.startqueryexecution");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn a_retry_across_midnight_is_one_row_on_s3_in_every_order() {
    crate::cross_day::every_order_gives_the_same_rows(|| {
        let lake = Lake::open(&s3_lake("midnight"), false).unwrap();
        let catalog: Arc<dyn eventlake_catalog::Catalog> = Arc::new(ObjectCatalog::new(&lake));
        (lake, catalog, Box::new(()))
    })
    .await;
}

/// On S3 a large plan's file is where the Distributed Map's ItemReader looks: the lake's bucket,
/// and the key under the lake's prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn a_large_plan_on_s3_names_its_bucket_and_key() {
    let sdk = sdk().await;
    let lake = s3_lake("large-plan");
    ok(run(
        &[
            "--lake",
            &lake,
            "generate",
            "--events",
            "1500",
            "--days",
            "2",
            "--start",
            "2026-11-01",
        ],
        &[],
    ));
    let payload = r#"{"action":"plan","scope":"range","from":"2026-11-01","to":"2026-11-02"}"#;
    let out = ok(run(
        &["--lake", &lake, "task", "--payload", payload],
        &[("EVENTLAKE_PLAN_INLINE_MAX", "1")],
    ));
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["count"], 6, "{plan}");
    let (bucket, prefix) = lake.strip_prefix("s3://").unwrap().split_once('/').unwrap();
    assert_eq!(plan["items"]["bucket"], bucket, "{plan}");
    let key = plan["items"]["key"].as_str().unwrap();
    assert!(
        key.starts_with(&format!("{prefix}/_workflow/plans/")),
        "{key}"
    );
    let s3 = Lake::open_with_sdk(&lake, false, &sdk).unwrap();
    let rel = s3.key_of_url(&format!("s3://{bucket}/{key}")).unwrap();
    let items: serde_json::Value = serde_json::from_slice(&s3.get(&rel).await.unwrap()).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 6, "{items}");
    assert!(
        items[0]["team"].is_string() && items[0]["runner"] == "lambda",
        "{items}"
    );
}

/// A team with a key of its own (`EVENTLAKE_TEAM_KMS_KEYS`): every object of its partitions (raw
/// batches, curated files, manifests, quarantine, id index) is written under that key, the other
/// teams' under the bucket's default. Checked on moto's S3, which records the key of each object
/// (the S3 stand-in of the other tests does not keep encryption settings).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn a_team_with_its_own_key_has_every_object_written_under_it() {
    let endpoint = moto();
    let bucket = unique("team-keys").to_lowercase();
    let http = reqwest::Client::new();
    let created = http
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{created:?}");
    let lake = format!("s3://{bucket}/lake");
    let key = "arn:aws:kms:eu-west-1:123456789012:key/team-checkout";
    let env = [
        ("AWS_ENDPOINT_URL_S3", endpoint.as_str()),
        (
            "EVENTLAKE_TEAM_KMS_KEYS",
            r#"{"checkout":"arn:aws:kms:eu-west-1:123456789012:key/team-checkout"}"#,
        ),
    ];
    ok(run(
        &[
            "--lake",
            &lake,
            "generate",
            "--events",
            "2000",
            "--days",
            "1",
            "--teams",
            "checkout,search",
            "--start",
            "2026-11-20",
        ],
        &env,
    ));
    ok(run(&["--lake", &lake, "backfill"], &env));

    // moto answers an unsigned HEAD of a KMS-encrypted object with 403; its state dump has
    // every object's key.
    let state: serde_json::Value = http
        .get(format!("{endpoint}/moto-api/data.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let objects: Vec<(&str, Option<&str>, bool)> = state["s3"]["FakeKey"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["bucket_name"] == bucket.as_str())
        .map(|o| {
            (
                o["name"].as_str().unwrap(),
                o["kms_key_id"].as_str(),
                o["bucket_key_enabled"] == "true",
            )
        })
        .collect();
    for kind in [
        "lake/raw/",
        "lake/curated/",
        "lake/quarantine/",
        "lake/_catalog/",
    ] {
        for team in ["checkout", "search"] {
            assert!(
                objects
                    .iter()
                    .any(|(k, _, _)| k.starts_with(kind) && k.contains(&format!("team={team}/"))),
                "no {kind} object of {team}: {objects:?}"
            );
        }
    }
    for (k, used, bucket_key) in &objects {
        if k.contains("team=checkout/") {
            assert_eq!(*used, Some(key), "{k}");
            assert!(bucket_key, "{k} was written without an S3 Bucket Key");
        } else {
            assert_eq!(
                *used, None,
                "{k} is not checkout's, yet has a key of its own"
            );
        }
    }
}

/// On S3 as in a folder, raw data outside every partition's prefix is named in the summary, and
/// the partitions beside it are compacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn raw_data_outside_every_partition_is_named_on_s3() {
    let sdk = sdk().await;
    let lake = s3_lake("strays");
    ok(run(
        &[
            "--lake", &lake, "generate", "--events", "600", "--days", "1",
        ],
        &[],
    ));
    let s3 = Lake::open_with_sdk(&lake, false, &sdk).unwrap();
    for key in [
        "raw/README.txt",
        "raw/_tmp/x.ndjson.gz",
        "raw/team=Growth/dt=2026-11-20/hour=10/a.ndjson",
        "raw/team=growth/dt=2026-11-31/hour=10/a.ndjson",
    ] {
        s3.put(key, b"{}\n".to_vec()).await.unwrap();
    }
    let summary: serde_json::Value =
        serde_json::from_str(&ok(run(&["--lake", &lake, "backfill", "--json"], &[]))).unwrap();
    assert_eq!(summary["committed"], 3, "{summary}");
    let keys: Vec<&str> = summary["unread"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "raw/README.txt",
            "raw/team=Growth/",
            "raw/team=growth/dt=2026-11-31/"
        ]
    );
}

/// A raw object too large to hold whole is streamed from S3 and read in parts: the partition
/// commits what the same lines give in small objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn a_large_raw_object_is_streamed_from_s3_in_parts() {
    use std::io::Read;
    let local = crate::common::TestLake::new();
    let opts = eventlake_compaction::generate::GenerateOptions {
        teams: vec![eventlake_contract::TeamName::new("search").unwrap()],
        days: 1,
        events: 20_000,
        ..Default::default()
    };
    eventlake_compaction::generate::generate(&local.lake, &opts)
        .await
        .unwrap();
    let mut objects = crate::common::walk(&local.path.join("raw"));
    objects.sort();
    let mut text = Vec::new();
    for object in &objects {
        flate2::read::MultiGzDecoder::new(std::fs::File::open(object).unwrap())
            .read_to_end(&mut text)
            .unwrap();
    }
    assert!(text.len() as u64 > eventlake_compaction::read::PARTS_FROM_BYTES);
    let key = objects[0]
        .strip_prefix(&local.path)
        .unwrap()
        .to_str()
        .unwrap();
    let partition = key.split("/hour=").next().unwrap();
    let want = local.backfill(false).await;
    assert!(want.ok());

    let sdk = sdk().await;
    let lake = s3_lake("large");
    let s3 = Lake::open_with_sdk(&lake, false, &sdk).unwrap();
    s3.put(&format!("{partition}/hour=00/export.ndjson"), text)
        .await
        .unwrap();
    let got: serde_json::Value =
        serde_json::from_str(&ok(run(&["--lake", &lake, "backfill", "--json"], &[]))).unwrap();
    for count in ["lines", "rows", "duplicates", "conflicts", "quarantined"] {
        assert_eq!(
            got["totals"][count],
            serde_json::to_value(&want.totals).unwrap()[count],
            "{count}: {got}"
        );
    }
    assert_eq!(got["totals"]["objects"], 1);
    assert_eq!(
        count(&lake, &[]),
        format!("n\n{}\n", want.totals.rows),
        "the rows read back"
    );

    // Its download cut off twice: the read goes on from where it was cut, nothing is lost.
    let again = ["backfill", "--json", "--force"];
    let (proxy, cut) = body_cut_proxy(2).await;
    let env = [("AWS_ENDPOINT_URL_S3", proxy.as_str())];
    let mut args = vec!["--lake", lake.as_str()];
    args.extend_from_slice(&again);
    let out: serde_json::Value = serde_json::from_str(&ok(run(&args, &env))).unwrap();
    assert_eq!(cut.load(Ordering::SeqCst), 2, "the downloads were cut");
    assert_eq!(out["totals"], got["totals"], "{out}");

    // Cut off every time: the partition fails, on the store's error; no line is taken for a
    // broken gzip stream, and readers see the version before.
    let (proxy, _) = body_cut_proxy(usize::MAX).await;
    let env = [
        ("AWS_ENDPOINT_URL_S3", proxy.as_str()),
        ("EVENTLAKE_S3_MAX_RETRIES", "2"),
    ];
    let o = run(&args, &env);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        summary["failed"],
        serde_json::json!([partition.trim_start_matches("raw/")])
    );
    let error = summary["partitions"][0]["error"].as_str().unwrap();
    assert!(error.contains("export.ndjson"), "{error}");
    assert!(!error.contains("gzip"), "{error}");
    assert_eq!(count(&lake, &[]), format!("n\n{}\n", want.totals.rows));
}

/// An HTTP proxy in front of the S3 stand-in that cuts off, after its first MiB, the body of the
/// first `cuts` downloads of an object named `export…`; everything else passes through. The
/// number cut so far.
async fn body_cut_proxy(cuts: usize) -> (String, Arc<AtomicUsize>) {
    use axum::body::{Body, Bytes};
    use axum::http::{HeaderMap, Method, Uri};
    use axum::response::IntoResponse;
    let upstream = std::env::var("AWS_ENDPOINT_URL_S3").expect("AWS_ENDPOINT_URL_S3");
    let client = reqwest::Client::new();
    let cut = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&cut);
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (client, upstream, counter) = (client.clone(), upstream.clone(), counter.clone());
            async move {
                let download = method == Method::GET && uri.path().contains("/export");
                let url = format!(
                    "{upstream}{}",
                    uri.path_and_query().map_or("/", |p| p.as_str())
                );
                let mut req = client.request(method, url).body(body);
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                let Ok(r) = req.send().await else {
                    return axum::http::StatusCode::BAD_GATEWAY.into_response();
                };
                let (status, mut h) = (r.status(), HeaderMap::new());
                for (k, v) in r.headers() {
                    if k != "transfer-encoding" {
                        h.insert(k, v.clone());
                    }
                }
                let b = r.bytes().await.unwrap_or_default();
                let body = if download
                    && b.len() > 1 << 20
                    && counter
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                            (n < cuts).then_some(n + 1)
                        })
                        .is_ok()
                {
                    let head: Result<Bytes, std::io::Error> = Ok(b.slice(..1 << 20));
                    let broken = Err(std::io::Error::other("connection cut"));
                    Body::from_stream(futures::stream::iter([head, broken]))
                } else {
                    Body::from(b)
                };
                (status, h, body).into_response()
            }
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), cut)
}
