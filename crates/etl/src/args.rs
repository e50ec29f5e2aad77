//! The `etl` command line: every flag, its default and its environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use eventlake_catalog::{CatalogKind, Context, GlueTarget, Target};
use eventlake_compaction::compact::CompactOptions;
use eventlake_contract::{PartitionDate, TeamName};
use eventlake_query::Format;
use eventlake_query::athena::{Athena, AthenaOptions};

use crate::error::{Error, Result};

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
    pub catalog: CatalogChoice,

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
pub enum CatalogChoice {
    Lake,
    Glue,
}

impl From<CatalogChoice> for CatalogKind {
    fn from(c: CatalogChoice) -> Self {
        match c {
            CatalogChoice::Lake => CatalogKind::Lake,
            CatalogChoice::Glue => CatalogKind::Glue,
        }
    }
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

impl AthenaArgs {
    /// An Athena client for the lake's Glue database, with these settings and the context's
    /// AWS configuration.
    pub fn engine(&self, ctx: &Context) -> Result<Athena> {
        let timeout = eventlake_contract::duration::parse(&self.athena_timeout)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let sdk = ctx.sdk.as_ref().ok_or_else(|| {
            Error::InvalidArgument("--engine athena needs the AWS configuration".into())
        })?;
        Ok(Athena::new(
            sdk,
            AthenaOptions {
                workgroup: self.athena_workgroup.clone(),
                database: ctx.target.glue.database.clone(),
                output: self.athena_output.clone(),
                timeout,
            },
        ))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Output formats of `etl query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Self {
        match f {
            OutputFormat::Table => Format::Table,
            OutputFormat::Csv => Format::Csv,
            OutputFormat::Json => Format::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write synthetic raw events (deterministic for a seed) and print the ground truth.
    Generate(GenerateArgs),
    /// Compact one partition (team, date).
    Compact(CompactArgs),
    /// Compact every partition with raw data in a date range.
    Backfill(BackfillArgs),
    /// Run a partition's quarantined lines through today's validation; when some now pass,
    /// compact the partition again so they become rows (counted as replayed).
    Replay(CompactArgs),
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
    /// Share of a day's lines that retry, just after midnight, an event of the day before.
    #[arg(long, default_value_t = 0.0005)]
    pub cross_day_rate: f64,
    /// Share of all lines that go to the first team (the others share the rest evenly);
    /// unset, every team gets the same.
    #[arg(long)]
    pub first_team_share: Option<f64>,
    /// Extra properties per event, for wider events.
    #[arg(long, default_value_t = 0)]
    pub extra_properties: u32,
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
    /// End a row group once its encoded size passes this many megabytes (the column writers
    /// hold a row group in memory until it ends).
    #[arg(long, default_value_t = eventlake_compaction::compact::DEFAULT_ROW_GROUP_MB)]
    pub row_group_mb: usize,
    #[arg(long, default_value_t = 1)]
    pub zstd_level: i32,
    /// Raw objects read at once within a partition (default 8 on a folder, 64 on S3, where each
    /// read waits mostly on the network).
    #[arg(long)]
    pub read_concurrency: Option<usize>,
    /// How long a partition's lease lasts unless this run extends it (it does while it works);
    /// after a crash, other runs skip the partition as busy for this long.
    #[arg(long, env = "EVENTLAKE_LEASE_TTL", default_value = "10m", value_parser = eventlake_contract::duration::parse)]
    pub lease_ttl: std::time::Duration,
    /// Read only the raw objects added since a partition's committed version and add their rows
    /// to it, when that gives what a full compaction would (otherwise the partition is compacted
    /// in full, and the log says why).
    #[arg(long, env = "EVENTLAKE_INCREMENTAL")]
    pub incremental: bool,
    /// With --incremental: a partition that would have more files than this is compacted in
    /// full, merging them back.
    #[arg(long, default_value_t = 16)]
    pub max_files: usize,
    /// Megabytes of one partition's rows held in memory; past that, its rows are sorted and
    /// spilled to local disk in runs, merged when the files are written (`--jobs` partitions
    /// are compacted at once, each with this much). A partition whose raw objects are clearly
    /// larger spills in runs of a quarter of this from the start.
    #[arg(long, env = "EVENTLAKE_SPILL_MB", default_value_t = eventlake_compaction::compact::DEFAULT_SPILL_MB)]
    pub spill_mb: usize,
    /// Folder for spilled runs (default: the system's temporary folder, `TMPDIR`).
    #[arg(long, env = "EVENTLAKE_SPILL_DIR")]
    pub spill_dir: Option<std::path::PathBuf>,
}

impl TuningArgs {
    pub fn options(&self, on_s3: bool) -> Result<CompactOptions> {
        let read_concurrency = self
            .read_concurrency
            .unwrap_or_else(|| CompactOptions::default_read_concurrency(on_s3));
        if self.target_file_mb == 0
            || self.row_group_rows == 0
            || self.row_group_mb == 0
            || read_concurrency == 0
            || self.spill_mb == 0
        {
            return Err(Error::InvalidArgument(
                "--target-file-mb, --row-group-rows, --row-group-mb, --read-concurrency and --spill-mb must be positive"
                    .into(),
            ));
        }
        Ok(CompactOptions {
            read_concurrency,
            target_file_bytes: self.target_file_mb * 1024 * 1024,
            row_group_rows: self.row_group_rows,
            row_group_bytes: self.row_group_mb.saturating_mul(1024 * 1024),
            zstd_level: self.zstd_level,
            lease_ttl: self.lease_ttl,
            incremental: self.incremental,
            max_files: self.max_files.max(1),
            replayed: 0,
            spill_bytes: self.spill_mb.saturating_mul(1024 * 1024),
            spill_dir: self.spill_dir.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A row whose event_id was received in an earlier partition of its team at most this long
    /// before is a duplicate of that row (0 turns cross-partition de-duplication off).
    #[arg(long, env = "EVENTLAKE_DEDUPE_WINDOW", default_value = "24h", value_parser = eventlake_contract::duration::parse)]
    pub dedupe_window: std::time::Duration,
    /// Rewrite partitions whose raw data did not change.
    #[arg(long)]
    pub force: bool,
    /// Print the plan (partitions, raw objects, bytes) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write CloudWatch embedded-metric lines (per partition and per run) to stderr: `emf` or
    /// `off`. Default: on when running as a Lambda function or an ECS task, off elsewhere.
    #[arg(long, env = "EVENTLAKE_METRICS", value_parser = ["emf", "off"])]
    pub metrics: Option<String>,
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
    /// Run the backfill on AWS: start the compaction workflow (--state-machine) with this range
    /// and these teams, print each partition as it finishes and exit as a local run would.
    /// Needs --from and --to (at most 366 days per run).
    #[arg(long)]
    pub remote: bool,
    /// ARN of the compaction state machine, for --remote (Terraform output state_machine_arn).
    #[arg(long, env = "EVENTLAKE_STATE_MACHINE_ARN", value_name = "ARN")]
    pub state_machine: Option<String>,
    /// Seconds between two looks at a remote backfill.
    #[arg(long, default_value_t = 5, hide = true)]
    pub poll_seconds: u64,
    #[command(flatten)]
    pub run: RunArgs,
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct QuerySource {
    /// SQL text (`etl query "SELECT …"`, the same as `--sql`).
    #[arg(value_name = "SQL")]
    pub text: Option<String>,
    /// SQL text.
    #[arg(long)]
    pub sql: Option<String>,
    /// A file holding the SQL (`-` reads it from standard input).
    #[arg(long)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub source: QuerySource,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
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

impl Cli {
    /// Where the lake and its catalog are, from the global flags.
    pub fn target(&self) -> Target {
        Target {
            lake: self.lake.clone(),
            catalog: self.catalog.into(),
            glue: GlueTarget {
                database: self.glue_database.clone(),
                table: self.glue_table.clone(),
            },
        }
    }
}
