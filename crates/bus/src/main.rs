//! `bus`: the event bus on a laptop or a server: the fan-out of the ledger's stream, and a team's
//! consumer.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use eventlake_bus::Subscriptions;
use eventlake_bus::consume::{Consumer, SeenIds};
use eventlake_bus::deliver::SqsQueues;
use eventlake_bus::kafka::{
    Bridge, KafkaAuth, KafkaConfig, TopicConsumer, TopicProducer, create_topics,
};
use eventlake_bus::stream::{FanOut, StreamPoller};
use eventlake_contract::TeamName;
use eventlake_ingest::auth::{AuthError, TokenStore};

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
    /// The Kafka brokers (`host:port,…`) of the teams' topics; without them the bus runs on SQS
    /// alone.
    #[arg(long, global = true, env = "EVENTLAKE_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
    /// A team's topic is `<prefix><team>`.
    #[arg(
        long,
        global = true,
        env = "EVENTLAKE_KAFKA_TOPIC_PREFIX",
        default_value = "eventlake."
    )]
    topic_prefix: String,
    /// librdkafka's `security.protocol` for the brokers (`SSL` for a TLS listener).
    #[arg(long, global = true, env = "EVENTLAKE_KAFKA_SECURITY_PROTOCOL")]
    kafka_security_protocol: Option<String>,
    /// `aws-msk-iam` for MSK's IAM access control (signed with the environment's AWS
    /// credentials: `aws configure export-credentials --format env`).
    #[arg(long, global = true, env = "EVENTLAKE_KAFKA_AUTH", value_parser = parse_auth, default_value = "none")]
    kafka_auth: KafkaAuth,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Source {
    Queue,
    Kafka,
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
        /// Partitions of each team's topic (with --kafka-brokers).
        #[arg(long, default_value_t = 3)]
        partitions: i32,
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
    /// Delivers again what the fan-out kept undelivered (`_bus/failed/` in the lake, or the
    /// stream mapping's on-failure destination), removing each record once its batch went out.
    Redrive {
        /// The lake: a folder or s3://bucket[/prefix].
        #[arg(long, env = "EVENTLAKE_LAKE", default_value = "./lake")]
        lake: String,
        #[arg(
            long,
            env = "EVENTLAKE_SUBSCRIPTIONS",
            default_value = "subscriptions.json"
        )]
        subscriptions: PathBuf,
        /// Where the kept records are, under the lake root.
        #[arg(long, default_value = "_bus/failed/")]
        prefix: String,
    },
    /// Moves every receiving team's queue into its Kafka topic (where no Lambda does), deleting
    /// a message only after the broker acknowledged it.
    Bridge {
        #[arg(
            long,
            env = "EVENTLAKE_SUBSCRIPTIONS",
            default_value = "subscriptions.json"
        )]
        subscriptions: PathBuf,
        /// Only this team's queue.
        #[arg(long)]
        team: Option<String>,
        /// How long a message waits for the broker before it is left in the queue for later.
        #[arg(long, default_value = "10s", value_parser = eventlake_contract::duration::parse)]
        delivery_timeout: Duration,
        /// Stop after the queues have been empty this long (run forever when not given).
        #[arg(long, value_parser = eventlake_contract::duration::parse)]
        idle: Option<Duration>,
    },
    /// Prints a team's events as NDJSON, each once: from its queue, or from its Kafka topic.
    Consume {
        #[arg(long)]
        team: String,
        /// Where to read: the team's SQS queue, or its Kafka topic (needs --kafka-brokers).
        #[arg(long, value_enum, default_value_t = Source::Queue)]
        from: Source,
        /// The consumer group on the topic (default: `eventlake-<team>`).
        #[arg(long)]
        group: Option<String>,
        /// How long a stopped member of the group holds its partitions.
        #[arg(long, default_value = "10s", value_parser = eventlake_contract::duration::parse)]
        session_timeout: Duration,
        /// The teams' token hashes (as the local ingest server uses them): when given, the
        /// consumer must present --token, and it must be the team's own.
        #[arg(long, env = "EVENTLAKE_TOKENS")]
        tokens: Option<PathBuf>,
        /// The team's token (with --tokens).
        #[arg(long, env = "EVENTLAKE_TOKEN", hide_env_values = true)]
        token: Option<String>,
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
    let kafka = kafka_config(&cli);
    match cli.command {
        Command::Init {
            table,
            subscriptions,
            partitions,
        } => {
            let subs = Subscriptions::load(&subscriptions).map_err(|e| e.to_string())?;
            let created = eventlake_ingest::ledger::create_table(&sdk, &table)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "table {table}{}",
                if created { "" } else { " (already there)" }
            );
            let teams = receiving_teams(&subs);
            for team in &teams {
                let name = create_queue(&sdk, &cli.queue_prefix, team).await?;
                eprintln!("queue {name} (and its DLQ)");
            }
            if let Some(config) = kafka {
                let topics: Vec<String> = teams.iter().map(|t| config.topic(t)).collect();
                create_topics(&config, &topics, partitions)
                    .await
                    .map_err(|e| e.to_string())?;
                eprintln!("topics {}", topics.join(", "));
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
                    // Four to ten polls a second, as a Lambda mapping polls a shard.
                    tokio::time::sleep(Duration::from_millis(100)).await;
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
        Command::Redrive {
            lake,
            subscriptions,
            prefix,
        } => {
            let subs = Arc::new(Subscriptions::load(&subscriptions).map_err(|e| e.to_string())?);
            let teams = receiving_teams(&subs);
            let queues = SqsQueues::by_name(&sdk, &cli.queue_prefix, &teams)
                .await
                .map_err(|e| e.to_string())?;
            let lake =
                eventlake_store::open_with_sdk(&lake, false, &sdk).map_err(|e| e.to_string())?;
            let fanout = FanOut::new(lake, subs, Arc::new(queues));
            let r = fanout.redrive(&prefix).await.map_err(|e| e.to_string())?;
            eprintln!(
                "redrive: {} kept records delivered and removed, {} left",
                r.delivered,
                r.left.len()
            );
            for key in &r.left {
                eprintln!("  left: {key}");
            }
            if r.left.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} kept records are still undelivered",
                    r.left.len()
                ))
            }
        }
        Command::Bridge {
            subscriptions,
            team,
            delivery_timeout,
            idle,
        } => {
            let config = kafka.ok_or(
                "bridge needs the Kafka brokers: --kafka-brokers or EVENTLAKE_KAFKA_BROKERS",
            )?;
            let teams = match team {
                Some(t) => vec![TeamName::new(&t).map_err(|e| e.to_string())?],
                None => {
                    let subs = Subscriptions::load(&subscriptions).map_err(|e| e.to_string())?;
                    receiving_teams(&subs).into_iter().collect()
                }
            };
            let mut tasks = tokio::task::JoinSet::new();
            for team in teams {
                let url = queue_url(&sdk, &cli.queue_prefix, &team).await?;
                let producer = TopicProducer::new(&config, &team, delivery_timeout)
                    .map_err(|e| e.to_string())?;
                let bridge = Bridge::new(&sdk, &url, producer);
                tasks.spawn(async move {
                    let mut quiet_since = Instant::now();
                    loop {
                        let moved = match bridge.step().await {
                            Ok(m) => m,
                            Err(e) => {
                                // The queue keeps what was not moved; try again shortly.
                                tracing::warn!(team = %team, error = %e, "bridge step failed");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                continue;
                            }
                        };
                        if moved.received > 0 {
                            quiet_since = Instant::now();
                            eprintln!(
                                "{team}: {} moved to Kafka{}",
                                moved.moved,
                                if moved.left > 0 {
                                    format!(", {} left in the queue for later", moved.left)
                                } else {
                                    String::new()
                                }
                            );
                        } else if idle.is_some_and(|d| quiet_since.elapsed() >= d) {
                            return;
                        }
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            Ok(())
        }
        Command::Consume {
            team,
            from,
            group,
            session_timeout,
            tokens,
            token,
            seen,
            max_events,
            idle,
        } => {
            let team = TeamName::new(&team).map_err(|e| e.to_string())?;
            if let Some(path) = tokens {
                authorize(&path, token.as_deref(), &team)?;
            }
            let seen = match seen {
                Some(p) => SeenIds::open(&p).map_err(|e| e.to_string())?,
                None => SeenIds::in_memory(),
            };
            let mut out = std::io::stdout().lock();
            let max_events = max_events.unwrap_or(usize::MAX);
            let (mut events, mut quiet_since) = (0, Instant::now());
            match from {
                Source::Queue => {
                    let url = queue_url(&sdk, &cli.queue_prefix, &team).await?;
                    let mut consumer = Consumer::new(&sdk, &url, seen);
                    while events < max_events {
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
                }
                Source::Kafka => {
                    let config = kafka.ok_or(
                        "--from kafka needs the Kafka brokers: --kafka-brokers or EVENTLAKE_KAFKA_BROKERS",
                    )?;
                    let group = group.unwrap_or_else(|| format!("eventlake-{team}"));
                    let mut consumer =
                        TopicConsumer::new(&config, &team, &group, session_timeout, seen)
                            .map_err(|e| e.to_string())?;
                    while events < max_events {
                        let r = consumer
                            .receive(&mut out, Duration::from_secs(1), max_events - events)
                            .await
                            .map_err(|e| e.to_string())?;
                        events += r.events;
                        if r.events + r.repeats > 0 {
                            quiet_since = Instant::now();
                        } else if idle.is_some_and(|d| quiet_since.elapsed() >= d) {
                            break;
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

fn parse_auth(s: &str) -> Result<KafkaAuth, String> {
    match s {
        "none" => Ok(KafkaAuth::None),
        "aws-msk-iam" => Ok(KafkaAuth::AwsMskIam {
            region: std::env::var("AWS_REGION")
                .map_err(|_| "aws-msk-iam needs AWS_REGION".to_owned())?,
        }),
        other => Err(format!("{other:?}: expected none or aws-msk-iam")),
    }
}

/// Every team that receives events, once.
fn receiving_teams(subs: &Subscriptions) -> BTreeSet<TeamName> {
    subs.rules().iter().map(|r| r.team.clone()).collect()
}

fn kafka_config(cli: &Cli) -> Option<KafkaConfig> {
    cli.kafka_brokers.as_ref().map(|brokers| KafkaConfig {
        brokers: brokers.clone(),
        topic_prefix: cli.topic_prefix.clone(),
        security_protocol: cli.kafka_security_protocol.clone(),
        auth: cli.kafka_auth.clone(),
    })
}

/// Locally, a team reads only its own events: the token must be the team's.
fn authorize(tokens: &std::path::Path, token: Option<&str>, team: &TeamName) -> Result<(), String> {
    let text = std::fs::read_to_string(tokens)
        .map_err(|e| format!("tokens file {}: {e}", tokens.display()))?;
    let store = TokenStore::from_json(&text)
        .map_err(|e| format!("tokens file {}: {e}", tokens.display()))?;
    let token = token.ok_or("refused: give the team's token (--token or EVENTLAKE_TOKEN)")?;
    match store.authenticate(Some(&format!("Bearer {token}"))) {
        Ok(owner) if owner == *team => Ok(()),
        Ok(owner) => Err(format!(
            "refused: this token is team {owner}'s, not team {team}'s"
        )),
        Err(AuthError::Unknown) => Err("refused: the token is not known".into()),
        Err(_) => Err("refused: the token is malformed".into()),
    }
}

/// Creates `team`'s FIFO queue with its DLQ (a message received 5 times without being deleted
/// moves there); the queue's name.
async fn create_queue(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
    team: &TeamName,
) -> Result<String, String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let failed = |name: &str, e: &dyn std::fmt::Display| format!("queue {name}: {e}");
    let dlq_name = format!("{prefix}{team}-dlq.fifo");
    let dlq_url = sqs
        .create_queue()
        .queue_name(&dlq_name)
        .attributes(A::FifoQueue, "true")
        .attributes(A::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| failed(&dlq_name, &aws_sdk_sqs::error::DisplayErrorContext(&e)))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(A::QueueArn)
        .send()
        .await
        .map_err(|e| failed(&dlq_name, &aws_sdk_sqs::error::DisplayErrorContext(&e)))?
        .attributes()
        .and_then(|a| a.get(&A::QueueArn).cloned())
        .unwrap_or_default();
    let name = format!("{prefix}{team}.fifo");
    sqs.create_queue()
        .queue_name(&name)
        .attributes(A::FifoQueue, "true")
        .attributes(A::VisibilityTimeout, "30")
        .attributes(
            A::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}).to_string(),
        )
        .send()
        .await
        .map_err(|e| failed(&name, &aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    Ok(name)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, plain text for a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
