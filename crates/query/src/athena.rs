//! Runs SQL on Amazon Athena: start the query in a workgroup, poll its state with backoff, page
//! through the results, and report Athena's own failure reason and timings (time queued apart
//! from engine time).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use aws_sdk_athena::Client;
use aws_sdk_athena::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration};
use serde::Serialize;

use eventlake_catalog::AwsFailure;

use crate::error::{Error, Result};

/// Where and how queries run.
#[derive(Debug, Clone)]
pub struct AthenaOptions {
    pub workgroup: String,
    /// The Glue database queries name their tables in.
    pub database: String,
    /// `s3://…` for results, when the workgroup does not enforce its own.
    pub output: Option<String>,
    /// Give up waiting after this long (the query is then stopped).
    pub timeout: Duration,
}

/// One finished query.
#[derive(Debug, Clone, Serialize)]
pub struct AthenaResult {
    pub query_execution_id: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Time waiting in the workgroup's queue, as Athena reports it.
    pub queue_ms: i64,
    /// Time the engine spent running the query.
    pub engine_ms: i64,
    /// Athena's whole time for the query.
    pub total_ms: i64,
    pub data_scanned_bytes: i64,
    /// Wall time seen from here: start, polls and result pages.
    pub wall_ms: u64,
    pub polls: u32,
}

impl AthenaResult {
    /// The result as one Arrow batch of strings, for the same renderers as local queries.
    pub fn to_batch(&self) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let schema: SchemaRef = Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let arrays: Vec<ArrayRef> = (0..self.columns.len())
            .map(|i| {
                Arc::new(StringArray::from(
                    self.rows
                        .iter()
                        .map(|r| r.get(i).cloned().flatten())
                        .collect::<Vec<_>>(),
                )) as ArrayRef
            })
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
        Ok((schema, vec![batch]))
    }
}

#[derive(Debug, Clone)]
pub struct Athena {
    client: Client,
    opts: AthenaOptions,
}

fn sdk_error<E, R>(operation: &str, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("Error");
            Error::athena(
                AwsFailure::from_code(code),
                format!("{operation}: {code}: {}", s.err().message().unwrap_or("")),
            )
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            Error::athena(
                AwsFailure::Unavailable,
                format!("{operation}: {}", DisplayErrorContext(&e)),
            )
        }
        _ => Error::athena(
            AwsFailure::Refused,
            format!("{operation}: {}", DisplayErrorContext(&e)),
        ),
    }
}

impl Athena {
    pub fn new(sdk: &aws_config::SdkConfig, opts: AthenaOptions) -> Self {
        Self {
            client: Client::new(sdk),
            opts,
        }
    }

    /// Runs `sql` to completion and fetches every result page.
    pub async fn run(&self, sql: &str) -> Result<AthenaResult> {
        let started = Instant::now();
        let mut start = self
            .client
            .start_query_execution()
            .query_string(sql)
            .work_group(&self.opts.workgroup)
            .query_execution_context(
                QueryExecutionContext::builder()
                    .catalog("AwsDataCatalog")
                    .database(&self.opts.database)
                    .build(),
            );
        if let Some(out) = &self.opts.output {
            start = start
                .result_configuration(ResultConfiguration::builder().output_location(out).build());
        }
        let id = start
            .send()
            .await
            .map_err(|e| sdk_error("StartQueryExecution", e))?
            .query_execution_id()
            .ok_or_else(|| {
                Error::athena(AwsFailure::Refused, "StartQueryExecution returned no id")
            })?
            .to_owned();
        tracing::debug!(query_execution_id = %id, workgroup = %self.opts.workgroup, "started");

        let mut delay = Duration::from_millis(100);
        let mut polls = 0;
        let execution = loop {
            polls += 1;
            let got = self
                .client
                .get_query_execution()
                .query_execution_id(&id)
                .send()
                .await
                .map_err(|e| sdk_error("GetQueryExecution", e))?;
            let exec = got.query_execution().cloned().ok_or_else(|| {
                Error::athena(
                    AwsFailure::Refused,
                    format!("query {id}: no execution returned"),
                )
            })?;
            let status = exec.status();
            match status.and_then(|s| s.state()) {
                Some(QueryExecutionState::Succeeded) => break exec,
                Some(QueryExecutionState::Failed) | Some(QueryExecutionState::Cancelled) => {
                    let s = status.expect("a state has a status");
                    let reason = s.state_change_reason().unwrap_or("no reason given");
                    let kind = s
                        .athena_error()
                        .and_then(|e| e.error_type())
                        .map(|t| format!(" (error type {t})"))
                        .unwrap_or_default();
                    return Err(Error::athena(
                        AwsFailure::Refused,
                        format!(
                            "query {id} {} in workgroup {}: {reason}{kind}",
                            s.state().expect("state").as_str().to_lowercase(),
                            self.opts.workgroup
                        ),
                    ));
                }
                _ => {}
            }
            if started.elapsed() > self.opts.timeout {
                let _ = self
                    .client
                    .stop_query_execution()
                    .query_execution_id(&id)
                    .send()
                    .await;
                return Err(Error::athena(
                    AwsFailure::Refused,
                    format!(
                        "query {id} still running after {:?}; stopped it",
                        self.opts.timeout
                    ),
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(2));
        };

        let mut columns: Vec<String> = Vec::new();
        let mut rows: Vec<Vec<Option<String>>> = Vec::new();
        let mut token: Option<String> = None;
        let mut first_page = true;
        loop {
            let page = self
                .client
                .get_query_results()
                .query_execution_id(&id)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("GetQueryResults", e))?;
            if let Some(rs) = page.result_set() {
                if first_page {
                    columns = rs
                        .result_set_metadata()
                        .map(|m| {
                            m.column_info()
                                .iter()
                                .map(|c| c.name().to_owned())
                                .collect()
                        })
                        .unwrap_or_default();
                }
                for (i, r) in rs.rows().iter().enumerate() {
                    let values: Vec<Option<String>> = r
                        .data()
                        .iter()
                        .map(|d| d.var_char_value().map(str::to_owned))
                        .collect();
                    // The first row of a SELECT's first page repeats the column names.
                    if first_page
                        && i == 0
                        && !columns.is_empty()
                        && values
                            .iter()
                            .map(|v| v.as_deref())
                            .eq(columns.iter().map(|c| Some(c.as_str())))
                    {
                        continue;
                    }
                    rows.push(values);
                }
            }
            first_page = false;
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        let stats = execution.statistics();
        Ok(AthenaResult {
            query_execution_id: id,
            columns,
            rows,
            queue_ms: stats
                .and_then(|s| s.query_queue_time_in_millis())
                .unwrap_or(0),
            engine_ms: stats
                .and_then(|s| s.engine_execution_time_in_millis())
                .unwrap_or(0),
            total_ms: stats
                .and_then(|s| s.total_execution_time_in_millis())
                .unwrap_or(0),
            data_scanned_bytes: stats.and_then(|s| s.data_scanned_in_bytes()).unwrap_or(0),
            wall_ms: started.elapsed().as_millis() as u64,
            polls,
        })
    }
}
