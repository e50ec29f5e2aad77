//! The `etl` command.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use eventlake_contract::{PartitionDate, TeamName};

use crate::backfill::{self, Progress, Status, Summary};
use crate::catalog::{Catalog, GlueCatalog, GlueTarget, LocalCatalog, ObjectCatalog};
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
    /// The lake root: a folder or s3://bucket/prefix holding raw/, curated/, quarantine/ (and
    /// the lake catalog).
    #[arg(long, global = true, env = "EVENTLAKE_LAKE", default_value = "./lake")]
    pub lake: String,

    /// Which catalog says what readers see: `lake` keeps it inside the lake (`_catalog/`), `glue`
    /// is the AWS Glue Data Catalog (what Athena reads; needs an s3:// lake).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "EVENTLAKE_CATALOG",
        default_value = "lake"
    )]
    pub catalog: CatalogKind,

    /// Glue database of the table (created when absent).
    #[arg(
        long,
        global = true,
        env = "EVENTLAKE_GLUE_DATABASE",
        default_value = "eventlake"
    )]
    pub glue_database: String,

    /// Glue table name (created when absent).
    #[arg(
        long,
        global = true,
        env = "EVENTLAKE_GLUE_TABLE",
        default_value = "events"
    )]
    pub glue_table: String,

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CatalogKind {
    Lake,
    Glue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    Local,
    Athena,
}

/// Where Athena runs queries.
#[derive(Debug, Clone, Args)]
pub struct AthenaArgs {
    /// Athena workgroup.
    #[arg(long, env = "EVENTLAKE_ATHENA_WORKGROUP", default_value = "primary")]
    pub athena_workgroup: String,
    /// s3:// location for results, when the workgroup does not enforce one.
    #[arg(long, env = "EVENTLAKE_ATHENA_OUTPUT")]
    pub athena_output: Option<String>,
    /// Stop waiting for (and stop) a query after this long.
    #[arg(long, default_value = "30m")]
    pub athena_timeout: String,
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
    /// Inspect or rebuild the catalog.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Run saved queries N times and check each P95 latency against its budget.
    #[command(name = "check-p95")]
    CheckP95(CheckP95Args),
    /// Run one step of the scheduled job from its JSON payload (plan, compact, check_p95) and
    /// print the JSON result: the Fargate task's entry point. Exit code 75 when a retry can help,
    /// 2 when not.
    Task {
        /// The state machine's payload, e.g. '{"action":"compact","team":"checkout","dt":"2026-11-25"}'.
        #[arg(long)]
        payload: String,
    },
    /// Serve the same payloads as an AWS Lambda function (errors typed Retryable / NonRetryable).
    Lambda,
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
    /// Raw objects read at once within a partition (default 8 on a folder, 64 on S3, where each
    /// read waits mostly on the network).
    #[arg(long)]
    pub read_concurrency: Option<usize>,
}

impl TuningArgs {
    fn options(&self, on_s3: bool) -> Result<CompactOptions> {
        let read_concurrency = self
            .read_concurrency
            .unwrap_or_else(|| CompactOptions::default_read_concurrency(on_s3));
        if self.target_file_mb == 0 || self.row_group_rows == 0 || read_concurrency == 0 {
            return Err(Error::InvalidArgument(
                "--target-file-mb, --row-group-rows and --read-concurrency must be positive".into(),
            ));
        }
        Ok(CompactOptions {
            read_concurrency,
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
    /// Where the SQL runs: `local` (DataFusion over the committed Parquet) or `athena`.
    #[arg(long, value_enum, default_value = "local")]
    pub engine: EngineKind,
    /// A saved query's parameter, `name=value` (repeatable).
    #[arg(long = "param", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    #[command(flatten)]
    pub athena: AthenaArgs,
}

#[derive(Debug, Args)]
pub struct CheckP95Args {
    /// Saved query files or folders of them.
    #[arg(default_value = "sql")]
    pub queries: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "local")]
    pub engine: EngineKind,
    /// Timed runs per query.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Untimed runs of each query first (default 1 on the local engine, to keep a process's
    /// start-up out of the figures; 0 on Athena, where every run is billed).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// One budget for every query (90s, 2m), instead of each file's own.
    #[arg(long)]
    pub budget: Option<String>,
    /// A parameter for the queries that declare it, `name=value` (repeatable).
    #[arg(long = "param", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the latency chart (SVG) here.
    #[arg(long, default_value = "p95.svg")]
    pub chart: PathBuf,
    #[command(flatten)]
    pub athena: AthenaArgs,
}

fn parse_param(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("{s:?}: write name=value"))
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
    /// Point every partition at the newest complete version found in the lake (from the
    /// manifests), for a new or wiped catalog. No crawler or MSCK REPAIR needed.
    Sync {
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // The Lambda runtime starts `bootstrap` with no arguments: serve the job's payloads then.
    let cli =
        if std::env::args_os().len() == 1 && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
            Cli::parse_from(["etl", "lambda"])
        } else {
            Cli::parse()
        };
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

/// What a command works on: the lake, its catalog, and the AWS configuration when any part
/// lives on AWS.
pub struct Context {
    pub lake: Lake,
    pub catalog: Arc<dyn Catalog>,
    pub sdk: Option<aws_config::SdkConfig>,
}

/// Where the lake and catalog are; the part of [`Cli`] every command shares.
#[derive(Debug, Clone)]
pub struct Target {
    pub lake: String,
    pub catalog: CatalogKind,
    pub glue: GlueTarget,
}

impl Cli {
    pub fn target(&self) -> Target {
        Target {
            lake: self.lake.clone(),
            catalog: self.catalog,
            glue: GlueTarget {
                database: self.glue_database.clone(),
                table: self.glue_table.clone(),
            },
        }
    }
}

/// Opens the lake and its catalog. The AWS configuration is loaded once, when the lake is in S3,
/// the catalog is Glue or `need_aws` is set, and shared by everything that talks to AWS.
pub async fn open(t: &Target, create: bool, need_aws: bool) -> Result<Context> {
    let on_s3 = t.lake.starts_with("s3://");
    let sdk = if on_s3 || t.catalog == CatalogKind::Glue || need_aws {
        Some(crate::aws::sdk_config().await)
    } else {
        None
    };
    let lake = match &sdk {
        Some(sdk) => Lake::open_with_sdk(&t.lake, create, sdk)?,
        None => Lake::open(&t.lake, create)?,
    };
    lake.check().await?;
    let catalog: Arc<dyn Catalog> = match t.catalog {
        CatalogKind::Lake => match lake.local_dir() {
            Some(dir) => Arc::new(LocalCatalog::new(dir)),
            None => Arc::new(ObjectCatalog::new(&lake)),
        },
        CatalogKind::Glue => {
            if !lake.is_s3() {
                return Err(Error::InvalidArgument(format!(
                    "--catalog glue needs an s3:// lake (Athena reads the partitions' locations); {lake:?} is a folder"
                )));
            }
            Arc::new(GlueCatalog::new(
                sdk.as_ref().expect("loaded for glue"),
                t.glue.clone(),
                &lake,
            ))
        }
    };
    Ok(Context { lake, catalog, sdk })
}

pub(crate) fn athena_engine(
    ctx: &Context,
    t: &Target,
    a: &AthenaArgs,
) -> Result<crate::athena::Athena> {
    let timeout = crate::gc::parse_duration(&a.athena_timeout)?;
    Ok(crate::athena::Athena::new(
        ctx.sdk.as_ref().expect("loaded for athena"),
        crate::athena::AthenaOptions {
            workgroup: a.athena_workgroup.clone(),
            database: t.glue.database.clone(),
            output: a.athena_output.clone(),
            timeout,
        },
    ))
}

/// The SQL of `etl query`: a saved query (a file with a `-- name:` header) rendered with its
/// parameters, or any other text as it is.
fn query_text(source: &QuerySource, params: &BTreeMap<String, String>) -> Result<String> {
    match (&source.sql, &source.file) {
        (Some(s), _) => Ok(s.clone()),
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Error::io("cannot read SQL file", f.display(), e))?;
            if text.trim_start().starts_with("-- name:") {
                crate::saved::load(f)?.render(params)
            } else {
                Ok(text)
            }
        }
        (None, None) => unreachable!("clap requires one"),
    }
}

/// Runs a parsed command; the exit code says whether every part of it succeeded.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let target = cli.target();
    match cli.command {
        Command::Generate(a) => {
            let lake = open(&target, true, false).await?.lake;
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
            run_jobs(&target, selection, 1, &a.run).await
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
            run_jobs(&target, selection, a.jobs, &a.run).await
        }
        Command::Query(a) => {
            let params: BTreeMap<String, String> = a.params.iter().cloned().collect();
            let sql = query_text(&a.source, &params)?;
            let athena = a.engine == EngineKind::Athena;
            let ctx = open(&target, false, athena).await?;
            let (schema, batches) = if athena {
                let r = athena_engine(&ctx, &target, &a.athena)?.run(&sql).await?;
                eprintln!(
                    "athena query {}: queued {} ms, engine {} ms, total {} ms, {} scanned, {} rows",
                    r.query_execution_id,
                    r.queue_ms,
                    r.engine_ms,
                    r.total_ms,
                    mib(r.data_scanned_bytes.max(0) as u64),
                    r.rows.len()
                );
                r.to_batch()?
            } else {
                let session = session(&ctx.lake, ctx.catalog.as_ref()).await?;
                run_sql(&session, &sql).await?
            };
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(render(&schema, &batches, a.format)?.as_bytes());
            Ok(ExitCode::SUCCESS)
        }
        Command::Task { payload } => {
            let value: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| Error::InvalidArgument(format!("--payload is not JSON: {e}")))?;
            match crate::task::handle(value, &target).await {
                Ok(v) => {
                    println!("{v}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!(
                        "{}",
                        serde_json::json!({"error_type": e.error_type, "message": e.message})
                    );
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(if e.error_type == "Retryable" {
                        75
                    } else {
                        2
                    }))
                }
            }
        }
        Command::Lambda => {
            crate::task::serve_lambda(target).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckP95(a) => {
            if a.runs == 0 {
                return Err(Error::InvalidArgument("--runs must be at least 1".into()));
            }
            let budget = a
                .budget
                .as_deref()
                .map(crate::gc::parse_duration)
                .transpose()?;
            let params: BTreeMap<String, String> = a.params.iter().cloned().collect();
            // Every file is read and checked before anything runs.
            let queries = crate::saved::load_all(&a.queries)?;
            for q in &queries {
                q.render(&params)?;
            }
            let athena = a.engine == EngineKind::Athena;
            let ctx = open(&target, false, athena).await?;
            let engine = if athena {
                crate::p95::Engine::Athena(athena_engine(&ctx, &target, &a.athena)?)
            } else {
                crate::p95::Engine::Local(session(&ctx.lake, ctx.catalog.as_ref()).await?)
            };
            let warmup = a.warmup.unwrap_or(if athena { 0 } else { 1 });
            let report =
                crate::p95::check(&engine, &queries, &params, (warmup, a.runs), budget).await?;
            std::fs::write(&a.chart, crate::p95::chart_svg(&report))
                .map_err(|e| Error::io("cannot write chart", a.chart.display(), e))?;
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialises")
                );
            } else {
                print!("{}", crate::p95::format_report(&report));
            }
            eprintln!("chart: {}", a.chart.display());
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Gc(a) => {
            let grace = crate::gc::parse_duration(&a.grace)?;
            let ctx = open(&target, false, false).await?;
            let report = crate::gc::gc(&ctx.lake, ctx.catalog.as_ref(), grace, a.dry_run).await?;
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
        Command::Catalog(CatalogCommand::Sync { dry_run, json }) => {
            let ctx = open(&target, false, false).await?;
            let report = crate::sync::sync(&ctx.lake, ctx.catalog.as_ref(), dry_run).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialises")
                );
            } else {
                let verb = if dry_run {
                    "would register"
                } else {
                    "registered"
                };
                for r in &report.registered {
                    println!("{verb} {r}");
                }
                for r in &report.incomplete {
                    println!("skipped incomplete version {r}");
                }
                println!(
                    "{verb} {} partitions; {} already current",
                    report.registered.len(),
                    report.unchanged
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Catalog(CatalogCommand::List { json }) => {
            let ctx = open(&target, false, false).await?;
            let entries = ctx.catalog.list().await?;
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
    target: &Target,
    selection: Selection,
    jobs: usize,
    args: &RunArgs,
) -> Result<ExitCode> {
    let Context { lake, catalog, .. } = open(target, false, false).await?;
    let opts = args.tuning.options(lake.is_s3())?;
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
