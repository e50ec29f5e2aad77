//! The local engine: a DataFusion session with Athena's functions, the `events` table over the
//! committed versions, and the planner rules; running SQL and rendering its result.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::DataFusionError;
use datafusion::common::tree_node::Transformed;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::eliminate_group_by_constant::EliminateGroupByConstant;
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::DFParserBuilder;

use eventlake_catalog::{Catalog, GlueTarget, Lake};

use crate::error::Result;
use crate::rules::few_groups::FewGroupsOnOneThread;
use crate::rules::per_value::PerValueStrings;
use crate::rules::semi_join::DistinctSemiJoinSide;
use crate::rules::{CountFromCatalog, SplitByPartition};
use crate::table::CommittedEvents;
use crate::trino::dialect::AthenaDialect;

/// The catalog Athena reads Glue's databases in.
const ATHENA_CATALOG: &str = "awsdatacatalog";

/// The engine's options: DATAFUSION_* environment variables tune it (e.g.
/// DATAFUSION_EXECUTION_TARGET_PARTITIONS); ours are defaults they can override.
fn config() -> Result<SessionConfig> {
    // Filters are evaluated while Parquet decodes only in the scans where that pays, which the
    // table decides per scan (`table.rs`, `row_filters_pay`); DataFusion's default (off) stays
    // the session's.
    let mut options = datafusion::config::ConfigOptions::from_env()?;
    // Off whatever the environment says: with `max(col)` beside `max(<expression>)` (or `min`),
    // DataFusion 55 pushes a filter for the column's bound into the scan and drops rows the
    // other aggregate needs (`max(received_at - event_time), max(event_type)` returned a smaller
    // first maximum). The differential test against DuckDB found it.
    options.optimizer.enable_aggregate_dynamic_filter_pushdown = false;
    // Where in the text a column or a call is, so that an error can say where.
    options.sql_parser.collect_spans = true;
    // NULLs sort last whatever the direction, as on Athena (DataFusion put them first under
    // DESC, as PostgreSQL does): `ORDER BY n DESC LIMIT 10` gives the ten largest.
    options.sql_parser.default_null_ordering = "nulls_last".into();
    // A hash join's runtime filter on its probe side's keys, evaluated row by row where the scan
    // filters rows (see `row_filters_pay`), cost more than it saved on every join measured:
    // keys such as user and session ids are spread over every file, so it prunes nothing and
    // only tests each row. `DATAFUSION_OPTIMIZER_ENABLE_JOIN_DYNAMIC_FILTER_PUSHDOWN=true` brings
    // it back.
    if std::env::var_os("DATAFUSION_OPTIMIZER_ENABLE_JOIN_DYNAMIC_FILTER_PUSHDOWN").is_none() {
        options.optimizer.enable_join_dynamic_filter_pushdown = false;
    }
    // A sort of up to 32 MiB (of one partition) joins its batches and sorts them at once, where
    // DataFusion's default (1 MiB) sorts each batch and merges them: window functions over
    // users or sessions of the 3M-event lake took 0.70 to 0.91 of the time, at a lower peak
    // (243 against 321 MB for `lead(...) OVER (PARTITION BY user_id ORDER BY event_time)`);
    // at 64 MiB the 10M lake's partitions, of about 44 MB, were 5 to 8 % slower than merged.
    if std::env::var_os("DATAFUSION_EXECUTION_SORT_IN_PLACE_THRESHOLD_BYTES").is_none() {
        options.execution.sort_in_place_threshold_bytes = 32 * 1024 * 1024;
    }
    // Athena's `information_schema` is registered with the tables (`information_schema.rs`).
    Ok(SessionConfig::from(options))
}

/// DataFusion's analyzer rules, after the check that text is not compared with another type
/// (`trino/mixed_types.rs`) and Athena's type for a double beside a decimal in a set
/// operation (`trino/set_doubles.rs`), which must come before DataFusion's type coercion, and
/// before integer arithmetic that fails on overflow (`trino/overflow.rs`), which needs the
/// coerced types.
pub(crate) fn analyzer_rules() -> Vec<Arc<dyn datafusion::optimizer::AnalyzerRule + Send + Sync>> {
    std::iter::once(Arc::new(crate::trino::durations::IntervalsWithoutDays) as _)
        .chain(std::iter::once(
            Arc::new(crate::trino::using::UsingColumnOfBothSides) as _,
        ))
        .chain(std::iter::once(
            Arc::new(crate::trino::set_all::SetOperationsAll) as _,
        ))
        .chain(std::iter::once(
            Arc::new(crate::trino::mixed_types::MixedTypes) as _,
        ))
        .chain(std::iter::once(
            Arc::new(crate::trino::set_doubles::DoublesInSets) as _,
        ))
        .chain(datafusion::optimizer::Analyzer::new().rules)
        .chain(std::iter::once(
            Arc::new(crate::trino::overflow::CheckedIntegerArithmetic::default()) as _,
        ))
        .chain(std::iter::once(
            Arc::new(crate::trino::guarded::ShortCircuitGuards) as _,
        ))
        .collect()
}

/// A session with Athena's functions and no table: for SQL over literals (the conformance
/// suite, `etl functions`).
pub fn functions_session() -> Result<SessionContext> {
    let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    rules.insert(0, Arc::new(crate::trino::guarded::GuardedConjuncts));
    let state = SessionStateBuilder::new()
        .with_config(config()?)
        .with_default_features()
        .with_physical_optimizer_rules(rules)
        .with_expr_planners(crate::trino::expr_planners())
        .with_type_planner(Arc::new(crate::trino::json_types::AthenaTypes))
        .with_analyzer_rules(analyzer_rules())
        .with_optimizer_rules(logical_rules())
        .build();
    let mut ctx = SessionContext::new_with_state(state);
    crate::trino::register(&mut ctx);
    Ok(ctx)
}

/// A DataFusion session with `events` registered over the catalog's committed versions, in
/// the Glue database `eventlake` (see [`session_named`]).
pub async fn session(lake: &Lake, catalog: &dyn Catalog) -> Result<SessionContext> {
    session_named(lake, catalog, &GlueTarget::default()).await
}

/// A DataFusion session with the lake's table registered as Athena names it: `events` (and the
/// Glue table's name, when another) in a schema named after the Glue database, in the catalog
/// `awsdatacatalog`. So the names a query written for Athena gives the table (`events`,
/// `eventlake.events`, `"AwsDataCatalog"."eventlake"."events"`) all read it.
pub async fn session_named(
    lake: &Lake,
    catalog: &dyn Catalog,
    names: &GlueTarget,
) -> Result<SessionContext> {
    let config = config()?.with_default_catalog_and_schema(ATHENA_CATALOG, &names.database);
    let entries = catalog.list().await?;
    // Our physical rules go before DataFusion's distribution and sorting requirements are
    // enforced, so that those see the plan they will run.
    let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "EnsureRequirements")
        .unwrap_or(0);
    rules.insert(at, Arc::new(FewGroupsOnOneThread::new(&entries)));
    // First: a filter's conjuncts are guarded before any rule moves one of them.
    rules.insert(0, Arc::new(crate::trino::guarded::GuardedConjuncts));
    // Before orderings are enforced: a grouping-set key a filter pins is no constant above.
    rules.insert(
        at,
        Arc::new(crate::rules::grouping_set_keys::GroupingSetKeysVary),
    );
    crate::rules::grouped_build::insert(&mut rules);
    // Before the first projection is merged into its scan (see the rule).
    let at = rules
        .iter()
        .position(|r| r.name() == "ProjectionPushdown")
        .unwrap_or(rules.len());
    rules.insert(at, Arc::new(crate::rules::per_value::PerValueProjections));
    // Last, so that no later rule renumbers the columns its expressions read.
    let end = rules
        .iter()
        .position(|r| r.name() == "SanityCheckPlan")
        .unwrap_or(rules.len());
    rules.insert(end, Arc::new(PerValueStrings));
    // After the rule below has replaced the windows it wants, and the windows it made are
    // computed by ranges where they can be.
    rules.insert(end, Arc::new(crate::rules::sorted_windows::SortedWindows));
    rules.insert(end, Arc::new(crate::rules::whole_windows::WholeWindows));
    // After the top-k sorts are placed and have their filters on the scan.
    rules.insert(end, Arc::new(crate::rules::newest_first::NewestFirst));
    // After the sorts are placed: it replaces the sort under a `row_number() = 1` window.
    rules.insert(end, Arc::new(crate::rules::first_per_key::FirstPerKey));
    // After the repartitions and sorts are placed, before the plan is checked.
    rules.insert(
        end,
        Arc::new(crate::rules::window_partitions::MoreWindowPartitions),
    );
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_expr_planners(crate::trino::expr_planners())
        .with_type_planner(Arc::new(crate::trino::json_types::AthenaTypes))
        .with_analyzer_rules(analyzer_rules())
        .with_optimizer_rules(logical_rules())
        .with_physical_optimizer_rules(rules)
        .build();
    let mut ctx = SessionContext::new_with_state(state);
    crate::trino::register(&mut ctx);
    let url = ObjectStoreUrl::parse(lake.store_url())?;
    ctx.register_object_store(url.as_ref(), Arc::clone(lake.store()));
    ctx.add_optimizer_rule(Arc::new(crate::trino::FuseJsonCast));
    ctx.add_optimizer_rule(Arc::new(CountFromCatalog::new(&entries)?));
    ctx.add_optimizer_rule(Arc::new(SplitByPartition::new(&entries)?));
    ctx.add_optimizer_rule(Arc::new(DistinctSemiJoinSide));
    ctx.add_optimizer_rule(Arc::new(
        crate::rules::counts_before_unnest::CountsBeforeUnnest::new(&entries),
    ));
    // After the catalog's counts, which answer some grouping sets without reading a file.
    ctx.add_optimizer_rule(Arc::new(
        crate::rules::grouping_sets::PreAggregateGroupingSets,
    ));
    // After the rules that split an aggregation by partition, which answer `count(DISTINCT …)`
    // per team or day their own way.
    ctx.add_optimizer_rule(Arc::new(
        crate::rules::distinct_with_others::DistinctWithOtherAggregates,
    ));
    let table = Arc::new(CommittedEvents::new(lake, &entries)?);
    ctx.register_table("events", Arc::clone(&table) as _)?;
    // The same with Athena's hidden columns, which a query that names one reads.
    let hidden = Arc::new(CommittedEvents::with_hidden_columns(lake, &entries)?);
    ctx.register_table(
        crate::trino::hidden::hidden_table("events").as_str(),
        Arc::clone(&hidden) as _,
    )?;
    // Athena's table of a table's partitions, `"events$partitions"`: a row of partition keys
    // per partition the catalog lists.
    let partitions = Arc::new(partitions_table(&entries)?);
    ctx.register_table(PARTITIONS_OF_EVENTS, Arc::clone(&partitions) as _)?;
    if names.table != "events" {
        ctx.register_table(names.table.as_str(), table)?;
        ctx.register_table(
            crate::trino::hidden::hidden_table(&names.table).as_str(),
            hidden,
        )?;
        ctx.register_table(format!("{}$partitions", names.table), partitions)?;
    }
    // As the Athena console writes it, quoted.
    if let Some(athena) = ctx.catalog(ATHENA_CATALOG) {
        crate::information_schema::register(athena.as_ref(), ATHENA_CATALOG).await?;
        ctx.register_catalog("AwsDataCatalog", athena);
    }
    Ok(ctx)
}

/// The name of the table of `events`' partitions, as Athena names such a table.
const PARTITIONS_OF_EVENTS: &str = "events$partitions";

/// `team` and `dt` of every partition the catalog lists, sorted.
fn partitions_table(
    entries: &[eventlake_catalog::PartitionEntry],
) -> Result<datafusion::datasource::MemTable> {
    use arrow::array::StringArray;
    let mut listed: Vec<(String, String)> = entries
        .iter()
        .map(|e| (e.partition.team.to_string(), e.partition.dt.to_string()))
        .collect();
    listed.sort();
    let schema = Arc::new(arrow::datatypes::Schema::new(
        eventlake_contract::schema::partition_fields(),
    ));
    let teams: StringArray = listed.iter().map(|(t, _)| Some(t.as_str())).collect();
    let days: StringArray = listed.iter().map(|(_, d)| Some(d.as_str())).collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(teams), Arc::new(days)])?;
    Ok(datafusion::datasource::MemTable::try_new(
        schema,
        vec![vec![batch]],
    )?)
}

/// DataFusion's logical rules, [`GroupByDerived`] in place of the one it wraps,
/// [`crate::rules::not_in::NotInAsAntiJoin`] where a `NOT IN` has just become a join, and
/// [`crate::rules::window_keys::WindowKeysAsColumns`] last.
fn logical_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules: Vec<Arc<dyn OptimizerRule + Send + Sync>> =
        datafusion::optimizer::Optimizer::new()
            .rules
            .into_iter()
            .map(|r| -> Arc<dyn OptimizerRule + Send + Sync> {
                if r.name() == GroupByDerived::NAME {
                    Arc::new(GroupByDerived(EliminateGroupByConstant::new()))
                } else {
                    r
                }
            })
            .collect();
    rules.push(Arc::new(crate::rules::window_keys::WindowKeysAsColumns));
    crate::rules::not_in::insert(&mut rules);
    rules
}

/// DataFusion's `eliminate_group_by_constant` (a grouping key computed from other keys is
/// computed after the aggregation), leaving the plan as it was when the projection it rebuilds
/// cannot be built: DataFusion names a cast after the column it casts, so grouping by
/// `CAST(dt AS date)` and `dt` made two outputs of one name there and failed the query.
#[derive(Debug)]
struct GroupByDerived(EliminateGroupByConstant);

impl GroupByDerived {
    const NAME: &str = "eliminate_group_by_constant";
}

impl OptimizerRule for GroupByDerived {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        self.0.apply_order()
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> datafusion::common::Result<Transformed<LogicalPlan>> {
        if !matches!(plan, LogicalPlan::Aggregate(_)) {
            return self.0.rewrite(plan, config);
        }
        let before = plan.clone();
        Ok(self
            .0
            .rewrite(plan, config)
            .unwrap_or_else(|_| Transformed::no(before)))
    }
}

/// Runs one SQL statement and collects its result.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let df = planned(ctx, sql).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    Ok((schema, batches))
}

/// One SQL statement planned as Athena reads it; a refused statement says where, when its text
/// was planned as written.
async fn planned(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    let prepared = prepare(ctx, sql)?;
    athena_names(ctx, sql).await?;
    // A place DataFusion names is in the text it read: the user's own, unless it was rewritten.
    let as_written = prepared == sql;
    match dataframe(ctx, &prepared).await {
        Ok(df) => Ok(df),
        Err(e) if as_written => Err(e.located()),
        Err(e) => Err(e),
    }
}

/// Runs one SQL statement and writes its result to `out` as [`render`] does, batch by batch as
/// they come for CSV and JSON (an export of the whole table is never held in memory; the table
/// form needs every row for its widths). Returns the rows written. A reader that went away (a
/// closed pipe, `| head`) ends the query early, without an error.
pub async fn write_sql(
    ctx: &SessionContext,
    sql: &str,
    format: Format,
    out: &mut dyn std::io::Write,
) -> Result<usize> {
    use futures::StreamExt;
    let df = planned(ctx, sql).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let closed = std::rc::Rc::new(std::cell::Cell::new(false));
    let mut pipe = Pipe {
        out,
        closed: std::rc::Rc::clone(&closed),
    };
    let mut rows = 0;
    if format == Format::Table {
        let batches = df.collect().await?;
        rows = batches.iter().map(RecordBatch::num_rows).sum();
        let text = render(&schema, &batches, format)?;
        return match std::io::Write::write_all(&mut pipe, text.as_bytes()) {
            Err(_) if closed.get() => Ok(rows),
            r => r
                .map(|()| rows)
                .map_err(|e| crate::Error::io("cannot write the result to", "output", e)),
        };
    }
    let mut stream = df.execute_stream().await?;
    let ended = |r: std::result::Result<(), arrow::error::ArrowError>| match r {
        Err(_) if closed.get() => Ok(false),
        Err(e) => Err(crate::Error::from(e)),
        Ok(()) => Ok(true),
    };
    match format {
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut pipe);
            let mut wrote = false;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows();
                if !ended(w.write(&printable(&batch, format)?))? {
                    return Ok(rows);
                }
                wrote = true;
            }
            if !wrote {
                // The header alone.
                let empty = RecordBatch::new_empty(Arc::clone(&schema));
                ended(w.write(&printable(&empty, format)?))?;
            }
        }
        Format::Json | Format::Table => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut pipe);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows();
                if !ended(w.write(&printable(&batch, format)?))? {
                    return Ok(rows);
                }
            }
            ended(w.finish())?;
        }
    }
    match std::io::Write::flush(&mut pipe) {
        Err(_) if closed.get() => Ok(rows),
        r => r
            .map(|()| rows)
            .map_err(|e| crate::Error::io("cannot write the result to", "output", e)),
    }
}

/// Output that notes when its reader has gone away (a broken pipe).
struct Pipe<'a> {
    out: &'a mut dyn std::io::Write,
    closed: std::rc::Rc<std::cell::Cell<bool>>,
}

impl std::io::Write for Pipe<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.out.write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.out.flush();
        self.note(r)
    }
}

impl Pipe<'_> {
    fn note<T>(&self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            self.closed.set(true);
        }
        r
    }
}

/// Plans one prepared statement, read in Athena's dialect (lambdas included): what
/// `SessionContext::sql` does with DataFusion's configured dialect.
pub async fn dataframe(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    let state = ctx.state();
    let limit = state.config().options().sql_parser.recursion_limit.get();
    let parse = |sql: &str| -> Result<datafusion::sql::parser::Statement> {
        let mut statements = DFParserBuilder::new(sql)
            .with_dialect(&AthenaDialect)
            .with_recursion_limit(limit)
            .build()?
            .parse_statements()?;
        if statements.len() != 1 {
            return Err(DataFusionError::Plan(format!(
                "one SQL statement at a time, not {}",
                statements.len()
            ))
            .into());
        }
        Ok(statements.pop_front().expect("one statement"))
    };
    let mut statement = parse(sql)?;
    if let Some(df) = athena_metadata(ctx, &statement).await? {
        return Ok(df);
    }
    // Names match whatever their case (`"Team"` is `team`), and the outputs keep the names the
    // text gives them (`count(*) AS Total` is `Total`), as on Athena.
    let original = statement.clone();
    let written = |width: usize| match &original {
        datafusion::sql::parser::Statement::Statement(s) => {
            crate::trino::select::written_names(s, width)
        }
        _ => vec![],
    };
    if let Some(folded) = crate::trino::select::quoted_names_folded(sql) {
        statement = parse(&folded)?;
    }
    athena_statement(&mut statement)?;
    // Held until the statement is planned (its plan keeps the tables it reads).
    let _computed = crate::with_once::computed_once(ctx, &mut statement).await;
    let plan = match state.statement_to_plan(statement.clone()).await {
        Err(e)
            if e.to_string()
                .contains("Projections require unique expression names") =>
        {
            use datafusion::sql::parser::Statement as DF;
            let named = match &mut statement {
                DF::Statement(s) => crate::trino::select::outputs_named_apart(s),
                _ => None,
            };
            let Some(named) = named else {
                return Err(e.into());
            };
            let plan = state.statement_to_plan(statement).await?;
            named_as_written(plan, &named)?
        }
        Err(e)
            if e.to_string()
                .contains("Schema contains duplicate unqualified field name") =>
        {
            use datafusion::sql::parser::Statement as DF;
            let DF::Statement(s) = &mut statement else {
                return Err(e.into());
            };
            if !crate::trino::select::casts_named_apart(s) {
                return Err(e.into());
            }
            let plan = state.statement_to_plan(statement).await?;
            let written = written(plan.schema().fields().len());
            shown_as_written(plan, &written)?
        }
        planned => {
            let plan = planned?;
            let written = written(plan.schema().fields().len());
            shown_as_written(plan, &written)?
        }
    };
    Ok(ctx.execute_logical_plan(plan).await?)
}

/// `plan`'s outputs under the names the text wrote (see
/// [`crate::trino::select::written_names`]), when one differs from the planner's (which folds
/// an unquoted name to lower case).
fn shown_as_written(
    plan: datafusion::logical_expr::LogicalPlan,
    written: &[Option<String>],
) -> Result<datafusion::logical_expr::LogicalPlan> {
    let fields = plan.schema().fields();
    if written.len() != fields.len()
        || written
            .iter()
            .zip(fields.iter())
            .all(|(w, f)| w.as_ref().is_none_or(|w| w == f.name()))
    {
        return Ok(plan);
    }
    let named: Vec<(String, String)> = written
        .iter()
        .zip(fields.iter())
        .filter_map(|(w, f)| Some((f.name().clone(), w.clone()?)))
        .collect();
    named_as_written(plan, &named)
}

/// `plan`'s outputs under the names Athena shows (`named`: each name given for planning, with
/// the one shown), two or more of them alike; each output is qualified by its place, which
/// keeps them apart inside the plan.
fn named_as_written(
    plan: datafusion::logical_expr::LogicalPlan,
    named: &[(String, String)],
) -> Result<datafusion::logical_expr::LogicalPlan> {
    use datafusion::common::Column;
    use datafusion::logical_expr::{Expr, LogicalPlanBuilder};
    let outputs: Vec<Expr> = plan
        .schema()
        .iter()
        .enumerate()
        .map(|(place, (qualifier, field))| {
            let shown = named
                .iter()
                .find(|(own, _)| own == field.name())
                .map_or(field.name().as_str(), |(_, shown)| shown.as_str());
            Expr::Column(Column::new(qualifier.cloned(), field.name()))
                .alias_qualified(Some(format!("_{place}")), shown)
        })
        .collect();
    Ok(LogicalPlanBuilder::from(plan).project(outputs)?.build()?)
}

/// `DESCRIBE t` and `SHOW COLUMNS FROM t` with Athena's types (`varchar`, `timestamp(3)`, not
/// arrow's) and the partition keys marked, and `SHOW PARTITIONS t` as Athena lists them
/// (`team=checkout/dt=2026-11-20`), for a registered table; `None` for any other statement.
async fn athena_metadata(
    ctx: &SessionContext,
    statement: &datafusion::sql::parser::Statement,
) -> Result<Option<DataFrame>> {
    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::sql::parser::Statement as DF;
    use datafusion::sql::sqlparser::ast::Statement as S;
    use eventlake_contract::schema::PARTITION_COLUMNS;
    let DF::Statement(s) = statement else {
        return Ok(None);
    };
    match s.as_ref() {
        S::ShowTables { show_options, .. } => {
            let schema = show_options
                .show_in
                .as_ref()
                .and_then(|i| i.parent_name.as_ref())
                .and_then(|n| n.0.last())
                .and_then(|p| p.as_ident())
                .map(|i| i.value.clone());
            let state = ctx.state();
            let default = &state.config_options().catalog;
            let schema = schema.unwrap_or_else(|| default.default_schema.clone());
            let Some(found) = ctx
                .catalog(&default.default_catalog)
                .and_then(|c| c.schema(&schema.to_lowercase()))
            else {
                return Err(crate::Error::InvalidArgument(format!(
                    "SHOW TABLES: no database named {schema}"
                )));
            };
            // Athena lists a database's tables, not the tables of their partitions.
            let names = found
                .table_names()
                .into_iter()
                .filter(|n| !n.contains('$'))
                .collect();
            return listing(ctx, "tab_name", names, show_options).map(Some);
        }
        // Athena's functions that run here, with their kind.
        S::ShowFunctions { filter } => {
            use datafusion::sql::sqlparser::ast::ShowStatementFilter as F;
            let pattern = match filter {
                None => None,
                Some(F::Like(p) | F::NoKeyword(p)) => Some((p.clone(), false)),
                Some(F::ILike(p)) => Some((p.clone(), true)),
                Some(F::Where(_)) => {
                    return Err(crate::Error::InvalidArgument(
                        "SHOW FUNCTIONS takes a LIKE pattern ('array%'), not a WHERE clause".into(),
                    ));
                }
            };
            let like = match &pattern {
                Some((p, ci)) => Some(like_regex(p, *ci)?),
                None => None,
            };
            let state = ctx.state();
            let rows: Vec<(&str, &str)> = crate::trino::missing::supported(ctx)
                .into_iter()
                .filter(|n| like.as_ref().is_none_or(|re| re.is_match(n)))
                .map(|n| {
                    let kind = if state.window_functions().contains_key(n) {
                        "window"
                    } else if state.aggregate_functions().contains_key(n) {
                        "aggregate"
                    } else {
                        "scalar"
                    };
                    (n, kind)
                })
                .collect();
            let batch = RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("Function", DataType::Utf8, false),
                    Field::new("Function Type", DataType::Utf8, false),
                ])),
                vec![
                    Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
                    Arc::new(rows.iter().map(|r| Some(r.1)).collect::<StringArray>()),
                ],
            )?;
            return Ok(Some(ctx.read_batch(batch)?));
        }
        // DataFusion answered with an empty definition per catalog name; the DDL is Glue's.
        S::ShowCreate { obj_type, obj_name } => {
            return Err(crate::Error::InvalidArgument(format!(
                "SHOW CREATE {obj_type} {obj_name}: the local engine keeps no DDL; DESCRIBE lists the \
                 columns and partition keys, and --engine athena shows the Glue table's"
            )));
        }
        S::ShowDatabases { show_options, .. } | S::ShowSchemas { show_options, .. } => {
            let state = ctx.state();
            let default = &state.config_options().catalog;
            let names = ctx
                .catalog(&default.default_catalog)
                .map(|c| c.schema_names())
                .unwrap_or_default()
                .into_iter()
                .filter(|n| n != "information_schema")
                .collect();
            return listing(ctx, "database_name", names, show_options).map(Some);
        }
        _ => {}
    }
    let (name, partitions) = match s.as_ref() {
        S::ExplainTable { table_name, .. } => (table_name.to_string(), false),
        S::ShowColumns { show_options, .. } => {
            match show_options
                .show_in
                .as_ref()
                .and_then(|i| i.parent_name.as_ref())
            {
                Some(n) => (n.to_string(), false),
                None => return Ok(None),
            }
        }
        S::ShowVariable { variable }
            if variable.len() >= 2 && variable[0].value.eq_ignore_ascii_case("partitions") =>
        {
            let last = variable.last().expect("two or more");
            (last.value.clone(), true)
        }
        _ => return Ok(None),
    };
    if !ctx.table_exist(name.as_str())? {
        return Ok(None);
    }
    let schema = ctx.table_provider(name.as_str()).await?.schema();
    if partitions {
        if !PARTITION_COLUMNS
            .iter()
            .all(|c| schema.column_with_name(c).is_some())
        {
            return Ok(None);
        }
        // The partitions the catalog lists, as Athena's come from Glue's, when the table has
        // them (see `partitions_table`); else those its rows are in.
        let listed = format!("{name}$partitions");
        let from = if ctx.table_exist(datafusion::common::TableReference::bare(listed.as_str()))? {
            format!("\"{listed}\"")
        } else {
            name
        };
        let sql = format!(
            "SELECT DISTINCT concat('team=', team, '/dt=', dt) AS partition FROM {from} ORDER BY 1"
        );
        return Ok(Some(ctx.sql(&sql).await?));
    }
    let fields = schema.fields();
    let text = |f: &dyn Fn(&Field) -> String| -> Arc<StringArray> {
        Arc::new(fields.iter().map(|x| Some(f(x))).collect())
    };
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(
            ["Column", "Type", "Extra", "Comment"]
                .map(|c| Field::new(c, DataType::Utf8, false))
                .to_vec(),
        )),
        vec![
            text(&|f| f.name().clone()),
            text(&|f| crate::trino::trino_type(f.data_type())),
            text(&|f| {
                if PARTITION_COLUMNS.contains(&f.name().as_str()) {
                    "partition key".into()
                } else {
                    String::new()
                }
            }),
            text(&|_| String::new()),
        ],
    )?;
    Ok(Some(ctx.read_batch(batch)?))
}

/// A SQL `LIKE` pattern (`%` any text, `_` one character) as a regular expression matching
/// the whole name.
fn like_regex(pattern: &str, case_insensitive: bool) -> Result<regex::Regex> {
    let mut re = String::from("^");
    for c in pattern.chars() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::RegexBuilder::new(&re)
        .case_insensitive(case_insensitive)
        .build()
        .map_err(|e| crate::Error::InvalidArgument(format!("LIKE pattern '{pattern}': {e}")))
}

/// `names`, sorted, as the one column `column` of a `SHOW` statement, those its pattern
/// (`SHOW TABLES 'ev*'`, `SHOW DATABASES LIKE 'ev*|ops'`) matches: Athena's patterns, where `*`
/// is any text and `|` separates alternatives, whatever the case.
fn listing(
    ctx: &SessionContext,
    column: &str,
    mut names: Vec<String>,
    options: &datafusion::sql::sqlparser::ast::ShowStatementOptions,
) -> Result<DataFrame> {
    use datafusion::sql::sqlparser::ast::{
        ShowStatementFilter as F, ShowStatementFilterPosition as P,
    };
    let pattern = match &options.filter_position {
        Some(P::Infix(f) | P::Suffix(f)) => match f {
            F::Like(p) | F::ILike(p) | F::NoKeyword(p) => Some(p.as_str()),
            F::Where(_) => {
                return Err(crate::Error::InvalidArgument(
                    "SHOW takes a pattern ('ev*'), not a WHERE clause".into(),
                ));
            }
        },
        None => None,
    };
    if let Some(p) = pattern {
        let alternatives: Vec<String> = p
            .split('|')
            .map(|a| {
                a.trim()
                    .split('*')
                    .map(regex::escape)
                    .collect::<Vec<_>>()
                    .join(".*")
            })
            .collect();
        let re = regex::RegexBuilder::new(&format!("^(?:{})$", alternatives.join("|")))
            .case_insensitive(true)
            .build()
            .map_err(|e| crate::Error::InvalidArgument(format!("SHOW: pattern '{p}': {e}")))?;
        names.retain(|n| re.is_match(n));
    }
    names.sort();
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new(column, arrow::datatypes::DataType::Utf8, false),
    ]));
    let values: arrow::array::StringArray = names.iter().map(|n| Some(n.as_str())).collect();
    let batch = RecordBatch::try_new(schema, vec![Arc::new(values)])?;
    Ok(ctx.read_batch(batch)?)
}

/// The syntax tree as Athena reads it: output names, samples, decimal literals, `FETCH`
/// (`trino/select.rs`).
fn athena_statement(statement: &mut datafusion::sql::parser::Statement) -> Result<()> {
    use datafusion::sql::parser::Statement;
    match statement {
        Statement::Statement(s) => crate::trino::select::athena_select(s)?,
        Statement::Explain(e) => athena_statement(&mut e.statement)?,
        _ => {}
    }
    Ok(())
}

/// The SQL as the engine reads it: Athena's type syntax in casts rewritten, and a function the
/// engine lacks, or an operator Athena's SQL lacks (`^`, `::`), reported (name, line, column)
/// before anything runs.
pub fn prepare(ctx: &SessionContext, sql: &str) -> Result<String> {
    let written = crate::trino::missing::Written::read(sql);
    if let Some(m) = crate::trino::missing::first_missing(ctx, &written) {
        return Err(crate::Error::MissingFunction(m));
    }
    if let Some(f) = crate::trino::foreign::first_foreign(&written) {
        return Err(crate::Error::NotAthena(f));
    }
    if let Some(f) = crate::trino::local_only::first_local_only(ctx, &written) {
        return Err(crate::Error::NotAthena(f));
    }
    let sql = crate::trino::hidden::rewrite(ctx, sql);
    let sql = crate::trino::select::values_rows(&sql);
    let sql = crate::trino::json_types::athena_type_syntax(&sql);
    let sql = crate::trino::unnest::rewrite(&sql);
    Ok(crate::trino::syntax::rewrite(&sql))
}

/// The check of `sql` as written that needs the tables' columns: an output's alias read where
/// Athena reads only input columns (`GROUP BY t`, `HAVING c > 10`; see `trino/aliases.rs`).
pub async fn athena_names(ctx: &SessionContext, sql: &str) -> Result<()> {
    match crate::trino::aliases::first_alias_reference(ctx, sql).await {
        Some(f) => Err(crate::Error::NotAthena(f)),
        None => Ok(()),
    }
}

/// Output formats of `etl query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// A batch as the CSV and JSON writers take it: for CSV and the table, values are text as
/// Athena prints them (`[1, 2]`, `{a=1}`, `2026-11-20 10:00:00.000`, `1.0E10`, `0 00:56:52.896`);
/// for JSON, a map's keys become strings (a JSON object's keys are).
fn printable(batch: &RecordBatch, format: Format) -> Result<RecordBatch> {
    use arrow::array::{Array, ArrayRef, AsArray, MapArray, StructArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let changed = |t: &DataType| match format {
        Format::Csv | Format::Table => crate::trino::render::differs_from_arrow(t),
        Format::Json => matches!(t, DataType::Map(..)),
    };
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| changed(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        match (format, c.data_type()) {
            (Format::Csv | Format::Table, t) if changed(t) => {
                fields.push(Field::new(f.name(), DataType::Utf8, true));
                columns.push(Arc::new(crate::trino::render::column(c)));
            }
            (Format::Json, DataType::Map(entries, sorted)) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    fields.push(f.as_ref().clone());
                    columns.push(Arc::clone(c));
                    continue;
                };
                if kv[0].data_type() == &DataType::Utf8 {
                    fields.push(f.as_ref().clone());
                    columns.push(Arc::clone(c));
                    continue;
                }
                let m = c.as_map();
                let keys = arrow::compute::cast(m.keys(), &DataType::Utf8)?;
                let kv2 = arrow::datatypes::Fields::from(vec![
                    Field::new(kv[0].name(), DataType::Utf8, false),
                    kv[1].as_ref().clone(),
                ]);
                let entries2 = Arc::new(Field::new(
                    entries.name(),
                    DataType::Struct(kv2.clone()),
                    false,
                ));
                let map = MapArray::try_new(
                    Arc::clone(&entries2),
                    m.offsets().clone(),
                    StructArray::try_new(kv2, vec![keys, Arc::clone(m.values())], None)?,
                    m.nulls().cloned(),
                    *sorted,
                )?;
                fields.push(Field::new(f.name(), DataType::Map(entries2, *sorted), true));
                columns.push(Arc::new(map));
            }
            _ => {
                fields.push(f.as_ref().clone());
                columns.push(Arc::clone(c));
            }
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Renders a result for people (`table`) or programs (`csv`, `json`: one object per line).
pub fn render(schema: &SchemaRef, batches: &[RecordBatch], format: Format) -> Result<String> {
    Ok(match format {
        Format::Table => {
            if batches.iter().all(|b| b.num_rows() == 0) {
                let header: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                format!("{}\n(0 rows)\n", header.join(" | "))
            } else {
                let batches = batches
                    .iter()
                    .map(|b| printable(b, format))
                    .collect::<Result<Vec<_>>>()?;
                format!(
                    "{}\n",
                    arrow::util::pretty::pretty_format_batches(&batches)?
                )
            }
        }
        Format::Csv => {
            let mut out = Vec::new();
            {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                if batches.is_empty() {
                    w.write(&printable(
                        &RecordBatch::new_empty(Arc::clone(schema)),
                        format,
                    )?)?;
                }
                for b in batches {
                    w.write(&printable(b, format)?)?;
                }
            }
            String::from_utf8(out).expect("csv is UTF-8")
        }
        Format::Json => {
            let mut out = Vec::new();
            {
                let mut w = arrow::json::LineDelimitedWriter::new(&mut out);
                for b in batches {
                    w.write(&printable(b, format)?)?;
                }
                w.finish()?;
            }
            String::from_utf8(out).expect("json is UTF-8")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn csv_and_json_print_arrays_and_maps() {
        let ctx = functions_session().unwrap();
        let (schema, batches) = run_sql(
            &ctx,
            "SELECT ARRAY[1, 2] AS a, numeric_histogram(2, x) AS h \
             FROM (VALUES (1.0), (3.0)) AS t(x)",
        )
        .await
        .unwrap();
        let csv = render(&schema, &batches, Format::Csv).unwrap();
        assert_eq!(csv, "a,h\n\"[1, 2]\",\"{1.0=1.0, 3.0=1.0}\"\n");
        let json = render(&schema, &batches, Format::Json).unwrap();
        assert_eq!(json, "{\"a\":[1,2],\"h\":{\"1.0\":1.0,\"3.0\":1.0}}\n");
    }

    #[test]
    fn csv_and_the_table_print_timestamps_doubles_and_bytes_as_athena_does() {
        use arrow::array::{
            BinaryArray, Float32Array, Float64Array, TimestampMicrosecondArray,
            TimestampMillisecondArray,
        };
        use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        let utc = Some("UTC".into());
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "event_time",
                DataType::Timestamp(TimeUnit::Microsecond, utc.clone()),
                true,
            ),
            Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("d", DataType::Float64, true),
            Field::new("r", DataType::Float32, true),
            Field::new("b", DataType::Binary, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_763_632_800_123_456), None])
                        .with_timezone("UTC"),
                ),
                Arc::new(TimestampMillisecondArray::from(vec![Some(0), Some(-1)])),
                Arc::new(Float64Array::from(vec![Some(5.0), Some(1e10)])),
                Arc::new(Float32Array::from(vec![Some(0.1), None])),
                Arc::new(BinaryArray::from(vec![Some(&b"\xab\xcd"[..]), None])),
            ],
        )
        .unwrap();
        let csv = render(&schema, std::slice::from_ref(&batch), Format::Csv).unwrap();
        assert_eq!(
            csv,
            "event_time,t,d,r,b\n\
             2025-11-20 10:00:00.123,1970-01-01 00:00:00.000,5.0,0.1,ab cd\n\
             ,1969-12-31 23:59:59.999,1.0E10,,\n"
        );
        let table = render(&schema, std::slice::from_ref(&batch), Format::Table).unwrap();
        assert!(table.contains("| 2025-11-20 10:00:00.123 |"), "{table}");
        let json = render(&schema, &[batch], Format::Json).unwrap();
        assert!(
            json.starts_with("{\"event_time\":\"2025-11-20T10:00:00.123456Z\""),
            "{json}"
        );
    }

    #[tokio::test]
    async fn with_timezone_of_a_table_timestamp_is_a_timestamp_3_with_its_zone() {
        use arrow::array::TimestampMicrosecondArray;
        let ctx = functions_session().unwrap();
        let times =
            TimestampMicrosecondArray::from(vec![Some(1_763_632_800_123_456)]).with_timezone("UTC");
        let batch = RecordBatch::try_from_iter([("event_time", Arc::new(times) as _)]).unwrap();
        ctx.register_batch("t", batch).unwrap();
        let sql = "SELECT with_timezone(event_time, 'Asia/Tokyo') AS tokyo, \
                   with_timezone(event_time, 'UTC') AS utc, \
                   typeof(with_timezone(event_time, 'UTC')) AS ty FROM t";
        let mut csv = Vec::new();
        write_sql(&ctx, sql, Format::Csv, &mut csv).await.unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "tokyo,utc,ty\n2025-11-20 10:00:00.123 Asia/Tokyo,\
             2025-11-20 10:00:00.123 UTC,timestamp(3) with time zone\n"
        );
    }

    #[tokio::test]
    async fn a_result_is_written_as_it_comes_and_a_closed_reader_ends_it() {
        let ctx = functions_session().unwrap();
        let sql = "SELECT x, x * 2 AS y FROM unnest(sequence(1, 3)) AS t(x)";
        let mut csv = Vec::new();
        let rows = write_sql(&ctx, sql, Format::Csv, &mut csv).await.unwrap();
        assert_eq!(rows, 3);
        assert_eq!(String::from_utf8(csv).unwrap(), "x,y\n1,2\n2,4\n3,6\n");
        let mut json = Vec::new();
        write_sql(&ctx, sql, Format::Json, &mut json).await.unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            "{\"x\":1,\"y\":2}\n{\"x\":2,\"y\":4}\n{\"x\":3,\"y\":6}\n"
        );
        let mut empty = Vec::new();
        let sql = "SELECT x FROM unnest(sequence(1, 3)) AS t(x) WHERE x > 5";
        write_sql(&ctx, sql, Format::Csv, &mut empty).await.unwrap();
        assert_eq!(String::from_utf8(empty).unwrap(), "x\n");

        /// A reader that has gone away.
        struct Gone;
        impl std::io::Write for Gone {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
        }
        for format in [Format::Csv, Format::Json, Format::Table] {
            write_sql(&ctx, "SELECT 1 AS x", format, &mut Gone)
                .await
                .unwrap();
        }
        // Any other failure to write is an error.
        struct Full;
        impl std::io::Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::StorageFull.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert!(
            write_sql(&ctx, "SELECT 1 AS x", Format::Table, &mut Full)
                .await
                .is_err()
        );
    }
}
