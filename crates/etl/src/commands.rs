//! Running a parsed command: open the lake and catalog once, hand the work to the library
//! parts, print what they report.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use eventlake_catalog::{Context, Target, open};
use eventlake_compaction::backfill::{self, Progress, Quiet};
use eventlake_compaction::generate::{GenerateOptions, generate};
use eventlake_compaction::plan::{Selection, plan};
use eventlake_query::{render, session_named, write_sql};

use crate::args::{CatalogCommand, Cli, Command, EngineKind, LogFormat, QuerySource, RunArgs};
use crate::error::{Error, Result};
use crate::output::{format_plan, format_summary, format_truth, mib};
use crate::task::TaskContext;

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
        .on_thread_park(collect_when_idle)
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

/// Runs each time a worker thread of the runtime goes idle: the allocator takes back what other
/// threads freed of this thread's memory, and returns to the system what has stayed free past
/// its delay. A compaction's task moves between worker threads, and each thread keeps the memory
/// it handed out until it next allocates, so without this a backfill's peak memory grew with the
/// number of worker threads. Nothing still in use or freed within the delay is returned, so
/// nothing is faulted in again.
#[allow(unsafe_code)]
fn collect_when_idle() {
    // SAFETY: mimalloc's collection of the calling thread's heap takes no pointer and may run on
    // any thread at any time; it is a no-op for memory mimalloc did not hand out.
    unsafe { libmimalloc_sys::mi_collect(false) }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ETL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, plain text for a file, a pipe or CloudWatch.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Opens the lake and catalog of `target`, loading the AWS configuration when needed.
async fn open_target(target: &Target, create: bool, need_aws: bool) -> Result<Context> {
    Ok(open(target, create, target.aws_config(need_aws).await).await?)
}

/// The SQL of `etl query`: a saved query (a file with a `-- name:` header) rendered with its
/// parameters, or any other text as it is.
fn query_text(source: &QuerySource, params: &BTreeMap<String, String>) -> Result<String> {
    match (source.sql.as_ref().or(source.text.as_ref()), &source.file) {
        (Some(s), _) => Ok(s.clone()),
        (None, Some(f)) if f.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| Error::io("cannot read SQL from", "standard input", e))?;
            Ok(text)
        }
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Error::io("cannot read SQL file", f.display(), e))?;
            if text.trim_start().starts_with("-- name:") {
                Ok(eventlake_query::saved::load(f)?.render(params)?)
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
            let lake = open_target(&target, true, false).await?.lake;
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
                cross_day_rate: a.cross_day_rate,
                first_team_share: a.first_team_share,
                extra_properties: a.extra_properties,
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
        Command::Replay(a) => {
            let Context { lake, catalog, .. } = open_target(&target, false, false).await?;
            let opts = a.run.tuning.options(lake.is_s3())?;
            let partition = eventlake_contract::PartitionKey {
                team: a.team,
                dt: a.date,
            };
            let report = eventlake_compaction::replay::replay(
                &lake,
                catalog,
                &partition,
                &opts,
                a.run.dedupe_window,
                a.run.dry_run,
            )
            .await?;
            if a.run.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialises")
                );
            } else {
                println!(
                    "{}: {} quarantined lines, {} pass today's validation",
                    report.partition,
                    report.quarantined,
                    report.replayable.len()
                );
                for r in &report.replayable {
                    println!("  {}:{} (was {})", r.source, r.line, r.reason);
                }
                if !report.missing_objects.is_empty() {
                    println!(
                        "  raw objects gone (their lines cannot be replayed): {}",
                        report.missing_objects.join(", ")
                    );
                }
                match &report.run {
                    Some(s) => print!("{}", format_summary(s)),
                    None if a.run.dry_run => println!("dry run: nothing written"),
                    None => println!("nothing to replay"),
                }
            }
            Ok(match &report.run {
                Some(s) if !s.ok() => ExitCode::FAILURE,
                _ => ExitCode::SUCCESS,
            })
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
            if a.remote {
                let (Some(from), Some(to)) = (a.from, a.to) else {
                    return Err(Error::InvalidArgument(
                        "--remote needs --from and --to: the workflow plans a range of days".into(),
                    ));
                };
                let Some(state_machine) = a.state_machine.as_deref() else {
                    return Err(Error::InvalidArgument(
                        "--remote needs --state-machine <ARN> (or EVENTLAKE_STATE_MACHINE_ARN): Terraform's output state_machine_arn".into(),
                    ));
                };
                if a.run.force || a.run.dry_run {
                    return Err(Error::InvalidArgument(
                        "--force and --dry-run are local options; --remote compacts what the workflow plans".into(),
                    ));
                }
                let sdk = eventlake_store::sdk_config().await;
                return crate::remote::run(
                    &sdk,
                    crate::remote::RemoteBackfill {
                        state_machine,
                        from,
                        to,
                        teams: &a.teams,
                        json: a.run.json,
                        every: std::time::Duration::from_secs(a.poll_seconds.max(1)),
                    },
                )
                .await;
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
            let ctx = open_target(&target, false, athena).await?;
            if !athena {
                let session =
                    session_named(&ctx.lake, ctx.catalog.as_ref(), &ctx.target.glue).await?;
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                return match (
                    write_sql(&session, &sql, a.format.into(), &mut out).await,
                    &a.source.file,
                ) {
                    // Say which file the line and column are in.
                    (Err(e), Some(f)) if e.refused_at().is_some() => {
                        let (line, column, what) = e.refused_at().expect("checked above");
                        Err(Error::InvalidArgument(format!(
                            "{}:{line}:{column}: {what}",
                            f.display()
                        )))
                    }
                    (r, _) => r.map(|_| ExitCode::SUCCESS).map_err(Error::from),
                };
            }
            let (schema, batches) = {
                let r = a.athena.engine(&ctx)?.run(&sql).await?;
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
            };
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(render(&schema, &batches, a.format.into())?.as_bytes());
            Ok(ExitCode::SUCCESS)
        }
        Command::Task { payload } => {
            let value: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| Error::InvalidArgument(format!("--payload is not JSON: {e}")))?;
            match crate::task::handle(value, &TaskContext::new(target)).await {
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
            crate::task::serve_lambda(TaskContext::new(target)).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckP95(a) => {
            if a.runs == 0 {
                return Err(Error::InvalidArgument("--runs must be at least 1".into()));
            }
            let budget = a
                .budget
                .as_deref()
                .map(eventlake_contract::duration::parse)
                .transpose()
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            let params: BTreeMap<String, String> = a.params.iter().cloned().collect();
            // Every file is read and checked before anything runs.
            let queries = eventlake_query::saved::load_all(&a.queries)?;
            for q in &queries {
                q.render(&params)?;
            }
            let athena = a.engine == EngineKind::Athena;
            let ctx = open_target(&target, false, athena).await?;
            let engine = if athena {
                eventlake_query::p95::Engine::Athena(a.athena.engine(&ctx)?)
            } else {
                eventlake_query::p95::Engine::Local(
                    session_named(&ctx.lake, ctx.catalog.as_ref(), &ctx.target.glue).await?,
                )
            };
            let warmup = a.warmup.unwrap_or(if athena { 0 } else { 1 });
            let report =
                eventlake_query::p95::check(&engine, &queries, &params, (warmup, a.runs), budget)
                    .await?;
            std::fs::write(&a.chart, eventlake_query::p95::chart_svg(&report))
                .map_err(|e| Error::io("cannot write chart", a.chart.display(), e))?;
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialises")
                );
            } else {
                print!("{}", eventlake_query::p95::format_report(&report));
            }
            eprintln!("chart: {}", a.chart.display());
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Gc(a) => {
            let grace = eventlake_contract::duration::parse(&a.grace)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            let ctx = open_target(&target, false, false).await?;
            let report =
                eventlake_compaction::gc::gc(&ctx.lake, ctx.catalog.as_ref(), grace, a.dry_run)
                    .await?;
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
            let ctx = open_target(&target, false, false).await?;
            let report =
                eventlake_compaction::sync::sync(&ctx.lake, ctx.catalog.as_ref(), dry_run).await?;
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
            let ctx = open_target(&target, false, false).await?;
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
    let Context { lake, catalog, .. } = open_target(target, false, false).await?;
    let opts = args.tuning.options(lake.is_s3())?;
    let plan = plan(
        &lake,
        catalog.as_ref(),
        &selection,
        args.force,
        args.dedupe_window,
    )
    .await?;
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
    let progress: Box<dyn Progress> = if args.json {
        Box::new(Quiet)
    } else {
        crate::progress::auto(plan.partitions.len() as u64)
    };
    let summary = backfill::run(&lake, catalog, plan, jobs, &opts, progress.as_ref()).await;
    if crate::metrics::enabled(args.metrics.as_deref()) {
        crate::metrics::emit(&crate::metrics::documents(&summary, "backfill"));
    }
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
