//! Whole-job benchmark of `etl backfill`, with DuckDB doing the same job side by side.
//!
//! ```text
//! cargo bench -p eventlake-benches --bench compact -- [--events 3000000] [--runs 3] [--jobs 2] [--shape generator|varied|large|teams] [--no-duckdb] [--spark]
//! ```
//!
//! `--shape varied` generates data unlike the default generator's: five teams, 30 % of the lines in
//! one of them, events with twelve more properties, and objects of 40 lines instead of 480.
//! `--shape large` puts the generator's lines, for one team, in objects of 200,000 (about 11 MB
//! of gzip each, read in parts as they stream): at 3M events, two or three objects a partition.
//! `--shape teams` spreads the generator's lines over 300 teams in objects of 100: at 1M events,
//! 2,100 partitions of about 480 lines, where what a partition costs whatever its size (its
//! listing, files, commit and lease) counts as much as its lines.
//!
//! Each run also times a floor: the same raw objects decompressed and cut into lines on the same
//! number of threads, with nothing validated, built or written; and the same floor with every
//! line checked as JSON (`serde_json`, nothing kept). The job's time over the floor's says how
//! much of it is more than reading the bytes. A third floor is the other end: the curated files the
//! job just wrote, decoded beforehand and then encoded again in memory with the job's writer
//! settings on the same number of threads, timed for the encoding alone (already sorted, nothing
//! read, checked, gathered or stored). The JSON floor plus that one is about the least any job
//! that reads these objects and writes these files can take.
//!
//! Generates (once, cached under `target/bench-lakes/`) a lake of gzip NDJSON with 1 % duplicates
//! and 0.1 % malformed lines, then times `etl backfill` as a separate process, run by run, each
//! against an empty curated zone and catalog. When DuckDB is importable from `python3`, each run is
//! paired with a DuckDB run of the same job on the same files, and the ratio is taken pair by pair,
//! so a noisy machine skews both sides alike. With `--spark` (and `pip install pyspark`, Java 17),
//! Spark local[2] runs the same job too. Prints wall time, lines/s, raw MB/s (uncompressed) and
//! peak RSS (the job's own process; for Spark only its Python driver, not the JVM it starts).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use eventlake_benches::{CHILD_ENV, Measured, median, run_as_etl_if_asked, run_measured, walk};
use eventlake_catalog::Lake;
use eventlake_compaction::generate::{GenerateOptions, generate};

// The same allocator as the `etl` binary, since this binary runs the job as `etl` does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    events: u64,
    runs: usize,
    jobs: usize,
    duckdb: bool,
    spark: bool,
    days: u32,
    shape: Shape,
}

/// Which raw data the bench generates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The generator's own: objects of 480 lines.
    Generator,
    /// Unlike the generator's (see the module documentation).
    Varied,
    /// The generator's lines for one team, in objects of 200,000 (about 11 MB of gzip each), as
    /// an export or a producer that batches hours writes them.
    Large,
    /// The generator's lines for 300 teams, in objects of 100: many small partitions.
    Teams,
}

fn parse_args() -> Args {
    let mut a = Args {
        events: 3_000_000,
        runs: 3,
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
        duckdb: true,
        spark: false,
        days: 7,
        shape: Shape::Generator,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = || {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .expect("a number")
        };
        match arg.as_str() {
            "--events" => a.events = num(),
            "--runs" => a.runs = num() as usize,
            "--jobs" => a.jobs = num() as usize,
            "--days" => a.days = num() as u32,
            "--no-duckdb" => a.duckdb = false,
            "--shape" => match it.next().as_deref() {
                Some("generator") => a.shape = Shape::Generator,
                Some("varied") => a.shape = Shape::Varied,
                Some("large") => a.shape = Shape::Large,
                Some("teams") => a.shape = Shape::Teams,
                other => panic!("--shape is generator, varied, large or teams, not {other:?}"),
            },
            "--spark" => a.spark = true,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// Set (to `lines`, `json` or `write`) when this binary is started to time a floor.
const FLOOR_ENV: &str = "EVENTLAKE_BENCH_FLOOR";

fn main() {
    run_as_etl_if_asked();
    if let Ok(kind) = std::env::var(FLOOR_ENV) {
        let mut a = std::env::args().skip(1);
        let (dir, jobs) = (a.next().expect("raw dir"), a.next().expect("threads"));
        if kind == "write" {
            let (rows, seconds) = write_floor(Path::new(&dir), jobs.parse().expect("threads"));
            println!("{rows} {seconds}");
            return;
        }
        let lines = floor(
            Path::new(&dir),
            jobs.parse().expect("threads"),
            kind == "json",
        );
        println!("{lines}");
        return;
    }
    let args = parse_args();
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-lakes");
    let lake_dir = target.join(format!(
        "lake-{}-{}d{}",
        args.events,
        args.days,
        match args.shape {
            Shape::Generator => "",
            Shape::Varied => "-varied",
            Shape::Large => "-large",
            Shape::Teams => "-teams",
        }
    ));
    let truth_file = lake_dir.join("_truth.json");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    const GENERATE_ENV: &str = "EVENTLAKE_BENCH_GENERATE";
    // The lake is generated by a child process: a child forked from a parent that holds the
    // generator's memory would report that memory as its own peak RSS.
    if !truth_file.exists() && std::env::var_os(GENERATE_ENV).is_none() {
        let status = Command::new(std::env::current_exe().unwrap())
            .env(GENERATE_ENV, "1")
            .args(std::env::args().skip(1))
            .status()
            .unwrap();
        assert!(status.success(), "generating the lake failed");
    }
    if !truth_file.exists() {
        eprintln!(
            "generating {} events into {} ...",
            args.events,
            lake_dir.display()
        );
        let _ = std::fs::remove_dir_all(&lake_dir);
        let started = Instant::now();
        let lake = Lake::open(lake_dir.to_str().unwrap(), true).unwrap();
        let mut opts = GenerateOptions {
            events: args.events,
            days: args.days,
            batch_size: 480,
            duplicate_rate: 0.01,
            malformed_rate: 0.001,
            ..GenerateOptions::default()
        };
        if args.shape == Shape::Large {
            opts.teams = vec![eventlake_contract::TeamName::new("checkout").unwrap()];
            opts.batch_size = 200_000;
        }
        if args.shape == Shape::Teams {
            opts.teams = (0..300)
                .map(|i| eventlake_contract::TeamName::new(&format!("team{i:03}")).unwrap())
                .collect();
            opts.batch_size = 100;
        }
        if args.shape == Shape::Varied {
            opts.teams = ["checkout", "search", "growth", "ads", "billing"]
                .iter()
                .map(|t| eventlake_contract::TeamName::new(t).unwrap())
                .collect();
            opts.first_team_share = Some(0.3);
            opts.extra_properties = 12;
            opts.batch_size = 40;
        }
        let truth = runtime.block_on(generate(&lake, &opts)).unwrap();
        std::fs::write(&truth_file, serde_json::to_vec_pretty(&truth).unwrap()).unwrap();
        eprintln!("generated in {:.1} s", started.elapsed().as_secs_f64());
    }
    if std::env::var_os(GENERATE_ENV).is_some() {
        return;
    }
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&truth_file).unwrap()).unwrap();
    let lines = truth["totals"]["lines"].as_u64().unwrap();
    let raw_bytes = truth["uncompressed_bytes"].as_u64().unwrap();
    let objects = truth["totals"]["objects"].as_u64().unwrap();

    let importable = |module: &str| {
        Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    let duckdb = args.duckdb && importable("duckdb");
    let spark = args.spark && importable("pyspark");
    assert!(
        !args.spark || spark,
        "--spark needs `pip install pyspark` and Java 17"
    );
    println!(
        "input: {lines} lines, {objects} objects, {:.0} MB NDJSON ({:.0} MB gzip); {} runs, --jobs {}{}",
        raw_bytes as f64 / 1e6,
        truth["bytes"].as_f64().unwrap() / 1e6,
        args.runs,
        args.jobs,
        match (duckdb, spark) {
            (true, true) => ", paired with DuckDB and Spark",
            (true, false) => ", paired with DuckDB",
            (false, true) => ", paired with Spark",
            (false, false) => "",
        }
    );

    let me = std::env::current_exe().unwrap();
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut ours: Vec<Measured> = Vec::new();
    let mut floors: Vec<(&str, Vec<Measured>)> = vec![("lines", Vec::new()), ("json", Vec::new())];
    // Seconds the write floor spent encoding, run by run.
    let mut write_floors: Vec<f64> = Vec::new();
    let mut baselines: Vec<(&str, Vec<Measured>)> = Vec::new();
    if duckdb {
        baselines.push(("duckdb", Vec::new()));
    }
    if spark {
        baselines.push(("spark", Vec::new()));
    }
    // What a run wrote is moved aside, not deleted, before the next run, and deleted once all
    // have run: on an ext4 file system without a journal, ext4 skips every inode freed within
    // the last 30 seconds when it creates a file, and deleting one run's thousands of files just
    // before the next made creating files the larger part of the next run's time.
    let aside = SetAside::new(&target);
    for run in 0..args.runs {
        reset(&lake_dir, &aside);
        let mut cmd = Command::new(&me);
        cmd.env(CHILD_ENV, "1")
            .env("ETL_LOG", "warn")
            .arg("--lake")
            .arg(&lake_dir)
            .args(["backfill", "--json", "--jobs", &args.jobs.to_string()]);
        let m = run_measured(cmd);
        let summary: serde_json::Value =
            serde_json::from_slice(&m.stdout).expect("etl --json summary");
        assert_eq!(
            summary["totals"]["lines"].as_u64(),
            Some(lines),
            "every line read"
        );
        assert_eq!(
            summary["totals"]["rows"].as_u64(),
            truth["totals"]["events"].as_u64(),
            "rows match the ground truth"
        );
        println!(
            "run {}: etl    {:>7.2} s  {:>6} MiB peak RSS",
            run + 1,
            m.wall.as_secs_f64(),
            m.max_rss_kib / 1024
        );
        ours.push(m);
        for (kind, runs) in &mut floors {
            let mut cmd = Command::new(&me);
            cmd.env(FLOOR_ENV, *kind)
                .arg(lake_dir.join("raw"))
                .arg(args.jobs.to_string());
            let f = run_measured(cmd);
            let read: u64 = String::from_utf8_lossy(&f.stdout).trim().parse().unwrap();
            assert_eq!(read, lines, "the floor reads every line");
            println!(
                "run {}: floor  {:>7.2} s  {:>6} MiB peak RSS  (gunzip + lines{})",
                run + 1,
                f.wall.as_secs_f64(),
                f.max_rss_kib / 1024,
                if *kind == "json" { " + JSON check" } else { "" }
            );
            runs.push(f);
        }
        let mut cmd = Command::new(&me);
        cmd.env(FLOOR_ENV, "write")
            .arg(lake_dir.join("curated"))
            .arg(args.jobs.to_string());
        let f = run_measured(cmd);
        let said = String::from_utf8_lossy(&f.stdout);
        let (rows, seconds) = said.trim().split_once(' ').expect("rows and seconds");
        assert_eq!(
            rows.parse::<u64>().ok(),
            truth["totals"]["events"].as_u64(),
            "the write floor encodes every row"
        );
        let seconds: f64 = seconds.parse().expect("seconds");
        println!(
            "run {}: floor  {seconds:>7.2} s  (encoding the curated files again, in memory)",
            run + 1,
        );
        write_floors.push(seconds);
        for (name, runs) in &mut baselines {
            let out = target.join(format!("{name}-out"));
            aside.take(&out);
            let mut cmd = Command::new("python3");
            cmd.arg(here.join(format!("{name}_compact.py")))
                .arg(&lake_dir)
                .arg(&out);
            let d = run_measured(cmd);
            let said = String::from_utf8_lossy(&d.stdout);
            println!(
                "run {}: {name:<6} {:>7.2} s  {:>6} MiB peak RSS  ({})",
                run + 1,
                d.wall.as_secs_f64(),
                d.max_rss_kib / 1024,
                said.trim()
            );
            runs.push(d);
        }
    }
    reset(&lake_dir, &aside);
    drop(aside);

    let wall = median(ours.iter().map(|m| m.wall.as_secs_f64()).collect());
    let rss = ours.iter().map(|m| m.max_rss_kib).max().unwrap_or(0);
    println!(
        "\netl backfill: median {wall:.2} s, {:.0} lines/s, {:.0} MB/s raw (uncompressed), peak RSS {} MiB",
        lines as f64 / wall,
        raw_bytes as f64 / 1e6 / wall,
        rss / 1024
    );
    for (kind, runs) in &floors {
        let wall = median(runs.iter().map(|m| m.wall.as_secs_f64()).collect());
        let ratio = median(
            ours.iter()
                .zip(runs)
                .map(|(a, b)| a.wall.as_secs_f64() / b.wall.as_secs_f64())
                .collect(),
        );
        println!(
            "floor ({}): median {wall:.2} s; etl takes {ratio:.2}x the floor (median of pairs)",
            if *kind == "json" {
                "gunzip + lines + JSON check"
            } else {
                "gunzip + lines"
            }
        );
    }
    let json = &floors
        .iter()
        .find(|(k, _)| *k == "json")
        .expect("json floor")
        .1;
    let ratio = median(
        ours.iter()
            .zip(json.iter().zip(&write_floors))
            .map(|(a, (j, w))| a.wall.as_secs_f64() / (j.wall.as_secs_f64() + w))
            .collect(),
    );
    println!(
        "floor (encoding the curated files): median {:.2} s; etl takes {ratio:.2}x the JSON floor plus this one (median of runs)",
        median(write_floors.clone())
    );
    for (name, runs) in &baselines {
        let wall = median(runs.iter().map(|m| m.wall.as_secs_f64()).collect());
        let ratio = median(
            ours.iter()
                .zip(runs)
                .map(|(a, b)| b.wall.as_secs_f64() / a.wall.as_secs_f64())
                .collect(),
        );
        let rss = runs.iter().map(|m| m.max_rss_kib).max().unwrap_or(0);
        println!(
            "{name:<12}  median {wall:.2} s, {:.0} lines/s, peak RSS {} MiB",
            lines as f64 / wall,
            rss / 1024
        );
        println!("throughput ratio etl/{name} (median of pairs): {ratio:.2}x");
    }
}

/// Decompresses every raw object under `raw` on `threads` threads and counts its lines (checking
/// each as JSON when `json`), keeping nothing: the least any compaction of these objects costs.
fn floor(raw: &Path, threads: usize, json: bool) -> u64 {
    use std::io::Read;
    use std::sync::atomic::{AtomicU64, Ordering};
    let files = walk(raw);
    assert!(!files.is_empty(), "no raw object under {}", raw.display());
    let lines = AtomicU64::new(0);
    share_out(&files, threads, Vec::new, |text, path| {
        let data = std::fs::read(path).unwrap();
        // Decompressed as the job does: whole where it can be, else streamed (a corrupt object
        // then counts the lines before its break, as the job does).
        let size = eventlake_compaction::gunzip::gunzip_whole(&data, text).unwrap_or_else(|| {
            text.clear();
            let _ = flate2::read::MultiGzDecoder::new(&data[..]).read_to_end(text);
            text.len()
        });
        let text = &text[..size];
        let mut n = 0;
        for line in text.split(|b| *b == b'\n') {
            if json {
                std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok());
            }
            n += 1;
        }
        // A final newline does not start another line.
        if text.is_empty() || text.last() == Some(&b'\n') {
            n -= 1;
        }
        lines.fetch_add(n, Ordering::Relaxed);
    });
    lines.into_inner()
}

/// Hands each of `items` to `work` on one of `threads` threads, the next item to the first
/// thread free; each thread's `work` gets state of its own, made by `init`.
fn share_out<T: Sync, S>(
    items: &[T],
    threads: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &T) + Sync,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut state = init();
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    work(&mut state, item);
                }
            });
        }
    });
}

/// Decodes every curated data file under `curated` (not timed), then encodes each file's rows
/// again into memory with the job's writer settings, the files shared out among `threads`
/// threads: the rows encoded and the seconds the encoding took.
fn write_floor(curated: &Path, threads: usize) -> (u64, f64) {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let files: Vec<PathBuf> = walk(curated)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("part-") && n.ends_with(".parquet"))
        })
        .collect();
    assert!(
        !files.is_empty(),
        "no data file under {}",
        curated.display()
    );
    let decoded: Vec<Vec<arrow::array::RecordBatch>> = files
        .iter()
        .map(|p| {
            let data = bytes::Bytes::from(std::fs::read(p).unwrap());
            ParquetRecordBatchReaderBuilder::try_new(data)
                .unwrap()
                .with_batch_size(64 * 1024)
                .build()
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        })
        .collect();
    let rows = decoded.iter().flatten().map(|b| b.num_rows() as u64).sum();
    // The job writes a version of few rows with other settings than a large one (see
    // `SMALL_FILE_ROWS`): both are made here, and each file takes the ones for its rows.
    let opts = eventlake_compaction::compact::CompactOptions::default();
    let small = eventlake_compaction::compact::SMALL_FILE_ROWS;
    let props_small =
        eventlake_compaction::compact::writer_properties(&opts, small.saturating_sub(1)).unwrap();
    let props_large = eventlake_compaction::compact::writer_properties(&opts, small).unwrap();
    let started = Instant::now();
    share_out(
        &decoded,
        threads,
        || (),
        |_, batches| {
            let Some(first) = batches.first() else {
                return;
            };
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            let props = if rows < small {
                &props_small
            } else {
                &props_large
            };
            let mut w =
                ArrowWriter::try_new(Vec::new(), first.schema(), Some(props.clone())).unwrap();
            for b in batches {
                w.write(b).unwrap();
            }
            std::hint::black_box(w.into_inner().unwrap().len());
        },
    );
    (rows, started.elapsed().as_secs_f64())
}

/// Empties the curated zone, quarantine and catalog, keeping the raw zone.
fn reset(lake: &Path, aside: &SetAside) {
    for d in ["curated", "quarantine", "_catalog"] {
        aside.take(&lake.join(d));
    }
}

/// A folder beside the lakes that what runs wrote is moved into, deleted when this is dropped.
struct SetAside {
    dir: PathBuf,
    taken: std::cell::Cell<usize>,
}

impl SetAside {
    fn new(beside: &Path) -> Self {
        let dir = beside.join(format!(".set-aside-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder to set runs' output aside in");
        Self {
            dir,
            taken: std::cell::Cell::new(0),
        }
    }

    /// Moves `path`, if it exists, out of the way (a rename: nothing is freed yet).
    fn take(&self, path: &Path) {
        if !path.exists() {
            return;
        }
        let n = self.taken.get();
        self.taken.set(n + 1);
        std::fs::rename(path, self.dir.join(n.to_string()))
            .unwrap_or_else(|e| panic!("setting {} aside: {e}", path.display()));
    }
}

impl Drop for SetAside {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
