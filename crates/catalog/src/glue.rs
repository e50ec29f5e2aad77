//! The AWS Glue Data Catalog as the catalog: one Glue partition per `(team, dt)`, whose location
//! is the committed version's prefix, so Athena reads exactly what `etl query` reads.
//!
//! - The database and the `events` table are created when absent: columns from the contract with
//!   Hive types, the Parquet SerDe, partition keys `team` and `dt`, a partition index on both. The
//!   table is updated only when its columns differ from the contract (Glue keeps a version per
//!   table update).
//! - A commit creates the partition when it is absent and updates it when present, so a partition
//!   registered elsewhere (another location, another tool) is repointed, never duplicated. What
//!   eventlake knows of the version (id, raw fingerprint, rows, files) rides in the partition's
//!   parameters.
//! - Throttling and 5xx answers are retried by the SDK with exponential backoff and jitter;
//!   `AccessDeniedException` and bad input are not retried.
//!
//! Glue has no conditional partition update: the compare-and-swap is a read then a write, and
//! only a create is race-free. Runs of one partition therefore never overlap: a run takes the
//! partition's lease in the lake before it works on it ([`crate::Leases`]) and confirms it right
//! before the commit.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_glue::Client;
use aws_sdk_glue::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_glue::types::{
    Column, DatabaseInput, Partition, PartitionIndex, PartitionInput, SerDeInfo, StorageDescriptor,
    TableInput,
};
use eventlake_contract::layout::{CURATED_ROOT, TABLE};
use eventlake_contract::schema::{PARTITION_COLUMNS, file_schema, hive_type};
use eventlake_contract::{PartitionDate, PartitionKey, TeamName};
use tokio::sync::OnceCell;

use crate::catalog::{Catalog, CommitOutcome, DataFile, PartitionEntry, settle};
use crate::error::{AwsFailure, Error, Result};
use crate::lake::Lake;

const P_VERSION: &str = "eventlake.version";
const P_FINGERPRINT: &str = "eventlake.raw_fingerprint";
const P_ROWS: &str = "eventlake.rows";
const P_MANIFEST: &str = "eventlake.manifest";
const P_COMMITTED_AT: &str = "eventlake.committed_at";
const P_FILES: &str = "eventlake.files";

const INPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
const OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
const SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";

/// Where the table lives in Glue.
#[derive(Debug, Clone)]
pub struct GlueTarget {
    pub database: String,
    pub table: String,
}

impl Default for GlueTarget {
    fn default() -> Self {
        Self {
            database: "eventlake".into(),
            table: "events".into(),
        }
    }
}

#[derive(Debug)]
pub struct GlueCatalog {
    client: Client,
    target: GlueTarget,
    lake: Lake,
    ensured: OnceCell<()>,
}

/// What a Glue call's failure means for us.
fn glue_error<E, R>(operation: &'static str, target: String, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (code, message, failure) = match &e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            let code = err.code().unwrap_or("Unknown").to_owned();
            let failure = AwsFailure::from_code(&code);
            (code, err.message().unwrap_or("").to_owned(), failure)
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => (
            "Unreachable".to_owned(),
            aws_sdk_glue::error::DisplayErrorContext(&e).to_string(),
            AwsFailure::Unavailable,
        ),
        _ => (
            "Error".to_owned(),
            aws_sdk_glue::error::DisplayErrorContext(&e).to_string(),
            AwsFailure::Refused,
        ),
    };
    let message = if failure == AwsFailure::AccessDenied {
        format!("access denied (not retried; check the job's IAM policy): {message}")
    } else {
        format!("{code}: {message}")
    };
    Error::Glue {
        operation,
        target,
        message,
        failure,
    }
}

fn is_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>, code: &str) -> bool {
    matches!(e, SdkError::ServiceError(s) if s.err().code() == Some(code))
}

/// The table's columns, from the contract.
fn columns() -> Vec<Column> {
    file_schema()
        .fields()
        .iter()
        .map(|f| {
            Column::builder()
                .name(f.name())
                .r#type(hive_type(f.data_type()))
                .build()
                .expect("name is set")
        })
        .collect()
}

fn partition_keys() -> Vec<Column> {
    PARTITION_COLUMNS
        .iter()
        .map(|n| {
            Column::builder()
                .name(*n)
                .r#type("string")
                .build()
                .expect("name is set")
        })
        .collect()
}

fn storage(location: String) -> StorageDescriptor {
    StorageDescriptor::builder()
        .set_columns(Some(columns()))
        .location(location)
        .input_format(INPUT_FORMAT)
        .output_format(OUTPUT_FORMAT)
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(SERDE)
                .parameters("serialization.format", "1")
                .build(),
        )
        .compressed(true)
        .build()
}

fn same_columns(a: &[Column], b: &[Column]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.name() == y.name() && x.r#type() == y.r#type())
}

impl GlueCatalog {
    pub fn new(sdk: &aws_config::SdkConfig, target: GlueTarget, lake: &Lake) -> Self {
        Self {
            client: Client::new(sdk),
            target,
            lake: lake.clone(),
            ensured: OnceCell::new(),
        }
    }

    fn table_name(&self) -> String {
        format!("{}.{}", self.target.database, self.target.table)
    }

    fn table_input(&self) -> TableInput {
        TableInput::builder()
            .name(&self.target.table)
            .description("eventlake curated events: one partition per team and day")
            .table_type("EXTERNAL_TABLE")
            .parameters("classification", "parquet")
            .parameters("EXTERNAL", "TRUE")
            .parameters("parquet.compression", "ZSTD")
            .parameters("eventlake.managed", "true")
            .storage_descriptor(storage(
                self.lake.key_url(&format!("{CURATED_ROOT}/{TABLE}/")),
            ))
            .set_partition_keys(Some(partition_keys()))
            .build()
            .expect("name is set")
    }

    /// Creates the database and the table when absent, and updates the table when its columns
    /// differ from the contract. Runs once per catalog.
    pub async fn ensure_table(&self) -> Result<()> {
        self.ensured
            .get_or_try_init(|| async {
                let db = &self.target.database;
                match self.client.get_database().name(db).send().await {
                    Ok(_) => {}
                    Err(e) if is_code(&e, "EntityNotFoundException") => {
                        let input = DatabaseInput::builder()
                            .name(db)
                            .description("eventlake")
                            .build()
                            .expect("name is set");
                        match self.client.create_database().database_input(input).send().await {
                            Ok(_) => tracing::info!(database = %db, "created the Glue database"),
                            Err(e) if is_code(&e, "AlreadyExistsException") => {}
                            Err(e) => return Err(glue_error("CreateDatabase", db.clone(), e)),
                        }
                    }
                    Err(e) => return Err(glue_error("GetDatabase", db.clone(), e)),
                }
                let got = self
                    .client
                    .get_table()
                    .database_name(db)
                    .name(&self.target.table)
                    .send()
                    .await;
                match got {
                    Ok(out) => {
                        let table = out.table().expect("GetTable returns a table");
                        let current = table
                            .storage_descriptor()
                            .map(|s| s.columns())
                            .unwrap_or_default();
                        if !same_columns(current, &columns())
                            || !same_columns(table.partition_keys(), &partition_keys())
                        {
                            self.client
                                .update_table()
                                .database_name(db)
                                .table_input(self.table_input())
                                .send()
                                .await
                                .map_err(|e| glue_error("UpdateTable", self.table_name(), e))?;
                            tracing::info!(table = %self.table_name(), "updated the Glue table's columns to the contract");
                        }
                    }
                    Err(e) if is_code(&e, "EntityNotFoundException") => {
                        let index = PartitionIndex::builder()
                            .index_name("team_dt")
                            .keys("team")
                            .keys("dt")
                            .build()
                            .expect("keys and name are set");
                        match self
                            .client
                            .create_table()
                            .database_name(db)
                            .table_input(self.table_input())
                            .partition_indexes(index)
                            .send()
                            .await
                        {
                            Ok(_) => tracing::info!(table = %self.table_name(), "created the Glue table"),
                            Err(e) if is_code(&e, "AlreadyExistsException") => {}
                            Err(e) => return Err(glue_error("CreateTable", self.table_name(), e)),
                        }
                    }
                    Err(e) => return Err(glue_error("GetTable", self.table_name(), e)),
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Reads our entry back from a Glue partition. A partition eventlake did not write (no
    /// parameters of ours) becomes an entry with no files whose version names its location, so
    /// the next commit repoints it.
    fn entry_of(&self, p: &Partition) -> Option<PartitionEntry> {
        let values = p.values();
        let team = TeamName::new(values.first()?).ok()?;
        let dt = PartitionDate::parse(values.get(1)?).ok()?;
        let partition = PartitionKey { team, dt };
        let location = p
            .storage_descriptor()
            .and_then(|s| s.location())
            .unwrap_or("")
            .to_owned();
        let empty = HashMap::new();
        let params = p.parameters().unwrap_or(&empty);
        let Some(version) = params.get(P_VERSION) else {
            return Some(PartitionEntry {
                partition,
                version: format!("foreign:{location}"),
                location: self.lake.key_of_url(&location).unwrap_or(location),
                manifest: String::new(),
                raw_fingerprint: String::new(),
                rows: 0,
                files: Vec::new(),
                committed_at: String::new(),
            });
        };
        let files: Vec<DataFile> = params
            .get(P_FILES)
            .and_then(|f| serde_json::from_str(f).ok())
            .unwrap_or_default();
        Some(PartitionEntry {
            partition,
            version: version.clone(),
            location: self.lake.key_of_url(&location).unwrap_or(location),
            manifest: params.get(P_MANIFEST).cloned().unwrap_or_default(),
            raw_fingerprint: params.get(P_FINGERPRINT).cloned().unwrap_or_default(),
            rows: params.get(P_ROWS).and_then(|r| r.parse().ok()).unwrap_or(0),
            files,
            committed_at: params.get(P_COMMITTED_AT).cloned().unwrap_or_default(),
        })
    }

    fn partition_input(&self, e: &PartitionEntry) -> PartitionInput {
        let files = serde_json::to_string(&e.files).expect("files serialise");
        PartitionInput::builder()
            .values(e.partition.team.to_string())
            .values(e.partition.dt.to_string())
            .storage_descriptor(storage(self.lake.key_url(&e.location)))
            .parameters(P_VERSION, &e.version)
            .parameters(P_FINGERPRINT, &e.raw_fingerprint)
            .parameters(P_ROWS, e.rows.to_string())
            .parameters(P_MANIFEST, &e.manifest)
            .parameters(P_COMMITTED_AT, &e.committed_at)
            .parameters(P_FILES, files)
            .build()
    }
}

#[async_trait]
impl Catalog for GlueCatalog {
    async fn get(&self, partition: &PartitionKey) -> Result<Option<PartitionEntry>> {
        match self
            .client
            .get_partition()
            .database_name(&self.target.database)
            .table_name(&self.target.table)
            .partition_values(partition.team.to_string())
            .partition_values(partition.dt.to_string())
            .send()
            .await
        {
            Ok(out) => Ok(out.partition().and_then(|p| self.entry_of(p))),
            Err(e) if is_code(&e, "EntityNotFoundException") => Ok(None),
            Err(e) => Err(glue_error(
                "GetPartition",
                format!("{} {partition}", self.table_name()),
                e,
            )),
        }
    }

    async fn list(&self) -> Result<Vec<PartitionEntry>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_partitions()
                .database_name(&self.target.database)
                .table_name(&self.target.table)
                .set_next_token(token.take())
                .send()
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) if is_code(&e, "EntityNotFoundException") => return Ok(out),
                Err(e) => return Err(glue_error("GetPartitions", self.table_name(), e)),
            };
            out.extend(page.partitions().iter().filter_map(|p| self.entry_of(p)));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(out)
    }

    async fn commit(
        &self,
        entry: &PartitionEntry,
        expected: Option<&str>,
    ) -> Result<CommitOutcome> {
        self.ensure_table().await?;
        let target = format!("{} {}", self.table_name(), entry.partition);
        let current = self.get(&entry.partition).await?;
        match (&current, expected) {
            (None, None) => {
                match self
                    .client
                    .create_partition()
                    .database_name(&self.target.database)
                    .table_name(&self.target.table)
                    .partition_input(self.partition_input(entry))
                    .send()
                    .await
                {
                    Ok(_) => Ok(CommitOutcome::Committed),
                    Err(e) if is_code(&e, "AlreadyExistsException") => {
                        settle(entry, self.get(&entry.partition).await?.as_ref())
                    }
                    Err(e) => Err(glue_error("CreatePartition", target, e)),
                }
            }
            (Some(c), Some(exp)) if c.version == exp => {
                self.client
                    .update_partition()
                    .database_name(&self.target.database)
                    .table_name(&self.target.table)
                    .partition_value_list(entry.partition.team.to_string())
                    .partition_value_list(entry.partition.dt.to_string())
                    .partition_input(self.partition_input(entry))
                    .send()
                    .await
                    .map_err(|e| glue_error("UpdatePartition", target, e))?;
                Ok(CommitOutcome::Committed)
            }
            _ => settle(entry, current.as_ref()),
        }
    }
}
