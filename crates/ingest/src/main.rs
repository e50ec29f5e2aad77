//! `ingest`: the ingestion API as a local server or a Lambda function, and its operator commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use eventlake_contract::TeamName;
use eventlake_ingest::app::{AppState, Limits, StdoutLog, router};
use eventlake_ingest::auth::{TokenStore, add_token_to_file};
use eventlake_ingest::aws::{SqsDlq, tokens_from_parameter};
use eventlake_ingest::idempotency::{IdempotencyStore, ObjectClaims};
use eventlake_ingest::ledger::DynamoLedger;
use eventlake_ingest::server::{ServerLimits, serve};
use eventlake_ingest::sink::{DirDlq, Dlq, RawSink, redrive};

#[derive(Debug, Parser)]
#[command(
    name = "ingest",
    version,
    about = "eventlake ingestion API: local server, Lambda function and operator commands"
)]
struct Cli {
    /// The lake the raw zone belongs to: a local folder or s3://bucket[/prefix].
    #[arg(long, global = true, env = "EVENTLAKE_LAKE", default_value = "./lake")]
    lake: String,
    /// The token hashes file (the local server's credential store).
    #[arg(
        long,
        global = true,
        env = "EVENTLAKE_TOKENS_FILE",
        default_value = "./tokens.json"
    )]
    tokens: PathBuf,
    /// The token hashes as an SSM parameter (on AWS); takes the place of --tokens.
    #[arg(long, global = true, env = "EVENTLAKE_TOKENS_PARAMETER")]
    tokens_parameter: Option<String>,
    /// The dead-letter queue as an SQS queue URL (on AWS).
    #[arg(long, global = true, env = "EVENTLAKE_DLQ_URL")]
    dlq_url: Option<String>,
    /// The dead-letter queue as a folder (local server); defaults to <lake>/_ingest/dlq for a
    /// local lake.
    #[arg(long, global = true, env = "EVENTLAKE_DLQ_DIR")]
    dlq_dir: Option<PathBuf>,
    /// Keep idempotency claims and answers in this DynamoDB table (the ledger) instead of the
    /// lake's `_ingest/idempotency/` objects.
    #[arg(long, global = true, env = "EVENTLAKE_LEDGER_TABLE")]
    ledger_table: Option<String>,
    /// How long a ledger item is kept (the table's TTL): a key can be reused after it.
    #[arg(long, global = true, env = "EVENTLAKE_LEDGER_RETENTION", default_value = "7d", value_parser = eventlake_contract::duration::parse)]
    ledger_retention: Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API on a local address.
    Serve {
        #[arg(long, env = "EVENTLAKE_ADDR", default_value = "127.0.0.1:8787")]
        addr: SocketAddr,
        #[command(flatten)]
        limits: RequestLimits,
        /// A request's headers must arrive within this time (also how long a kept-alive
        /// connection may wait idle for its next request).
        #[arg(long, env = "EVENTLAKE_HEADER_TIMEOUT", default_value = "10s", value_parser = eventlake_contract::duration::parse)]
        header_timeout: Duration,
        /// A connection that moves no byte for this long is closed.
        #[arg(long, env = "EVENTLAKE_STALL_TIMEOUT", default_value = "30s", value_parser = eventlake_contract::duration::parse)]
        stall_timeout: Duration,
        /// Connections held open at once; past it, the longest-idle one is closed.
        #[arg(long, env = "EVENTLAKE_MAX_CONNECTIONS", default_value_t = 512)]
        max_connections: usize,
    },
    /// Run as an AWS Lambda function behind API Gateway (HTTP API).
    Lambda {
        #[command(flatten)]
        limits: RequestLimits,
    },
    /// Manage team tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Move every batch of the dead-letter queue into the raw zone (idempotent).
    Redrive,
}

/// Per-request limits, the same for the local server and the Lambda.
#[derive(Debug, clap::Args)]
struct RequestLimits {
    /// Events a team may send per second, sustained.
    #[arg(long, env = "EVENTLAKE_RATE_EVENTS_PER_SEC", default_value_t = 2000)]
    rate: u32,
    /// Events a team may send at once (never less than one full batch of 1,000 events).
    #[arg(long, env = "EVENTLAKE_BURST_EVENTS", default_value_t = 1000)]
    burst: u32,
    /// Storage, dead-letter queue and answer all happen within this time of a request's body
    /// arriving (keep it well inside the function timeout).
    #[arg(long, env = "EVENTLAKE_REQUEST_DEADLINE", default_value = "5s", value_parser = eventlake_contract::duration::parse)]
    deadline: Duration,
    /// A request's body must arrive within this time of its headers.
    #[arg(long, env = "EVENTLAKE_BODY_TIMEOUT", default_value = "10s", value_parser = eventlake_contract::duration::parse)]
    body_timeout: Duration,
}

impl RequestLimits {
    fn limits(&self) -> Limits {
        Limits {
            events_per_sec: self.rate,
            burst_events: self.burst,
            deadline: self.deadline,
            body_timeout: self.body_timeout,
            ..Limits::default()
        }
    }
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token for a team: prints it once, stores only its hash.
    Create {
        #[arg(long)]
        team: TeamName,
    },
}

fn main() -> ExitCode {
    // The Lambda runtime starts `bootstrap` with no arguments: serve the API's requests then.
    let cli =
        if std::env::args_os().len() == 1 && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
            Cli::parse_from(["ingest", "lambda"])
        } else {
            Cli::parse()
        };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, plain text for a file, a pipe or CloudWatch.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INGEST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The AWS SDK configuration, loaded only when an AWS resource is configured; S3, SQS and SSM
/// then act as one identity.
async fn sdk(cli: &Cli) -> Option<aws_config::SdkConfig> {
    if cli.lake.starts_with("s3://")
        || cli.dlq_url.is_some()
        || cli.tokens_parameter.is_some()
        || cli.ledger_table.is_some()
    {
        Some(eventlake_store::sdk_config().await)
    } else {
        None
    }
}

/// The lake's store, signed with the shared SDK configuration when there is one.
fn open_lake(
    cli: &Cli,
    create: bool,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<eventlake_store::Location, String> {
    match sdk {
        Some(sdk) => eventlake_store::open_with_sdk(&cli.lake, create, sdk),
        None => eventlake_store::open(&cli.lake, create),
    }
    .map_err(|e| e.to_string())
}

fn dlq_for(
    cli: &Cli,
    sdk: Option<&aws_config::SdkConfig>,
    local_dir: Option<&std::path::Path>,
) -> Option<Arc<dyn Dlq>> {
    if let (Some(url), Some(sdk)) = (&cli.dlq_url, sdk) {
        return Some(Arc::new(SqsDlq::new(sdk, url)));
    }
    let dir = cli
        .dlq_dir
        .clone()
        .or_else(|| local_dir.map(|d| d.join("_ingest/dlq")))?;
    Some(Arc::new(DirDlq::new(dir)))
}

async fn load_tokens(cli: &Cli, sdk: Option<&aws_config::SdkConfig>) -> Result<TokenStore, String> {
    if let (Some(name), Some(sdk)) = (&cli.tokens_parameter, sdk) {
        return tokens_from_parameter(sdk, name)
            .await
            .map_err(|e| e.to_string());
    }
    let path = &cli.tokens;
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read token file {}: {e} (create one with `ingest token create --team <team>`)",
            path.display()
        )
    })?;
    TokenStore::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The app's state from the configuration: the local server and the Lambda build it alike.
async fn app_state(
    cli: &Cli,
    create: bool,
    limits: Limits,
) -> Result<(Arc<AppState>, String), String> {
    if limits.deadline.is_zero() {
        return Err("--deadline must be more than zero".into());
    }
    let sdk = sdk(cli).await;
    let loc = open_lake(cli, create, sdk.as_ref())?;
    let tokens = load_tokens(cli, sdk.as_ref()).await?;
    let dlq = dlq_for(cli, sdk.as_ref(), loc.local_dir.as_deref());
    let sink = RawSink::new(loc.store.clone(), &loc.root, dlq);
    let claims: Arc<dyn IdempotencyStore> = match (&cli.ledger_table, sdk.as_ref()) {
        (Some(table), Some(sdk)) => Arc::new(DynamoLedger::new(sdk, table, cli.ledger_retention)),
        _ => Arc::new(ObjectClaims::new(loc.store.clone(), &loc.root)),
    };
    let state = AppState::new(tokens, sink, claims, limits, Arc::new(StdoutLog));
    Ok((Arc::new(state), loc.display))
}

async fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        Command::Token(TokenCommand::Create { team }) => {
            let token = add_token_to_file(&cli.tokens, team).map_err(|e| e.to_string())?;
            eprintln!(
                "token for team {team} (shown once; only its hash is kept in {}):",
                cli.tokens.display()
            );
            println!("{token}");
            Ok(())
        }
        Command::Serve {
            addr,
            limits,
            header_timeout,
            stall_timeout,
            max_connections,
        } => {
            let (state, lake) = app_state(&cli, true, limits.limits()).await?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            eprintln!("ingest: listening on http://{bound}, landing raw events in {lake}");
            let server = ServerLimits {
                header_timeout: *header_timeout,
                stall_timeout: *stall_timeout,
                max_connections: (*max_connections).max(1),
            };
            serve(listener, router(state), server, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
            Ok(())
        }
        Command::Lambda { limits } => {
            let (state, _) = app_state(&cli, false, limits.limits()).await?;
            lambda_http::run(router(state))
                .await
                .map_err(|e| e.to_string())
        }
        Command::Redrive => {
            let sdk = sdk(&cli).await;
            let loc = open_lake(&cli, false, sdk.as_ref())?;
            let dlq = dlq_for(&cli, sdk.as_ref(), loc.local_dir.as_deref())
                .ok_or("no dead-letter queue configured (--dlq-url or --dlq-dir)")?;
            let sink = RawSink::new(loc.store.clone(), &loc.root, None);
            // With the ledger, each redriven batch is noted there, and its stream announces
            // it to the bus.
            let ledger = match (&cli.ledger_table, sdk.as_ref()) {
                (Some(table), Some(sdk)) => {
                    Some(DynamoLedger::new(sdk, table, cli.ledger_retention))
                }
                _ => None,
            };
            let r = redrive(
                &sink,
                dlq.as_ref(),
                ledger.as_ref().map(|l| l as &dyn IdempotencyStore),
            )
            .await
            .map_err(|e| e.to_string())?;
            println!(
                "redrive: {} batches written to the raw zone, {} already there, {} kept beside another batch of the same key{}",
                r.written,
                r.already_there,
                r.kept_apart,
                if ledger.is_some() {
                    format!("; {} announced to the bus by the ledger", r.announced)
                } else {
                    String::new()
                }
            );
            Ok(())
        }
    }
}
