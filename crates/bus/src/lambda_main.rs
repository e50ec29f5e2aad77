//! `bus-lambda`: the bus's functions on AWS Lambda (`provided.al2023`, shipped as `bootstrap`).
//! One binary serves both functions; the function's handler setting picks the part:
//!
//! - `fanout`: on the ledger's stream. `EVENTLAKE_LAKE` (s3://bucket[/prefix]),
//!   `EVENTLAKE_SUBSCRIPTIONS_PARAMETER` (the SSM parameter Terraform writes the subscriptions
//!   into), `EVENTLAKE_BUS_QUEUE_PREFIX`, and optionally `EVENTLAKE_BUS_NOTIFY_TOPIC` (an SNS
//!   topic ARN).
//! - `bridge`: on each team's queue. `EVENTLAKE_KAFKA_BROKERS`, `EVENTLAKE_KAFKA_TOPIC_PREFIX`,
//!   `EVENTLAKE_BUS_QUEUE_PREFIX`, optionally `EVENTLAKE_KAFKA_SECURITY_PROTOCOL` (`SSL` for a
//!   TLS listener) and `EVENTLAKE_KAFKA_AUTH=aws-msk-iam` (MSK Serverless's IAM access control,
//!   signed with the function's credentials).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use eventlake_bus::Subscriptions;
use eventlake_bus::deliver::{SnsNotify, SqsQueues};
use eventlake_bus::kafka::{KafkaAuth, KafkaConfig};
use eventlake_bus::lambda::{BridgeHandler, fanout};
use eventlake_bus::stream::FanOut;
use lambda_runtime::{LambdaEvent, service_fn};

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

async fn subscriptions(sdk: &aws_config::SdkConfig, name: &str) -> Result<Subscriptions, String> {
    let out = aws_sdk_ssm::Client::new(sdk)
        .get_parameter()
        .name(name)
        .send()
        .await
        .map_err(|e| {
            format!(
                "parameter {name}: {}",
                aws_sdk_ssm::error::DisplayErrorContext(&e)
            )
        })?;
    let text = out
        .parameter()
        .and_then(|p| p.value())
        .ok_or_else(|| format!("parameter {name} is empty"))?;
    Subscriptions::parse(text, &format!("parameter {name}")).map_err(|e| e.to_string())
}

async fn run() -> Result<(), String> {
    let sdk = eventlake_store::sdk_config().await;
    let queue_prefix =
        std::env::var("EVENTLAKE_BUS_QUEUE_PREFIX").unwrap_or_else(|_| "eventlake-".into());
    let handler = std::env::var("_HANDLER").unwrap_or_default();
    match handler.as_str() {
        "fanout" => {
            let subs =
                Arc::new(subscriptions(&sdk, &env("EVENTLAKE_SUBSCRIPTIONS_PARAMETER")?).await?);
            let teams: std::collections::BTreeSet<_> =
                subs.rules().iter().map(|r| r.team.clone()).collect();
            let queues = SqsQueues::by_name(&sdk, &queue_prefix, &teams)
                .await
                .map_err(|e| e.to_string())?;
            let lake = eventlake_store::open_with_sdk(&env("EVENTLAKE_LAKE")?, false, &sdk)
                .map_err(|e| e.to_string())?;
            let mut fan = FanOut::new(lake, subs, Arc::new(queues));
            if let Ok(topic) = std::env::var("EVENTLAKE_BUS_NOTIFY_TOPIC") {
                fan = fan.with_notify(Arc::new(SnsNotify::new(&sdk, &topic)));
            }
            let fan = &fan;
            lambda_runtime::run(service_fn(
                move |event: LambdaEvent<StreamEvent>| async move {
                    let (handled, response) = fanout(fan, event.payload)
                        .await
                        .map_err(lambda_runtime::Error::from)?;
                    tracing::info!(
                        batches = handled.batches,
                        messages = handled.messages,
                        kept = handled.kept.len(),
                        retry_from = handled.retry_from,
                        "stream records handled"
                    );
                    Ok::<_, lambda_runtime::Error>(response)
                },
            ))
            .await
            .map_err(|e| e.to_string())
        }
        "bridge" => {
            let config = KafkaConfig {
                brokers: env("EVENTLAKE_KAFKA_BROKERS")?,
                topic_prefix: std::env::var("EVENTLAKE_KAFKA_TOPIC_PREFIX")
                    .unwrap_or_else(|_| "eventlake.".into()),
                security_protocol: std::env::var("EVENTLAKE_KAFKA_SECURITY_PROTOCOL").ok(),
                auth: KafkaAuth::from_env().map_err(|e| e.to_string())?,
            };
            let bridge = BridgeHandler::new(config, &queue_prefix, Duration::from_secs(10));
            let bridge = &bridge;
            lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
                bridge
                    .handle(event.payload)
                    .await
                    .map_err(lambda_runtime::Error::from)
            }))
            .await
            .map_err(|e| e.to_string())
        }
        other => Err(format!(
            "handler {other:?}: set the function's handler to \"fanout\" or \"bridge\""
        )),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // One JSON object per line: CloudWatch Logs Insights reads the fields.
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BUS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = e, "bus-lambda stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
