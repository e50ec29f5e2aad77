//! `bus`: the event bus on a laptop or a server: the fan-out of the ledger's stream, and a team's
//! consumer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use eventlake_bus::Subscriptions;
use eventlake_bus::consume::{Consumer, SeenIds};
use eventlake_bus::deliver::SqsQueues;
use eventlake_bus::stream::{FanOut, StreamPoller};
use eventlake_contract::TeamName;

#[derive(Parser)]
#[command(
    name = "bus",
    version,
    about = "eventlake's event bus: fan-out and team consumers"
)]
struct Cli {
    /// The receiving teams' queues are `<prefix><team>.fifo`.
    #[arg(
        long,
        global = true,
        env = "EVENTLAKE_BUS_QUEUE_PREFIX",
        default_value = "eventlake-"
    )]
    queue_prefix: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates, where they are missing, the ledger table (on demand, with a stream of new images)
    /// and a FIFO queue for every receiving team: for a laptop's stand-ins or a sandbox account
    /// (Terraform builds them on AWS).
    Init {
        #[arg(long, env = "EVENTLAKE_LEDGER_TABLE")]
        table: String,
        #[arg(
            long,
            env = "EVENTLAKE_SUBSCRIPTIONS",
            default_value = "subscriptions.json"
        )]
        subscriptions: PathBuf,
    },
    /// Reads the ledger's stream and sends every committed batch's events to the teams that
    /// subscribe to them (where no Lambda reads the stream).
    Fanout {
        /// The ledger table (its stream of new images is read).
        #[arg(long, env = "EVENTLAKE_LEDGER_TABLE")]
        table: String,
        /// The lake the raw objects are in: a folder or s3://bucket[/prefix].
        #[arg(long, env = "EVENTLAKE_LAKE", default_value = "./lake")]
        lake: String,
        /// The subscriptions document.
        #[arg(
            long,
            env = "EVENTLAKE_SUBSCRIPTIONS",
            default_value = "subscriptions.json"
        )]
        subscriptions: PathBuf,
        /// Stop after the stream has been quiet this long (run forever when not given).
        #[arg(long, value_parser = eventlake_contract::duration::parse)]
        idle: Option<Duration>,
    },
    /// Prints a team's events from its queue as NDJSON, each once.
    Consume {
        #[arg(long)]
        team: String,
        /// Remembers the ids handed over, so a redelivered event is dropped after a restart too.
        #[arg(long)]
        seen: Option<PathBuf>,
        /// Stop after this many events.
        #[arg(long)]
        max_events: Option<usize>,
        /// Stop after the queue has been empty this long (run forever when not given).
        #[arg(long, value_parser = eventlake_contract::duration::parse)]
        idle: Option<Duration>,
    },
}

async fn queue_url(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
    team: &TeamName,
) -> Result<String, String> {
    let name = format!("{prefix}{team}.fifo");
    aws_sdk_sqs::Client::new(sdk)
        .get_queue_url()
        .queue_name(&name)
        .send()
        .await
        .map_err(|e| {
            format!(
                "queue {name}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(&e)
            )
        })?
        .queue_url
        .ok_or_else(|| format!("queue {name}: no URL"))
}

async fn run(cli: Cli) -> Result<(), String> {
    let sdk = eventlake_store::sdk_config().await;
    match cli.command {
        Command::Init {
            table,
            subscriptions,
        } => {
            let subs = Subscriptions::load(&subscriptions).map_err(|e| e.to_string())?;
            let created = eventlake_ingest::ledger::create_table(&sdk, &table)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "table {table}{}",
                if created { "" } else { " (already there)" }
            );
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let mut made = std::collections::BTreeSet::new();
            for team in subs.rules().iter().map(|r| &r.team) {
                if made.insert(team.clone()) {
                    let name = format!("{}{team}.fifo", cli.queue_prefix);
                    sqs.create_queue()
                        .queue_name(&name)
                        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
                        .send()
                        .await
                        .map_err(|e| {
                            format!(
                                "queue {name}: {}",
                                aws_sdk_sqs::error::DisplayErrorContext(&e)
                            )
                        })?;
                    eprintln!("queue {name}");
                }
            }
            Ok(())
        }
        Command::Fanout {
            table,
            lake,
            subscriptions,
            idle,
        } => {
            let subs = Arc::new(Subscriptions::load(&subscriptions).map_err(|e| e.to_string())?);
            // Every team that has a rule receives into its own queue; all must exist.
            let mut urls = HashMap::new();
            for team in subs.rules().iter().map(|r| &r.team) {
                if !urls.contains_key(team) {
                    urls.insert(
                        team.clone(),
                        queue_url(&sdk, &cli.queue_prefix, team).await?,
                    );
                }
            }
            let lake =
                eventlake_store::open_with_sdk(&lake, false, &sdk).map_err(|e| e.to_string())?;
            let fanout = FanOut::new(lake, subs, Arc::new(SqsQueues::new(&sdk, urls)));
            let mut poller = StreamPoller::for_table(&sdk, &table)
                .await
                .map_err(|e| e.to_string())?;
            let mut quiet_since = Instant::now();
            loop {
                let records = poller.poll().await.map_err(|e| e.to_string())?;
                if records.is_empty() {
                    if idle.is_some_and(|d| quiet_since.elapsed() >= d) {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                quiet_since = Instant::now();
                let handled = fanout.records(&records).await.map_err(|e| e.to_string())?;
                eprintln!(
                    "{} batches, {} messages delivered{}",
                    handled.batches,
                    handled.messages,
                    if handled.kept.is_empty() {
                        String::new()
                    } else {
                        format!("; {} records kept under _bus/failed/", handled.kept.len())
                    }
                );
            }
        }
        Command::Consume {
            team,
            seen,
            max_events,
            idle,
        } => {
            let team = TeamName::new(&team).map_err(|e| e.to_string())?;
            let url = queue_url(&sdk, &cli.queue_prefix, &team).await?;
            let seen = match seen {
                Some(p) => SeenIds::open(&p).map_err(|e| e.to_string())?,
                None => SeenIds::in_memory(),
            };
            let mut consumer = Consumer::new(&sdk, &url, seen);
            let mut out = std::io::stdout().lock();
            let (mut events, mut quiet_since) = (0, Instant::now());
            while max_events.is_none_or(|m| events < m) {
                let r = consumer
                    .receive(&mut out)
                    .await
                    .map_err(|e| e.to_string())?;
                events += r.events;
                if r.events + r.repeats > 0 {
                    quiet_since = Instant::now();
                } else if idle.is_some_and(|d| quiet_since.elapsed() >= d) {
                    break;
                }
            }
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BUS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bus: {e}");
            ExitCode::FAILURE
        }
    }
}
