//! The `etl` command.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use eventlake_contract::{PartitionDate, TeamName};

use crate::backfill::{self, Progress, Status, Summary};
use crate::catalog::{Catalog, LocalCatalog};
use crate::compact::CompactOptions;
use crate::error::{Error, Result};
use crate::generate::{GenerateOptions, Truth, generate};
use crate::lake::Lake;
use crate::plan::{Plan, Selection, plan};
use crate::query::{Format, render, run_sql, session};

#[derive(Debug, Parser)]
#[command(
    name = "etl",
    version,
    about = "eventlake batch jobs: raw event JSON to curated Parquet, and queries over it"
)]
pub struct Cli {
    /// The lake root: a folder holding raw/, curated/, quarantine/ and the catalog.
    #[arg(long, global = true, env = "EVENTLAKE_LAKE", default_value = "./lake")]
    pub lake: String,

    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "EVENTLAKE_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write synthetic raw events (deterministic for a seed) and print the ground truth.
    Generate(GenerateArgs),
    /// Compact one partition (team, date).
    Compact(CompactArgs),
    /// Compact every partition with raw data in a date range.
    Backfill(BackfillArgs),
    /// Run SQL over the committed partitions (table `events`).
    Query(QueryArgs),
    /// Remove versions no catalog entry points to, after a grace period.
    Gc(GcArgs),
    /// Inspect the catalog.
    #[command(subcommand)]
    Catalog(CatalogCommand),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Comma-separated team names.
    #[arg(long, value_delimiter = ',', default_value = "checkout,search,growth")]
    pub teams: Vec<TeamName>,
    /// First day (YYYY-MM-DD).
    #[arg(long, default_value = "2026-11-20")]
    pub start: PartitionDate,
    #[arg(long, default_value_t = 3)]
    pub days: u32,
    /// Lines in all, spread evenly over teams and days.
    #[arg(long, default_value_t = 30_000)]
    pub events: u64,
    /// Lines per raw object.
    #[arg(long, default_value_t = 480)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0.01)]
    pub duplicate_rate: f64,
    /// Share of duplicates whose content differs from the first copy.
    #[arg(long, default_value_t = 0.1)]
    pub conflict_share: f64,
    #[arg(long, default_value_t = 0.001)]
    pub malformed_rate: f64,
    /// Share of events whose event_time is days before their arrival.
    #[arg(long, default_value_t = 0.01)]
    pub late_rate: f64,
    /// Print the ground truth as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Knobs shared by compact and backfill.
#[derive(Debug, Args)]
pub struct TuningArgs {
    /// Start a new Parquet file past this size.
    #[arg(long, default_value_t = 256)]
    pub target_file_mb: u64,
    #[arg(long, default_value_t = 1024 * 1024)]
    pub row_group_rows: usize,
    #[arg(long, default_value_t = 1)]
    pub zstd_level: i32,
    /// Raw objects read at once within a partition.
    #[arg(long, default_value_t = 8)]
    pub read_concurrency: usize,
}

impl TuningArgs {
    fn options(&self) -> Result<CompactOptions> {
        if self.target_file_mb == 0 || self.row_group_rows == 0 || self.read_concurrency == 0 {
            return Err(Error::InvalidArgument(
                "--target-file-mb, --row-group-rows and --read-concurrency must be positive".into(),
            ));
        }
        Ok(CompactOptions {
            read_concurrency: self.read_concurrency,
            target_file_bytes: self.target_file_mb * 1024 * 1024,
            row_group_rows: self.row_group_rows,
            zstd_level: self.zstd_level,
        })
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Rewrite partitions whose raw data did not change.
    #[arg(long)]
    pub force: bool,
    /// Print the plan (partitions, raw objects, bytes) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tuning: TuningArgs,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    #[arg(long)]
    pub team: TeamName,
    #[arg(long)]
    pub date: PartitionDate,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// First day, inclusive (all days with raw data when omitted).
    #[arg(long)]
    pub from: Option<PartitionDate>,
    /// Last day, inclusive.
    #[arg(long)]
    pub to: Option<PartitionDate>,
    /// Only this team (repeatable; all teams when omitted).
    #[arg(long = "team")]
    pub teams: Vec<TeamName>,
    /// Partitions compacted at once.
    #[arg(long, default_value_t = default_jobs())]
    pub jobs: usize,
    #[command(flatten)]
    pub run: RunArgs,
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct QuerySource {
    /// SQL text.
    #[arg(long)]
    pub sql: Option<String>,
    /// A file holding the SQL.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub source: QuerySource,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep unreferenced versions younger than this (90s, 15m, 24h, 7d).
    #[arg(long, default_value = "24h")]
    pub grace: String,
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// List the committed partitions.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ETL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn open(lake: &str, create: bool) -> Result<(Lake, Arc<dyn Catalog>)> {
    let lake = Lake::open(lake, create)?;
    let dir = lake
        .local_dir()
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "--lake {lake:?}: the embedded catalog needs a local lake folder"
            ))
        })?
        .to_path_buf();
    Ok((lake, Arc::new(LocalCatalog::new(&dir))))
}

/// Runs a parsed command; the exit code says whether every part of it succeeded.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Generate(a) => {
            let (lake, _) = open(&cli.lake, true)?;
            let opts = GenerateOptions {
                seed: a.seed,
                teams: a.teams,
                start: a.start,
                days: a.days,
                events: a.events,
                batch_size: a.batch_size,
                duplicate_rate: a.duplicate_rate,
                conflict_share: a.conflict_share,
                malformed_rate: a.malformed_rate,
                late_rate: a.late_rate,
                ..GenerateOptions::default()
            };
            let truth = generate(&lake, &opts).await?;
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&truth).expect("serialises")
                );
            } else {
                print!("{}", format_truth(&truth, &format!("{lake:?}")));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Compact(a) => {
            let selection = Selection {
                teams: vec![a.team],
                from: Some(a.date),
                to: Some(a.date),
            };
            run_jobs(&cli.lake, selection, 1, &a.run).await
        }
        Command::Backfill(a) => {
            if let (Some(f), Some(t)) = (a.from, a.to)
                && f > t
            {
                return Err(Error::InvalidArgument(format!(
                    "--from {f} is after --to {t}"
                )));
            }
            if a.jobs == 0 {
                return Err(Error::InvalidArgument("--jobs must be at least 1".into()));
            }
            let selection = Selection {
                teams: a.teams,
                from: a.from,
                to: a.to,
            };
            run_jobs(&cli.lake, selection, a.jobs, &a.run).await
        }
        Command::Query(a) => {
            let sql = match (a.source.sql, a.source.file) {
                (Some(s), _) => s,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .map_err(|e| Error::io("cannot read SQL file", f.display(), e))?,
                (None, None) => unreachable!("clap requires one"),
            };
            let (lake, catalog) = open(&cli.lake, false)?;
            let ctx = session(&lake, catalog.as_ref()).await?;
            let (schema, batches) = run_sql(&ctx, &sql).await?;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(render(&schema, &batches, a.format)?.as_bytes());
            Ok(ExitCode::SUCCESS)
        }
        Command::Gc(a) => {
            let grace = crate::gc::parse_duration(&a.grace)?;
            let (lake, catalog) = open(&cli.lake, false)?;
            let report = crate::gc::gc(&lake, catalog.as_ref(), grace, a.dry_run).await?;
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialises")
                );
            } else {
                let verb = if a.dry_run { "would remove" } else { "removed" };
                for v in &report.removed {
                    println!("{verb} {v}");
                }
                println!(
                    "{verb} {} versions ({} objects); kept {} live and {} younger than {}",
                    report.removed.len(),
                    report.objects_removed,
                    report.live,
                    report.kept_in_grace,
                    a.grace
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Catalog(CatalogCommand::List { json }) => {
            let (_, catalog) = open(&cli.lake, false)?;
            let entries = catalog.list().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&entries).expect("serialises")
                );
            } else {
                println!("{:<40} {:>10} {:>6}  version", "partition", "rows", "files");
                for e in &entries {
                    println!(
                        "{:<40} {:>10} {:>6}  {}",
                        e.partition.to_string(),
                        e.rows,
                        e.files.len(),
                        e.version
                    );
                }
                println!("{} partitions", entries.len());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run_jobs(
    lake: &str,
    selection: Selection,
    jobs: usize,
    args: &RunArgs,
) -> Result<ExitCode> {
    let opts = args.tuning.options()?;
    let (lake, catalog) = open(lake, false)?;
    let plan = plan(&lake, catalog.as_ref(), &selection, args.force).await?;
    if args.dry_run {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan).expect("serialises")
            );
        } else {
            print!("{}", format_plan(&plan));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if plan.partitions.is_empty() {
        tracing::warn!("no raw data found for the selection under {lake:?}/raw");
    }
    let progress = if args.json {
        Progress::Quiet
    } else {
        Progress::auto(plan.partitions.len() as u64)
    };
    let summary = backfill::run(&lake, catalog, plan, jobs, &opts, &progress).await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("serialises")
        );
    } else {
        print!("{}", format_summary(&summary));
    }
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn format_plan(plan: &Plan) -> String {
    let mut s = format!(
        "{:<40} {:<10} {:>8} {:>12}\n",
        "partition", "action", "objects", "bytes"
    );
    for p in &plan.partitions {
        s += &format!(
            "{:<40} {:<10} {:>8} {:>12}\n",
            p.partition.to_string(),
            format!("{:?}", p.action).to_lowercase(),
            p.objects.len(),
            mib(p.bytes)
        );
    }
    s += &format!(
        "dry run: {} partitions, {} to compact, {} raw objects, {}; nothing written\n",
        plan.partitions.len(),
        plan.to_compact(),
        plan.partitions
            .iter()
            .map(|p| p.objects.len())
            .sum::<usize>(),
        mib(plan.partitions.iter().map(|p| p.bytes).sum())
    );
    s
}

pub fn format_summary(s: &Summary) -> String {
    let mut out = format!(
        "{:<40} {:<15} {:>9} {:>9} {:>6} {:>9} {:>11}\n",
        "partition", "status", "lines", "rows", "dups", "conflicts", "quarantined"
    );
    for r in &s.partitions {
        let key = format!("team={}/dt={}", r.team, r.dt);
        let status = format!("{:?}", r.status).to_lowercase();
        match (&r.counts, r.status) {
            (Some(c), _) => {
                out += &format!(
                    "{key:<40} {status:<15} {:>9} {:>9} {:>6} {:>9} {:>11}\n",
                    c.lines, c.rows, c.duplicates, c.conflicts, c.quarantined
                )
            }
            (None, Status::Failed) => {
                out += &format!(
                    "{key:<40} {status:<15} {}\n",
                    r.error.as_deref().unwrap_or("")
                )
            }
            (None, _) => out += &format!("{key:<40} {status:<15}\n"),
        }
    }
    let t = &s.totals;
    out += &format!(
        "{} partitions: {} committed, {} unchanged, {} failed; {} lines -> {} rows + {} duplicates ({} conflicts) + {} quarantined; {} raw ({} uncompressed) in {:.1} s, {} lines/s\n",
        s.partitions.len(),
        s.committed,
        s.unchanged,
        s.failed.len(),
        t.lines,
        t.rows,
        t.duplicates,
        t.conflicts,
        t.quarantined,
        mib(t.raw_bytes),
        mib(t.raw_uncompressed_bytes),
        s.elapsed_ms as f64 / 1000.0,
        s.lines_per_sec
    );
    if s.committed == 0 && s.failed.is_empty() && !s.partitions.is_empty() {
        out += "nothing to do: every partition is unchanged since its last commit (use --force to rewrite)\n";
    }
    if !s.failed.is_empty() {
        out += &format!("FAILED: {}\n", s.failed.join(", "));
    }
    out
}

pub fn format_truth(t: &Truth, lake: &str) -> String {
    let mut s = format!(
        "{:<40} {:>8} {:>9} {:>9} {:>6} {:>9} {:>9}\n",
        "partition", "objects", "lines", "events", "dups", "conflicts", "malformed"
    );
    for (k, p) in &t.partitions {
        s += &format!(
            "{k:<40} {:>8} {:>9} {:>9} {:>6} {:>9} {:>9}\n",
            p.objects, p.lines, p.events, p.duplicates, p.conflicts, p.malformed
        );
    }
    let x = &t.totals;
    s += &format!(
        "wrote {} lines in {} objects ({} gzip, {} NDJSON) to {lake}/raw: {} distinct events, {} duplicates ({} conflicts), {} malformed, {} late\n",
        x.lines,
        x.objects,
        mib(t.bytes),
        mib(t.uncompressed_bytes),
        x.events,
        x.duplicates,
        x.conflicts,
        x.malformed,
        x.late
    );
    s
}
