//! The query engine's error. Each variant decides whether running the same step again can help
//! ([`Error::is_retryable`]).

use eventlake_catalog::AwsFailure;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lake or the catalog failed.
    #[error(transparent)]
    Lake(#[from] eventlake_catalog::Error),

    /// An argument or parameter is wrong; nothing ran.
    #[error("{0}")]
    InvalidArgument(String),

    /// The local engine failed to plan or run a query.
    #[error("query: {}", explain(.0))]
    Query(#[from] datafusion::error::DataFusionError),

    /// The local engine refused a query at a place in its text (1-based line and column).
    #[error("query: line {line}:{column}: {}", explain(.source))]
    QueryAt {
        line: u64,
        column: u64,
        source: datafusion::error::DataFusionError,
    },

    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    /// Athena refused or failed a call or a query.
    #[error("Athena: {message}")]
    Athena {
        message: String,
        failure: AwsFailure,
    },

    /// The query uses a function the local engine does not have; nothing ran.
    #[error("{0}")]
    MissingFunction(crate::trino::missing::MissingFunction),

    /// The query uses an operator or a form Athena's SQL does not have; nothing ran.
    #[error("{0}")]
    NotAthena(crate::trino::foreign::ForeignSyntax),

    /// A saved SQL file is unusable (syntax, header, parameters); nothing ran.
    #[error("{path}:{line}: {message}")]
    SavedQuery {
        path: String,
        line: usize,
        message: String,
    },

    /// A local file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A saved query failed while it was being timed.
    #[error("{query} ({run}): {source}")]
    Run {
        query: String,
        run: String,
        #[source]
        source: Box<Error>,
    },
}

/// DataFusion's message for a query's error, without what speaks to DataFusion's own developers:
/// a call that matches none of a function's signatures is reported as an internal error with a
/// plea to file a bug; the sentence naming the function, its argument types and its forms is
/// what the user needs. Syntax the planner does not take is named, not dumped as a syntax tree,
/// and a subquery test it cannot run where it stands says where it can.
fn explain(e: &datafusion::error::DataFusionError) -> String {
    // A check of ours that refuses a query speaks for itself: the name of the analyzer rule
    // DataFusion puts before its message means nothing to the user.
    if let datafusion::error::DataFusionError::Context(rule, inner) = e
        && (rule.starts_with("athena_") || rule == "type_coercion")
    {
        return explain(inner);
    }
    let text = e.strip_backtrace();
    if let Some(at) = text.find("Unsupported ast node ") {
        let node = &text[at + "Unsupported ast node ".len()..];
        let name: String = node
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        return format!(
            "{}syntax the local engine does not read: {name}",
            &text[..at]
        );
    }
    // A subquery where the planner cannot join it; `__in.` is the name a test in a select list
    // is rewritten to read its subquery by (see `select.rs`), met where it cannot be joined.
    let misplaced = ["InSubquery", "Exists", "ScalarSubquery"]
        .iter()
        .any(|test| {
            text.contains(&format!(
                "Physical plan does not support logical expression {test}"
            ))
        })
        || text.contains("No field named __in.");
    if misplaced {
        return "a subquery is read here in WHERE and HAVING, and as a value (in the select \
                list, a group key or an aggregate's argument over one table) when it meets the \
                outer query by equalities only (p.user_id = e.user_id); not here, over a join \
                or under another correlation: join the subquery, or compute the value in a \
                subquery of its own, then group or aggregate it"
            .into();
    }
    // The parser's (or its tokenizer's) refusal as a sentence, without the debug form of its
    // error around it; where it is goes before it (see `Error::located`).
    if let Some((message, _)) = parser_refusal(&text) {
        return message;
    }
    // A window function or an aggregate where rows are filtered or grouped, which Athena
    // refuses too; DataFusion's message dumps the expression's tree.
    for (test, what) in [
        ("WindowFunction", "a window function"),
        ("AggregateFunction", "an aggregate"),
    ] {
        if text.contains(&format!(
            "Physical plan does not support logical expression {test}"
        )) {
            return format!(
                "{what} cannot be read in WHERE, GROUP BY or a join's ON (as on Athena): \
                 compute it in a subquery, then filter or group that subquery's rows \
                 (an aggregate's filter is HAVING)"
            );
        }
    }
    // Which optimizer rule folded a constant that failed says nothing to the user.
    let text = match (
        text.starts_with("Optimizer rule '"),
        text.find("\ncaused by\n"),
    ) {
        (true, Some(at)) => text[at + "\ncaused by\n".len()..].to_string(),
        _ => text,
    };
    // `CAST(x AS VARCHAR(n))`'s refusal, without the name of the function that checks it.
    if let Some(at) = text.find("varchar_cast: ") {
        return text[at + "varchar_cast: ".len()..].to_string();
    }
    if text.contains("Divide by zero error") {
        return "Division by zero".into();
    }
    if let Some(missing) = missing_file(&text) {
        return missing;
    }
    if let Some(cast) = cast_failure(&text) {
        return cast;
    }
    if let Some(athena) = no_form_fits(&text).or_else(|| no_operator_fits(&text)) {
        return athena;
    }
    let text = match text.find("No function matches the given name and argument types") {
        Some(at) => &text[at..],
        None => text.as_str(),
    };
    // A call that fits none of a function's forms: DataFusion reports it as its own bug.
    let text = text
        .strip_prefix("Internal error: ")
        .filter(|t| t.contains("failed to match any signature"))
        .unwrap_or(text);
    match text.find("This issue was likely caused by a bug in DataFusion's code") {
        Some(at) => text[..at].trim_end().to_string(),
        None => text.to_string(),
    }
}

/// An arrow type as DataFusion prints it (`Utf8View`, `Timestamp(µs, "UTC")`) named as Athena
/// names it (`varchar`, `timestamp(3)`); the text as it is when it does not read as a type.
fn athena_type_name(arrow: &str) -> String {
    use std::str::FromStr;
    let arrow = arrow.trim();
    arrow::datatypes::DataType::from_str(arrow)
        .map(|t| crate::trino::trino_type(&t))
        .unwrap_or_else(|_| arrow.to_string())
}

/// `a, b(c, d)` cut at its commas outside parentheses.
fn top_level_parts(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        parts.push(&s[start..]);
    }
    parts
}

/// DataFusion's `No function matches the given name and argument types 'sum(Utf8View)'` (with
/// its own forms, in arrow's types) as Athena says it: `Unexpected parameters (varchar) for
/// function sum`.
fn no_form_fits(text: &str) -> Option<String> {
    const HEAD: &str = "No function matches the given name and argument types '";
    let rest = &text[text.find(HEAD)? + HEAD.len()..];
    let (call, _) = rest.split_once("'.")?;
    let (name, args) = call.split_once('(')?;
    let args = args.strip_suffix(')')?;
    let types: Vec<String> = top_level_parts(args)
        .into_iter()
        .map(athena_type_name)
        .collect();
    Some(format!(
        "Unexpected parameters ({}) for function {name}",
        types.join(", ")
    ))
}

/// DataFusion's `Cannot coerce arithmetic expression Utf8View + Int64 to valid types` as Athena
/// says it: `Cannot apply operator: varchar + bigint`.
fn no_operator_fits(text: &str) -> Option<String> {
    const HEAD: &str = "Cannot coerce arithmetic expression ";
    let rest = &text[text.find(HEAD)? + HEAD.len()..];
    let (expr, _) = rest.split_once(" to valid types")?;
    let (at, op) = [" + ", " - ", " * ", " / ", " % "]
        .iter()
        .filter_map(|op| expr.find(op).map(|at| (at, op.trim())))
        .min()?;
    let (left, right) = (&expr[..at], &expr[at + op.len() + 2..]);
    Some(format!(
        "Cannot apply operator: {} {op} {}",
        athena_type_name(left),
        athena_type_name(right)
    ))
}

/// A committed data file the store no longer has (deleted by hand, or by a lifecycle rule): which
/// one, and how its partition is written again from the raw zone, which still has its lines.
fn missing_file(text: &str) -> Option<String> {
    let rest = &text[text.find("Object at location ")? + "Object at location ".len()..];
    let (path, _) = rest.split_once(" not found")?;
    let segment = |name: &str| {
        path.split('/')
            .find_map(|s| s.strip_prefix(name))
            .map(str::to_owned)
    };
    let (team, dt) = (segment("team=")?, segment("dt=")?);
    Some(format!(
        "a data file of partition team={team}/dt={dt} is missing: {path}. The raw zone still has \
         its lines: `etl backfill --force --team {team} --from {dt} --to {dt}` writes the \
         partition again"
    ))
}

/// Arrow's `Cast error: Cannot cast string 'abc' to value of Int32 type` as Athena says it:
/// `Cannot cast 'abc' to integer`.
fn cast_failure(text: &str) -> Option<String> {
    let rest = &text[text.find("Cannot cast string '")? + "Cannot cast string '".len()..];
    let (value, rest) = rest.split_once("' to value of ")?;
    let arrow_type = rest.strip_suffix(" type")?;
    let athena_type = match arrow_type {
        "Int8" => "tinyint",
        "Int16" => "smallint",
        "Int32" => "integer",
        "Int64" => "bigint",
        "Float32" => "real",
        "Float64" => "double",
        "Boolean" => "boolean",
        "Date32" => "date",
        t if t.starts_with("Decimal") => "decimal",
        t if t.starts_with("Timestamp") => "timestamp",
        _ => return None,
    };
    Some(format!("Cannot cast '{value}' to {athena_type}"))
}

/// The message of the parser's or its tokenizer's refusal in DataFusion's `text` of it, and
/// where it is (line, column) when it says.
fn parser_refusal(text: &str) -> Option<(String, Option<(u64, u64)>)> {
    let inner = ["SQL error: ParserError(\"", "SQL error: TokenizerError(\""]
        .iter()
        .find_map(|p| text.strip_prefix(p))?
        .strip_suffix("\")")?
        .replace("\\\"", "\"");
    if let Some((message, place)) = inner.rsplit_once(" at Line: ")
        && let Some((line, column)) = place.split_once(", Column: ")
        && let (Ok(line), Ok(column)) = (line.parse(), column.parse())
    {
        return Some((
            message.trim_end_matches('.').to_string(),
            Some((line, column)),
        ));
    }
    Some((inner, None))
}

impl Error {
    /// Where in the query's text the engine refused it, when DataFusion says (a column it
    /// cannot find, a function it cannot call): `QueryAt` in place of `Query`.
    pub(crate) fn located(self) -> Self {
        match self {
            Error::Query(e) => match e.diagnostic().and_then(|d| d.span) {
                Some(span) if span.start.line > 0 => Error::QueryAt {
                    line: span.start.line,
                    column: span.start.column,
                    source: e,
                },
                _ => match parser_refusal(&e.strip_backtrace()) {
                    Some((_, Some((line, column)))) => Error::QueryAt {
                        line,
                        column,
                        source: e,
                    },
                    _ => Error::Query(e),
                },
            },
            other => other,
        }
    }

    /// Can running the same step again succeed?
    pub fn is_retryable(&self) -> bool {
        use datafusion::error::DataFusionError;
        match self {
            Error::Lake(e) => e.is_retryable(),
            Error::Query(DataFusionError::ObjectStore(e)) => {
                eventlake_catalog::storage_is_retryable(e)
            }
            Error::Query(DataFusionError::IoError(_)) => true,
            Error::Query(_) | Error::QueryAt { .. } | Error::Arrow(_) => false,
            Error::Athena { failure, .. } => failure.is_transient(),
            Error::InvalidArgument(_)
            | Error::SavedQuery { .. }
            | Error::MissingFunction(_)
            | Error::NotAthena(_) => false,
            Error::Io { .. } => true,
            Error::Run { source, .. } => source.is_retryable(),
        }
    }

    /// Where a check that runs before the query refused it (line, column) and why: a function
    /// the local engine lacks, or syntax Athena's SQL lacks.
    pub fn refused_at(&self) -> Option<(u64, u64, String)> {
        match self {
            Error::MissingFunction(m) => Some((m.line, m.column, m.what())),
            Error::NotAthena(n) => Some((n.line, n.column, n.what())),
            _ => None,
        }
    }

    pub fn io(what: &'static str, path: impl ToString, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn athena(failure: AwsFailure, message: impl Into<String>) -> Self {
        Error::Athena {
            message: message.into(),
            failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::error::DataFusionError;

    /// One case per variant: what a retry can fix.
    #[test]
    fn retries_are_decided_by_variant() {
        let store = |not_found: bool| {
            let source: Box<dyn std::error::Error + Send + Sync> = "x".into();
            if not_found {
                object_store::Error::NotFound {
                    path: "p".into(),
                    source,
                }
            } else {
                object_store::Error::Generic {
                    store: "S3",
                    source,
                }
            }
        };
        let cases: Vec<(Error, bool)> = vec![
            (
                eventlake_catalog::Error::storage("p", store(false)).into(),
                true,
            ),
            (eventlake_catalog::Error::Config("bad".into()).into(), false),
            (Error::InvalidArgument("bad".into()), false),
            (DataFusionError::Plan("no such column".into()).into(), false),
            (
                DataFusionError::ObjectStore(Box::new(store(false))).into(),
                true,
            ),
            (
                DataFusionError::ObjectStore(Box::new(store(true))).into(),
                false,
            ),
            (
                DataFusionError::IoError(std::io::Error::other("x")).into(),
                true,
            ),
            (
                arrow::error::ArrowError::InvalidArgumentError("x".into()).into(),
                false,
            ),
            (Error::athena(AwsFailure::Throttled, "slow down"), true),
            (Error::athena(AwsFailure::Refused, "query failed"), false),
            (
                Error::SavedQuery {
                    path: "q.sql".into(),
                    line: 1,
                    message: "m".into(),
                },
                false,
            ),
            (
                Error::io("cannot read", "q.sql", std::io::Error::other("x")),
                true,
            ),
            (
                Error::NotAthena(crate::trino::foreign::ForeignSyntax {
                    written: "^".into(),
                    instead: "write power(x, y)",
                    line: 1,
                    column: 8,
                }),
                false,
            ),
            (
                Error::Run {
                    query: "q".into(),
                    run: "run 1".into(),
                    source: Box::new(Error::athena(AwsFailure::Unavailable, "x")),
                },
                true,
            ),
        ];
        for (e, retryable) in cases {
            assert_eq!(e.is_retryable(), retryable, "{e}");
        }
    }

    /// Syntax the planner lacks is named, not dumped; a subquery test out of place says where
    /// it can stand.
    #[tokio::test]
    async fn unsupported_forms_say_what_in_a_sentence() {
        let ctx = crate::session::functions_session().unwrap();
        let error = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                crate::session::run_sql(&ctx, sql)
                    .await
                    .unwrap_err()
                    .to_string()
            }
        };
        let pivot =
            error("SELECT * FROM (SELECT 1 AS k, 2 AS v) PIVOT (sum(v) FOR k IN (1, 2))").await;
        assert!(
            pivot.ends_with("syntax the local engine does not read: Pivot"),
            "{pivot}"
        );
        assert!(pivot.len() < 200, "{pivot}");
        for sql in [
            // Over a join, a test is not computed before the grouping.
            "SELECT count_if(x IN (SELECT 1)) FROM (VALUES 1) AS s(x) \
             JOIN (VALUES 1) AS u(z) ON s.x = u.z",
            "SELECT EXISTS (SELECT 1 FROM (VALUES 1) AS t(y) WHERE t.y = s.x) AS e, count(*) \
             FROM (VALUES 1) AS s(x) JOIN (VALUES 1) AS u(z) ON s.x = u.z GROUP BY 1",
        ] {
            let test = error(sql).await;
            assert!(test.contains("equalities only"), "{sql}: {test}");
        }
        // A failed cast or a division by zero, folded while planning or met while running,
        // is said as Athena says it, without the engine's rule names or type names.
        assert_eq!(
            error("SELECT CAST('abc' AS integer)").await,
            "query: Cannot cast 'abc' to integer"
        );
        assert_eq!(
            error("SELECT CAST(x AS bigint) FROM (VALUES 'u-1') AS s(x)").await,
            "query: Cannot cast 'u-1' to bigint"
        );
        assert_eq!(error("SELECT 1 / 0").await, "query: Division by zero");
        // A call that fits none of a function's forms says so, not that it is the engine's bug.
        let unfit = explain(&DataFusionError::Context(
            "type_coercion".into(),
            Box::new(DataFusionError::Internal(
                "Function 'substr' failed to match any signature, errors: Error during planning: \
                 Function 'substr' expects 2 arguments but received 3..\nThis issue was likely \
                 caused by a bug in DataFusion's code. Please help us to resolve this by filing a \
                 bug report in our issue tracker: https://github.com/apache/datafusion/issues"
                    .into(),
            )),
        ));
        assert!(
            unfit.starts_with("Function 'substr' failed to match any signature")
                && !unfit.contains("bug")
                && !unfit.contains("type_coercion"),
            "{unfit}"
        );
        // A call or an operator no form of which fits names the types as Athena does.
        let sum = error("SELECT sum(x) FROM (VALUES 'a') AS t(x)").await;
        assert_eq!(
            sum,
            "query: Unexpected parameters (varchar) for function sum"
        );
        let arithmetic = explain(&DataFusionError::Plan(
            "Cannot coerce arithmetic expression Timestamp(µs, \"UTC\") + Int64 to valid types"
                .into(),
        ));
        assert_eq!(arithmetic, "Cannot apply operator: timestamp(3) + bigint");
        // An operator Athena lacks is refused before it runs, not given another meaning.
        assert_eq!(
            error("SELECT 2 ^ 3").await,
            "line 1, column 8: `^` is not in Athena's SQL, which would refuse this query; write \
             power(x, y) for a power, bitwise_xor(x, y) for an exclusive or of the bits"
        );
        // A data file that is gone says which, and how its partition is written again.
        let gone = datafusion::error::DataFusionError::External(Box::new(std::io::Error::other(
            "Parquet error: Parquet error: Failed to fetch metadata for file l/curated/events/\
             team=search/dt=2026-11-20/v=1/part-00000.parquet: Object Store error: Object at \
             location /l/curated/events/team=search/dt=2026-11-20/v=1/part-00000.parquet not \
             found: No such file or directory (os error 2)",
        )));
        assert_eq!(
            explain(&gone),
            "a data file of partition team=search/dt=2026-11-20 is missing: \
             /l/curated/events/team=search/dt=2026-11-20/v=1/part-00000.parquet. The raw zone \
             still has its lines: `etl backfill --force --team search --from 2026-11-20 --to \
             2026-11-20` writes the partition again"
        );
        assert_eq!(
            error("SELECT CAST(12e2 AS varchar(3))").await,
            "query: Value 1200.0 cannot be represented as varchar(3)"
        );
        assert_eq!(
            error("SELECT x / 0 FROM (VALUES 1) AS s(x)").await,
            "query: Division by zero"
        );
        // A syntax error: where, then what, without the parser's debug form.
        assert_eq!(
            error("SELEC 1").await,
            "query: line 1:1: Expected: an SQL statement, found: SELEC"
        );
        assert_eq!(
            error("SELECT team FROM events WHERE").await,
            "query: Expected: an expression, found: EOF"
        );
        assert_eq!(
            error("SELECT 'abc").await,
            "query: line 1:8: Unterminated string literal"
        );
        // A window function or an aggregate where rows are filtered or grouped: a sentence,
        // not the expression's tree.
        for (sql, what) in [
            (
                "SELECT x FROM (VALUES 1) AS s(x) WHERE row_number() OVER (ORDER BY x) = 1",
                "query: a window function cannot be read in WHERE",
            ),
            (
                "SELECT count(*) FROM (VALUES 1) AS s(x) GROUP BY count(*)",
                "query: an aggregate cannot be read in WHERE",
            ),
        ] {
            let e = error(sql).await;
            assert!(e.starts_with(what) && e.len() < 250, "{sql}: {e}");
        }
    }
}
