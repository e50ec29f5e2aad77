//! The scheduled job's task entry point: the state machine sends a JSON payload, gets JSON back,
//! and matches errors by two stable names.
//!
//! | payload | returns |
//! | --- | --- |
//! | `{"action":"plan","scope":"today"\|"yesterday"}`, or `{"action":"plan","scope":"range","from":"YYYY-MM-DD","to":"YYYY-MM-DD","teams":[…]}` (at most 366 days; no teams for all) | `{"partitions":[{"team","dt","raw_bytes","objects","runner"}],"count","items":null}`: the partitions with new raw data; `runner` is `lambda`, or `fargate` past `EVENTLAKE_LAMBDA_MAX_RAW_MB` (default 256) of raw data, and then `network` (`{"subnets","security_groups"}`): where the team's task runs, from `EVENTLAKE_TASK_NETWORKS`. A plan of more than `EVENTLAKE_PLAN_INLINE_MAX` partitions (default 200) is written to the lake as a JSON array instead (`_workflow/plans/…json`): `partitions` is then empty and `items` is `{"bucket","key","url"}`, where the workflow's Distributed Map reads it |
//! | `{"action":"map_run","map_run_arn":"…","results":{"Bucket","Key"}}` | `{"partitions","succeeded","failed_count","any_failed","failed":[…],"results"}`: a Distributed Map run's counts (DescribeMapRun) and its first failed partitions (at most 50, from the FAILED files its ResultWriter wrote) |
//! | `{"action":"compact","team":"…","dt":"YYYY-MM-DD"}` | `{"partition","status":"committed"\|"unchanged","version","rows","quarantined"}`, or `{"partition","status":"busy","held_by","held_until"}` when another run holds the partition's lease |
//! | `{"action":"check_p95","engine":"athena"\|"local","runs":3}` | `{"ok","over_budget":[…],"queries":[…]}`: a breached budget is a result (`ok: false`), not an error |
//!
//! Errors carry the type `Retryable` (storage hiccups, throttling, a commit race: the same step can
//! succeed later) or `NonRetryable` (a bad payload, access denied, a corrupt manifest).
//! As a Lambda function (`etl lambda`) these are the function error's `errorType`; as a Fargate
//! task (`etl task --payload '…'`) the JSON goes to stdout and the exit code is 0, 75 (retryable)
//! or 2 (not retryable).

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{Days, Utc};
use eventlake_contract::{PartitionDate, TeamName};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use clap::Parser as _;
use eventlake_catalog::{Context, Target, open};
use eventlake_compaction::backfill::{self, Quiet, Status};
use eventlake_compaction::compact::CompactOptions;
use eventlake_compaction::plan::{DEFAULT_DEDUPE_WINDOW, Plan, Selection, plan};
use tokio::sync::OnceCell;

use crate::error::Error;

/// What the state machine matches on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TaskError {
    /// `Retryable` or `NonRetryable`.
    pub error_type: &'static str,
    pub message: String,
}

impl TaskError {
    fn from_error(e: impl Into<Error>) -> Self {
        let e = e.into();
        Self::new(e.is_retryable(), e.to_string())
    }

    fn new(retryable: bool, message: String) -> Self {
        Self {
            error_type: if retryable {
                "Retryable"
            } else {
                "NonRetryable"
            },
            message,
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(false, message.into())
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl From<TaskError> for lambda_runtime::Diagnostic {
    fn from(e: TaskError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type.to_owned(),
            error_message: e.message,
        }
    }
}

/// Where a Fargate task runs: its subnets and security groups.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct TaskNetwork {
    subnets: Vec<String>,
    security_groups: Vec<String>,
}

/// Each team's network for its Fargate tasks, `*` for the teams without one of their own:
/// `EVENTLAKE_TASK_NETWORKS`, a JSON object that Terraform writes
/// (`{"checkout":{"subnets":[…],"security_groups":[…]},"*":{…}}`). Unset outside AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TaskNetworks(BTreeMap<String, TaskNetwork>);

impl TaskNetworks {
    const VAR: &'static str = "EVENTLAKE_TASK_NETWORKS";

    fn from_env() -> Result<Option<Self>, TaskError> {
        match std::env::var(Self::VAR) {
            Ok(text) if !text.trim().is_empty() => Self::parse(&text).map(Some),
            _ => Ok(None),
        }
    }

    fn parse(text: &str) -> Result<Self, TaskError> {
        let map: BTreeMap<String, TaskNetwork> = serde_json::from_str(text).map_err(|e| {
            TaskError::bad(format!(
                "{}: not a map of team to {{\"subnets\",\"security_groups\"}}: {e}",
                Self::VAR
            ))
        })?;
        for (team, n) in &map {
            if n.subnets.is_empty() || n.security_groups.is_empty() {
                return Err(TaskError::bad(format!(
                    "{}: the network of {team:?} needs at least one subnet and one security group",
                    Self::VAR
                )));
            }
        }
        Ok(Self(map))
    }

    fn for_team(&self, team: &str) -> Result<&TaskNetwork, TaskError> {
        self.0.get(team).or_else(|| self.0.get("*")).ok_or_else(|| {
            TaskError::bad(format!(
                "{}: no network for team {team} (and no \"*\" for the others)",
                Self::VAR
            ))
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Payload {
    Plan {
        #[serde(default = "today")]
        scope: Scope,
        #[serde(default)]
        teams: Vec<String>,
        /// First and last day of a `range` scope (YYYY-MM-DD, inclusive).
        #[serde(default)]
        from: Option<String>,
        #[serde(default)]
        to: Option<String>,
    },
    Compact {
        team: String,
        dt: String,
    },
    MapRun {
        map_run_arn: String,
        /// The map run's `ResultWriterDetails` (`{"Bucket","Key"}` of its manifest).
        #[serde(default)]
        results: Option<Value>,
    },
    CheckP95 {
        #[serde(default = "athena")]
        engine: String,
        #[serde(default = "three")]
        runs: usize,
    },
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Today,
    Yesterday,
    /// The days `from` to `to`: a backfill.
    Range,
}

/// The most days one range may plan: a year. A large plan goes to the workflow's Distributed
/// Map through S3, so neither the state's 256 KiB payload nor the history's 25,000 events bound
/// it; the plan's own listing of the raw objects, one day at a time, does.
pub const MAX_RANGE_DAYS: i64 = 366;

/// The most partitions a plan returns inline (`EVENTLAKE_PLAN_INLINE_MAX`): an inline Map
/// records about 10 history events per partition and carries every record in its state.
pub const DEFAULT_PLAN_INLINE_MAX: usize = 200;

/// Where large plans are written, under the lake's root.
pub const PLAN_PREFIX: &str = "_workflow/plans";

/// The most failed partitions a map run's summary names (the alert carries them).
const MAP_RUN_FAILED_LISTED: usize = 50;

fn today() -> Scope {
    Scope::Today
}
fn athena() -> String {
    "athena".into()
}
fn three() -> usize {
    3
}

/// `EVENTLAKE_SPILL_MB`, or the default; a value that is not a positive number is refused.
fn spill_mb() -> std::result::Result<usize, TaskError> {
    match std::env::var("EVENTLAKE_SPILL_MB") {
        Err(_) => Ok(eventlake_compaction::compact::DEFAULT_SPILL_MB),
        Ok(v) => v.trim().parse().ok().filter(|mb| *mb > 0).ok_or_else(|| {
            TaskError::bad(format!(
                "EVENTLAKE_SPILL_MB is {v:?}, not a positive number of megabytes"
            ))
        }),
    }
}

/// The lake and catalog payloads run against: opened (with the AWS configuration) by the first
/// payload and kept for the next ones, so a Lambda instance loads its configuration and builds
/// its clients once, not per invocation.
#[derive(Debug)]
pub struct TaskContext {
    target: Target,
    opened: OnceCell<Context>,
}

impl TaskContext {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            opened: OnceCell::new(),
        }
    }

    /// The opened lake and catalog; with the AWS configuration when `need_aws`.
    async fn context(&self, need_aws: bool) -> Result<Context, TaskError> {
        if let Some(c) = self.opened.get()
            && (c.sdk.is_some() || !need_aws)
        {
            return Ok(c.clone());
        }
        let c = open(&self.target, false, self.target.aws_config(need_aws).await)
            .await
            .map_err(TaskError::from_error)?;
        let _ = self.opened.set(c.clone());
        Ok(c)
    }
}

/// Runs one payload against the task's lake and catalog (from its environment).
pub async fn handle(payload: Value, task: &TaskContext) -> Result<Value, TaskError> {
    let payload: Payload = serde_json::from_value(payload)
        .map_err(|e| TaskError::bad(format!("invalid payload: {e}")))?;
    match payload {
        Payload::Plan {
            scope,
            teams,
            from,
            to,
        } => {
            let teams = teams
                .iter()
                .map(|t| TeamName::new(t))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TaskError::bad(format!("invalid payload: {e}")))?;
            let (first, last) = days_of(scope, from.as_deref(), to.as_deref())?;
            let networks = TaskNetworks::from_env()?;
            let ctx = task.context(false).await?;
            let p = plan_days(&ctx, teams, first, last).await?;
            let max_bytes = std::env::var("EVENTLAKE_LAMBDA_MAX_RAW_MB")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(256)
                * 1024
                * 1024;
            let partitions: Vec<Value> = p
                .partitions
                .iter()
                .filter(|pp| pp.needs_work())
                .map(|pp| {
                    let team = pp.partition.team.to_string();
                    let fargate = pp.bytes > max_bytes;
                    let mut item = json!({
                        "team": team,
                        "dt": pp.partition.dt.to_string(),
                        "raw_bytes": pp.bytes,
                        "objects": pp.objects.len(),
                        "runner": if fargate { "fargate" } else { "lambda" },
                    });
                    if let (true, Some(networks)) = (fargate, &networks) {
                        item["network"] = json!(networks.for_team(&team)?);
                    }
                    Ok(item)
                })
                .collect::<Result<_, TaskError>>()?;
            let inline_max = match std::env::var("EVENTLAKE_PLAN_INLINE_MAX") {
                Ok(v) => v.parse::<usize>().map_err(|_| {
                    TaskError::bad(format!(
                        "EVENTLAKE_PLAN_INLINE_MAX: {v:?} is not a number of partitions"
                    ))
                })?,
                Err(_) => DEFAULT_PLAN_INLINE_MAX,
            };
            let count = partitions.len();
            if count <= inline_max {
                return Ok(json!({"count": count, "partitions": partitions, "items": null}));
            }
            let items = write_plan(&ctx.lake, first, last, &partitions).await?;
            tracing::info!(count, url = %items["url"], "large plan written for the Distributed Map");
            Ok(json!({"count": count, "partitions": [], "items": items}))
        }
        Payload::Compact { team, dt } => {
            let team = TeamName::new(&team)
                .map_err(|e| TaskError::bad(format!("invalid payload: {e}")))?;
            let dt = PartitionDate::parse(&dt)
                .map_err(|e| TaskError::bad(format!("invalid payload: {e}")))?;
            let ctx = task.context(false).await?;
            let p = plan_day(&ctx, vec![team.clone()], dt).await?;
            let partition = format!("team={team}/dt={dt}");
            if p.partitions.is_empty() {
                return Err(TaskError::bad(format!("{partition}: no raw data")));
            }
            let opts = CompactOptions {
                read_concurrency: CompactOptions::default_read_concurrency(ctx.lake.is_s3()),
                // The frequent runs add to today's version when EVENTLAKE_INCREMENTAL is set.
                incremental: std::env::var("EVENTLAKE_INCREMENTAL")
                    .is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes" | "on")),
                // Rows past this spill to the function's local disk (`etl backfill --spill-mb`).
                spill_bytes: spill_mb()? * 1024 * 1024,
                spill_dir: std::env::var_os("EVENTLAKE_SPILL_DIR").map(Into::into),
                ..CompactOptions::default()
            };
            let summary = backfill::run(&ctx.lake, ctx.catalog, p, 1, &opts, &Quiet).await;
            if crate::metrics::enabled(std::env::var("EVENTLAKE_METRICS").ok().as_deref()) {
                crate::metrics::emit(&crate::metrics::documents(&summary, "compact"));
            }
            let r = summary
                .partitions
                .first()
                .ok_or_else(|| TaskError::bad(format!("{partition}: nothing planned")))?;
            if r.status == Status::Failed {
                return Err(TaskError::new(
                    r.retryable.unwrap_or(true),
                    format!("{partition}: {}", r.error.as_deref().unwrap_or("failed")),
                ));
            }
            if r.status == Status::Busy {
                // The scheduled run skips it; the run holding it commits it.
                // rows and quarantined are there (null) for the workflow's result selector.
                return Ok(json!({
                    "partition": partition,
                    "status": "busy",
                    "held_by": r.held_by,
                    "held_until": r.held_until,
                    "rows": null,
                    "quarantined": null,
                }));
            }
            Ok(json!({
                "partition": partition,
                "status": if r.status == Status::Unchanged { "unchanged" } else { "committed" },
                "version": r.version,
                "rows": r.counts.as_ref().map(|c| c.rows),
                "quarantined": r.counts.as_ref().map(|c| c.quarantined),
            }))
        }
        Payload::MapRun {
            map_run_arn,
            results,
        } => {
            let ctx = task.context(true).await?;
            map_run_summary(&ctx, &map_run_arn, results.as_ref()).await
        }
        Payload::CheckP95 { engine, runs } => {
            if runs == 0 {
                return Err(TaskError::bad("invalid payload: runs must be at least 1"));
            }
            let athena = match engine.as_str() {
                "athena" => true,
                "local" => false,
                other => {
                    return Err(TaskError::bad(format!(
                        "invalid payload: engine {other:?} (athena or local)"
                    )));
                }
            };
            let queries = eventlake_query::saved::load_all(&[sql_dir()])
                .map_err(|e| TaskError::bad(e.to_string()))?;
            let ctx = task.context(athena).await?;
            let engine = if athena {
                // The same settings and environment variables as `etl check-p95 --engine athena`.
                let args = AthenaFromEnv::try_parse_from(["etl"])
                    .map_err(|e| TaskError::bad(format!("Athena settings: {e}")))?
                    .athena;
                eventlake_query::p95::Engine::Athena(
                    args.engine(&ctx).map_err(TaskError::from_error)?,
                )
            } else {
                eventlake_query::p95::Engine::Local(
                    eventlake_query::session_named(
                        &ctx.lake,
                        ctx.catalog.as_ref(),
                        &ctx.target.glue,
                    )
                    .await
                    .map_err(TaskError::from_error)?,
                )
            };
            let report = eventlake_query::p95::check(
                &engine,
                &queries,
                &BTreeMap::new(),
                (usize::from(!athena), runs),
                None,
            )
            .await
            .map_err(TaskError::from_error)?;
            for q in &report.queries {
                tracing::info!(
                    query = %q.name, p50_ms = q.p50_ms, p95_ms = q.p95_ms, budget_ms = q.budget_ms,
                    ok = q.ok, "saved query latency"
                );
            }
            Ok(serde_json::to_value(&report).expect("report serialises"))
        }
    }
}

/// Writes a large plan's partitions to the lake as one JSON array, the input of the workflow's
/// Distributed Map, and says where (`{"bucket","key","url"}`; `bucket` is null on a local lake).
async fn write_plan(
    lake: &eventlake_catalog::Lake,
    first: PartitionDate,
    last: PartitionDate,
    partitions: &[Value],
) -> Result<Value, TaskError> {
    let key = format!(
        "{PLAN_PREFIX}/{}-{first}-{last}.json",
        Utc::now().format("%Y%m%dT%H%M%S%9fZ"),
    );
    let body = serde_json::to_vec(partitions).expect("plan records serialise");
    lake.put(&key, body).await.map_err(TaskError::from_error)?;
    Ok(json!({
        "bucket": lake.bucket(),
        "key": lake.path(&key).to_string(),
        "url": lake.key_url(&key),
    }))
}

/// A Distributed Map run's outcome: its item counts and its first failed partitions.
async fn map_run_summary(
    ctx: &Context,
    map_run_arn: &str,
    results: Option<&Value>,
) -> Result<Value, TaskError> {
    let sdk = ctx
        .sdk
        .as_ref()
        .ok_or_else(|| TaskError::bad("map_run needs the AWS configuration"))?;
    let run = aws_sdk_sfn::Client::new(sdk)
        .describe_map_run()
        .map_run_arn(map_run_arn)
        .send()
        .await
        .map_err(|e| {
            let e = aws_sdk_sfn::error::DisplayErrorContext(e);
            TaskError::new(true, format!("cannot describe map run {map_run_arn}: {e}"))
        })?;
    let counts = run.item_counts();
    let total = counts.map_or(0, |c| c.total());
    let succeeded = counts.map_or(0, |c| c.succeeded());
    let failed_count = counts.map_or(0, |c| c.failed() + c.aborted() + c.timed_out());
    let mut failed = Vec::new();
    let mut results_url = Value::Null;
    if let (Some(bucket), Some(key)) = (
        results.and_then(|r| r["Bucket"].as_str()),
        results.and_then(|r| r["Key"].as_str()),
    ) {
        let url = format!("s3://{bucket}/{key}");
        results_url = json!(url);
        if failed_count > 0 {
            failed = failed_from_results(&ctx.lake, &url).await?;
        }
    }
    Ok(json!({
        "map_run": map_run_arn,
        "status": run.status().as_str(),
        "partitions": total,
        "succeeded": succeeded,
        "failed_count": failed_count,
        "any_failed": failed_count > 0,
        "failed": failed,
        "results": results_url,
    }))
}

/// The first failed partitions listed by a map run's result manifest (its FAILED files): each
/// child execution's input (the plan's record) with the error its iteration recorded.
async fn failed_from_results(
    lake: &eventlake_catalog::Lake,
    manifest_url: &str,
) -> Result<Vec<Value>, TaskError> {
    let key_of = |url: &str| {
        lake.key_of_url(url).ok_or_else(|| {
            TaskError::bad(format!(
                "map run results at {url} are outside the lake {}",
                lake.key_url("")
            ))
        })
    };
    let manifest: Value = serde_json::from_slice(
        &lake
            .get(&key_of(manifest_url)?)
            .await
            .map_err(TaskError::from_error)?,
    )
    .map_err(|e| TaskError::bad(format!("{manifest_url}: not a map run manifest: {e}")))?;
    let bucket = manifest["DestinationBucket"].as_str().unwrap_or_default();
    let mut failed = Vec::new();
    for file in manifest["ResultFiles"]["FAILED"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(key) = file["Key"].as_str() else {
            continue;
        };
        let url = format!("s3://{bucket}/{key}");
        let records: Value = serde_json::from_slice(
            &lake
                .get(&key_of(&url)?)
                .await
                .map_err(TaskError::from_error)?,
        )
        .map_err(|e| TaskError::bad(format!("{url}: not a map run result file: {e}")))?;
        for r in records.as_array().into_iter().flatten() {
            if failed.len() == MAP_RUN_FAILED_LISTED {
                return Ok(failed);
            }
            failed.push(failed_record(r));
        }
    }
    Ok(failed)
}

/// One failed child execution as the inline path records a failed partition: team, dt and the
/// error (the Fail state's cause is the iteration's own record).
fn failed_record(r: &Value) -> Value {
    let parse = |v: &Value| {
        v.as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .unwrap_or(Value::Null)
    };
    let input = parse(&r["Input"]);
    let cause = parse(&r["Cause"]);
    let error = if cause["error"].is_object() {
        cause["error"].clone()
    } else {
        json!({"Error": r["Error"], "Cause": r["Cause"]})
    };
    json!({
        "team": input["team"],
        "dt": input["dt"],
        "runner": input["runner"],
        "failed": true,
        "error": error,
    })
}

/// The cross-partition de-duplication window: `EVENTLAKE_DEDUPE_WINDOW` (as `--dedupe-window`),
/// 24 hours when unset.
/// The plan of one day's partitions of `teams` (every team when empty).
/// The days a plan covers: today, yesterday (UTC), or a range given in full.
fn days_of(
    scope: Scope,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(PartitionDate, PartitionDate), TaskError> {
    let date = |d: chrono::NaiveDate| {
        PartitionDate::parse(&d.format("%Y-%m-%d").to_string()).expect("a calendar date")
    };
    let now = Utc::now().date_naive();
    match (scope, from, to) {
        (Scope::Today, None, None) => Ok((date(now), date(now))),
        (Scope::Yesterday, None, None) => {
            let d = date(now - Days::new(1));
            Ok((d, d))
        }
        (Scope::Range, Some(f), Some(t)) => {
            let parse = |name: &str, v: &str| {
                PartitionDate::parse(v)
                    .map_err(|e| TaskError::bad(format!("invalid payload: {name}: {e}")))
            };
            let (f, t) = (parse("from", f)?, parse("to", t)?);
            if f > t {
                return Err(TaskError::bad(format!(
                    "invalid payload: from {f} is after to {t}"
                )));
            }
            let days = (t.date() - f.date()).num_days() + 1;
            if days > MAX_RANGE_DAYS {
                return Err(TaskError::bad(format!(
                    "invalid payload: {days} days from {f} to {t}; one run plans at most {MAX_RANGE_DAYS}, start one run per part"
                )));
            }
            Ok((f, t))
        }
        (Scope::Range, _, _) => Err(TaskError::bad(
            "invalid payload: scope range needs both from and to (YYYY-MM-DD)",
        )),
        (_, _, _) => Err(TaskError::bad(
            "invalid payload: from and to go with scope range only",
        )),
    }
}

async fn plan_day(
    ctx: &Context,
    teams: Vec<TeamName>,
    day: PartitionDate,
) -> Result<Plan, TaskError> {
    plan_days(ctx, teams, day, day).await
}

async fn plan_days(
    ctx: &Context,
    teams: Vec<TeamName>,
    first: PartitionDate,
    last: PartitionDate,
) -> Result<Plan, TaskError> {
    let selection = Selection {
        teams,
        from: Some(first),
        to: Some(last),
    };
    plan(
        &ctx.lake,
        ctx.catalog.as_ref(),
        &selection,
        false,
        dedupe_window()?,
    )
    .await
    .map_err(TaskError::from_error)
}

fn dedupe_window() -> Result<std::time::Duration, TaskError> {
    match std::env::var("EVENTLAKE_DEDUPE_WINDOW") {
        Ok(v) => eventlake_contract::duration::parse(&v)
            .map_err(|e| TaskError::bad(format!("EVENTLAKE_DEDUPE_WINDOW: {e}"))),
        Err(_) => Ok(DEFAULT_DEDUPE_WINDOW),
    }
}

/// The saved queries: `EVENTLAKE_SQL_DIR`, else `sql/` beside the function's code on Lambda
/// (`$LAMBDA_TASK_ROOT/sql`, packaged in the zip), else `./sql`.
pub fn sql_dir() -> PathBuf {
    if let Ok(d) = std::env::var("EVENTLAKE_SQL_DIR") {
        return PathBuf::from(d);
    }
    match std::env::var("LAMBDA_TASK_ROOT") {
        Ok(root) => PathBuf::from(root).join("sql"),
        Err(_) => PathBuf::from("sql"),
    }
}

/// The Athena settings from their environment variables (and defaults), read by the same
/// definition as the command line's.
#[derive(clap::Parser)]
struct AthenaFromEnv {
    #[command(flatten)]
    athena: crate::args::AthenaArgs,
}

/// `etl lambda`: serves payloads from the Lambda runtime API until the runtime stops. The lake,
/// catalog and AWS clients are built once per instance.
pub async fn serve_lambda(task: TaskContext) -> Result<(), Error> {
    let task = &task;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            handle(event.payload, task).await
        },
    ))
    .await
    .map_err(|e| Error::Lambda(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn athena_settings_parse_from_the_environment_alone() {
        let args = AthenaFromEnv::try_parse_from(["etl"]).unwrap().athena;
        assert_eq!(args.athena_timeout, "30m");
        assert!(!args.athena_workgroup.is_empty());
    }

    #[test]
    fn a_team_runs_in_its_own_network_and_the_others_in_the_shared_one() {
        let n = TaskNetworks::parse(
            r#"{"checkout":{"subnets":["subnet-c1","subnet-c2"],"security_groups":["sg-c"]},
                "*":{"subnets":["subnet-s"],"security_groups":["sg-s"]}}"#,
        )
        .unwrap();
        assert_eq!(
            n.for_team("checkout").unwrap().subnets,
            ["subnet-c1", "subnet-c2"]
        );
        assert_eq!(n.for_team("checkout").unwrap().security_groups, ["sg-c"]);
        assert_eq!(n.for_team("search").unwrap().subnets, ["subnet-s"]);
        let own_only =
            TaskNetworks::parse(r#"{"checkout":{"subnets":["a"],"security_groups":["b"]}}"#)
                .unwrap();
        let e = own_only.for_team("search").unwrap_err();
        assert_eq!(e.error_type, "NonRetryable");
        assert!(e.message.contains("no network for team search"), "{e}");
    }

    #[test]
    fn a_malformed_network_map_is_refused_naming_the_variable() {
        for bad in [
            "[]",
            r#"{"checkout":{"subnets":["a"]}}"#,
            r#"{"checkout":{"subnets":[],"security_groups":["b"]}}"#,
            r#"{"checkout":{"subnets":["a"],"security_groups":["b"],"vpc":"x"}}"#,
        ] {
            let e = TaskNetworks::parse(bad).unwrap_err();
            assert!(
                e.message.starts_with("EVENTLAKE_TASK_NETWORKS:"),
                "{bad}: {e}"
            );
        }
    }

    /// A FAILED result file's entry, as Step Functions writes it for a child execution that ended
    /// in PartitionFailedEnd (its cause is the iteration's record), and for one that failed
    /// otherwise (a timeout: no record, the service's error).
    #[test]
    fn a_failed_child_execution_reads_as_the_inline_paths_record() {
        let record = json!({
            "team": "checkout", "dt": "2026-10-04", "runner": "lambda", "failed": true,
            "error": {"Error": "NonRetryable", "Cause": "{\"errorType\":\"NonRetryable\"}"},
        });
        let entry = json!({
            "ExecutionArn": "arn:aws:states:eu-west-1:1:execution:compact/partitions:abc",
            "Input": r#"{"team":"checkout","dt":"2026-10-04","raw_bytes":1,"objects":2,"runner":"lambda"}"#,
            "InputDetails": {"Included": true},
            "Name": "abc",
            "Status": "FAILED",
            "Error": "PartitionFailed",
            "Cause": record.to_string(),
        });
        assert_eq!(failed_record(&entry), record);

        let timed_out = json!({
            "Input": r#"{"team":"search","dt":"2026-10-05","runner":"fargate"}"#,
            "Status": "TIMED_OUT",
            "Error": "States.Timeout",
            "Cause": "The execution timed out",
        });
        assert_eq!(
            failed_record(&timed_out),
            json!({
                "team": "search", "dt": "2026-10-05", "runner": "fargate", "failed": true,
                "error": {"Error": "States.Timeout", "Cause": "The execution timed out"},
            })
        );
    }
}
