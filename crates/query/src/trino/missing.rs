//! The check that runs before a query: a function the local engine does not have fails with
//! its name, line and column, and whether Athena has it, instead of DataFusion's bare
//! "Invalid function".

use std::ops::ControlFlow;

use crate::trino::dialect::AthenaDialect;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    Expr, Select, SetExpr, Spanned, Statement, visit_expressions,
};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{TokenWithSpan, Tokenizer};

/// Athena's (Trino's) functions, by name. A name here that the local engine lacks is reported
/// as "Athena has it"; a name in neither is reported as unknown.
pub const ATHENA_FUNCTIONS: &[&str] = &[
    // Aggregate
    "approx_distinct",
    "approx_most_frequent",
    "approx_percentile",
    "approx_set",
    "arbitrary",
    "array_agg",
    "avg",
    "bitwise_and_agg",
    "bitwise_or_agg",
    "bitwise_xor_agg",
    "bool_and",
    "bool_or",
    "checksum",
    "corr",
    "count",
    "count_if",
    "covar_pop",
    "covar_samp",
    "every",
    "geometric_mean",
    "histogram",
    "kurtosis",
    "listagg",
    "map_agg",
    "map_union",
    "max",
    "max_by",
    "merge",
    "min",
    "min_by",
    "multimap_agg",
    "numeric_histogram",
    "qdigest_agg",
    "regr_intercept",
    "regr_slope",
    "reduce_agg",
    "skewness",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "sum",
    "tdigest_agg",
    "var_pop",
    "var_samp",
    "variance",
    // Array
    "all_match",
    "any_match",
    "array_distinct",
    "array_except",
    "array_histogram",
    "array_intersect",
    "array_join",
    "array_max",
    "array_min",
    "array_position",
    "array_remove",
    "array_sort",
    "array_union",
    "arrays_overlap",
    "cardinality",
    "combinations",
    "concat",
    "contains",
    "contains_sequence",
    "element_at",
    "filter",
    "flatten",
    "ngrams",
    "none_match",
    "reduce",
    "repeat",
    "reverse",
    "sequence",
    "shuffle",
    "slice",
    "transform",
    "trim_array",
    "zip",
    "zip_with",
    // Binary
    "crc32",
    "from_base32",
    "from_base64",
    "from_base64url",
    "from_big_endian_32",
    "from_big_endian_64",
    "from_hex",
    "from_ieee754_32",
    "from_ieee754_64",
    "hmac_md5",
    "hmac_sha1",
    "hmac_sha256",
    "hmac_sha512",
    "length",
    "lpad",
    "md5",
    "murmur3",
    "rpad",
    "sha1",
    "sha256",
    "sha512",
    "spooky_hash_v2_32",
    "spooky_hash_v2_64",
    "to_base32",
    "to_base64",
    "to_base64url",
    "to_big_endian_32",
    "to_big_endian_64",
    "to_hex",
    "to_ieee754_32",
    "to_ieee754_64",
    "xxhash64",
    // Bitwise
    "bit_count",
    "bitwise_and",
    "bitwise_left_shift",
    "bitwise_not",
    "bitwise_or",
    "bitwise_right_shift",
    "bitwise_right_shift_arithmetic",
    "bitwise_xor",
    // Conditional and conversion
    "coalesce",
    "if",
    "nullif",
    "try",
    "try_cast",
    "typeof",
    "format",
    "format_number",
    "parse_data_size",
    // Date and time
    "at_timezone",
    "current_date",
    "current_time",
    "current_timestamp",
    "current_timezone",
    "date",
    "date_add",
    "date_diff",
    "date_format",
    "date_parse",
    "date_trunc",
    "day",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "dow",
    "doy",
    "format_datetime",
    "from_iso8601_date",
    "from_iso8601_timestamp",
    "from_iso8601_timestamp_nanos",
    "from_unixtime",
    "from_unixtime_nanos",
    "hour",
    "human_readable_seconds",
    "last_day_of_month",
    "localtime",
    "localtimestamp",
    "millisecond",
    "minute",
    "month",
    "now",
    "parse_datetime",
    "parse_duration",
    "quarter",
    "second",
    "timezone_hour",
    "timezone_minute",
    "to_iso8601",
    "to_milliseconds",
    "to_unixtime",
    "week",
    "week_of_year",
    "with_timezone",
    "year",
    "year_of_week",
    "yow",
    // JSON
    "is_json_scalar",
    "json_array_contains",
    "json_array_get",
    "json_array_length",
    "json_extract",
    "json_extract_scalar",
    "json_format",
    "json_parse",
    "json_size",
    "json_exists",
    "json_query",
    "json_value",
    // Map
    "map",
    "map_concat",
    "map_entries",
    "map_filter",
    "map_from_entries",
    "map_keys",
    "map_values",
    "map_zip_with",
    "multimap_from_entries",
    "transform_keys",
    "transform_values",
    // Math
    "abs",
    "acos",
    "asin",
    "atan",
    "atan2",
    "beta_cdf",
    "cbrt",
    "ceil",
    "ceiling",
    "cos",
    "cosh",
    "cosine_similarity",
    "degrees",
    "e",
    "exp",
    "floor",
    "from_base",
    "infinity",
    "inverse_beta_cdf",
    "inverse_normal_cdf",
    "is_finite",
    "is_infinite",
    "is_nan",
    "ln",
    "log",
    "log10",
    "log2",
    "mod",
    "nan",
    "normal_cdf",
    "pi",
    "pow",
    "power",
    "radians",
    "rand",
    "random",
    "round",
    "sign",
    "sin",
    "sinh",
    "sqrt",
    "tan",
    "tanh",
    "to_base",
    "truncate",
    "width_bucket",
    "wilson_interval_lower",
    "wilson_interval_upper",
    "greatest",
    "least",
    // String
    "chr",
    "codepoint",
    "concat_ws",
    "hamming_distance",
    "levenshtein_distance",
    "lower",
    "ltrim",
    "luhn_check",
    "normalize",
    "position",
    "regexp_count",
    "regexp_extract",
    "regexp_extract_all",
    "regexp_like",
    "regexp_position",
    "regexp_replace",
    "regexp_split",
    "replace",
    "rtrim",
    "soundex",
    "split",
    "split_part",
    "split_to_map",
    "split_to_multimap",
    "starts_with",
    "strpos",
    "substr",
    "substring",
    "to_utf8",
    "from_utf8",
    "translate",
    "trim",
    "upper",
    "word_stem",
    // URL
    "url_decode",
    "url_encode",
    "url_extract_fragment",
    "url_extract_host",
    "url_extract_parameter",
    "url_extract_path",
    "url_extract_port",
    "url_extract_protocol",
    "url_extract_query",
    // UUID, window, geospatial and others analysts meet
    "uuid",
    "cume_dist",
    "dense_rank",
    "first_value",
    "lag",
    "last_value",
    "lead",
    "nth_value",
    "ntile",
    "percent_rank",
    "rank",
    "row_number",
    // Teradata's, and in Athena's engine since long before its version 3
    "to_char",
    "to_date",
    "to_timestamp",
    "any_value",
    "version",
    "st_point",
    "st_distance",
    "st_contains",
    "st_geometryfromtext",
    "st_astext",
    "to_geometry",
    "great_circle_distance",
];

/// Names the SQL planner handles itself, not the function registry.
const PLANNED_FORMS: &[&str] = &["unnest", "grouping", "exists", "struct", "row"];

/// Athena functions that are SQL syntax here (`TRY_CAST(x AS T)`), planned by the parser, or
/// renamed before planning (`listagg … WITHIN GROUP`, see `syntax.rs`).
pub(crate) const SYNTAX: &[&str] = &[
    "try_cast",
    "listagg",
    "geometric_mean",
    "reduce_agg",
    "map_zip_with",
];

/// A function the local engine cannot run, where it is in the SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingFunction {
    pub name: String,
    pub line: u64,
    pub column: u64,
    /// Athena has it.
    pub athena: bool,
}

impl MissingFunction {
    /// What is missing, without where.
    pub fn what(&self) -> String {
        if self.athena {
            format!(
                "{}() is an Athena function the local engine does not have yet; run this query \
                 with --engine athena (the README lists the local functions)",
                self.name
            )
        } else {
            format!(
                "unknown function {}() (neither Athena nor the local engine has it)",
                self.name
            )
        }
    }
}

/// A refusal of the checks before planning as they print it: where, then what.
pub(crate) fn write_at(
    f: &mut std::fmt::Formatter<'_>,
    line: u64,
    column: u64,
    what: &str,
) -> std::fmt::Result {
    write!(f, "line {line}, column {column}: {what}")
}

impl std::fmt::Display for MissingFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_at(f, self.line, self.column, &self.what())
    }
}

/// Does the session know this function by this name?
pub(crate) fn known(ctx: &SessionContext, name: &str) -> bool {
    let state = ctx.state();
    state.scalar_functions().contains_key(name)
        || state.aggregate_functions().contains_key(name)
        || state.window_functions().contains_key(name)
        || state.higher_order_functions().contains_key(name)
        || ctx.table_function(name).is_ok()
        || PLANNED_FORMS.contains(&name)
        || SYNTAX.contains(&name)
}

/// A query as the checks before planning read it, parsed and cut into tokens once: its
/// statements (none when it does not parse; the planner then reports it with its own
/// position) and its tokens with their places.
pub struct Written {
    pub statements: Vec<Statement>,
    pub tokens: Vec<TokenWithSpan>,
}

impl Written {
    pub fn read(sql: &str) -> Self {
        Self {
            statements: Parser::parse_sql(&AthenaDialect, sql).unwrap_or_default(),
            tokens: Tokenizer::new(&AthenaDialect, sql)
                .tokenize_with_location()
                .unwrap_or_default(),
        }
    }
}

/// The first expression of the statements that `hit` picks, with what it gave and the
/// expression's line and column.
pub(crate) fn first_in<T>(
    statements: &[Statement],
    mut hit: impl FnMut(&Expr) -> Option<T>,
) -> Option<(T, u64, u64)> {
    let mut found = None;
    for s in statements {
        let stopped = visit_expressions(s, |e| match hit(e) {
            Some(t) => {
                let at = e.span().start;
                found = Some((t, at.line, at.column));
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        });
        if stopped.is_break() {
            break;
        }
    }
    found
}

/// The selects of a query's body, both sides of its set operations (`UNION`, …) included.
pub(crate) fn selects_of(e: &SetExpr) -> Vec<&Select> {
    match e {
        SetExpr::Select(s) => vec![s],
        SetExpr::SetOperation { left, right, .. } => {
            let mut v = selects_of(left);
            v.extend(selects_of(right));
            v
        }
        _ => Vec::new(),
    }
}

/// Calls `f` on each select of a query's body, both sides of its set operations included.
pub(crate) fn for_each_select_mut(e: &mut SetExpr, f: &mut dyn FnMut(&mut Select)) {
    match e {
        SetExpr::Select(s) => f(s),
        SetExpr::SetOperation { left, right, .. } => {
            for_each_select_mut(left, f);
            for_each_select_mut(right, f);
        }
        _ => {}
    }
}

/// The first function of the query the session lacks.
pub fn first_missing(ctx: &SessionContext, written: &Written) -> Option<MissingFunction> {
    let (name, line, column) = first_in(&written.statements, |e| {
        let Expr::Function(f) = e else { return None };
        let name = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_ascii_lowercase())
            .unwrap_or_default();
        (!name.is_empty() && f.name.0.len() == 1 && !known(ctx, &name)).then_some(name)
    })?;
    Some(MissingFunction {
        athena: ATHENA_FUNCTIONS.contains(&name.as_str()),
        name,
        line,
        column,
    })
}

/// Every name the session knows that Athena also has, sorted: the README's list of supported
/// functions.
pub fn supported(ctx: &SessionContext) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = ATHENA_FUNCTIONS
        .iter()
        .copied()
        .filter(|n| known(ctx, n) && !PLANNED_FORMS.contains(n))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Athena's functions the local engine lacks, sorted.
pub fn unsupported(ctx: &SessionContext) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = ATHENA_FUNCTIONS
        .iter()
        .copied()
        .filter(|n| !known(ctx, n))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}
