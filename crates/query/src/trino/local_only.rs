//! The check that runs before a query, after the missing-function one: a function the local
//! engine has but Athena does not (DataFusion's `median`, `nvl`, `date_part`, `array_length`,
//! `string_agg`, …) fails with where it is and what Athena writes instead. Without it such a
//! query runs on a laptop and fails once saved for Athena.

use std::ops::ControlFlow;

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, Statement};

use crate::trino::foreign::ForeignSyntax;
use crate::trino::missing::{ATHENA_FUNCTIONS, Written, known};

/// Names the SQL planner handles itself that are Athena's too (`ROW(1, 'a')`, `GROUPING(x)`,
/// `UNNEST` in a select list).
const ATHENA_FORMS: &[&str] = &["unnest", "grouping", "row", "exists"];

/// Functions of recent Trino releases (452 to 483) that the local engine has too. Athena's
/// engine follows Trino at a distance, so they are neither refused nor listed as Athena's.
const RECENT_TRINO: &[&str] = &[
    "dot_product",
    "cosine_distance",
    "ends_with",
    "array_first",
    "array_last",
    "title_case",
];

/// What Athena writes for a function of the local engine's own.
fn instead(name: &str) -> &'static str {
    match name {
        "median"
        | "approx_median"
        | "percentile_cont"
        | "quantile_cont"
        | "approx_percentile_cont"
        | "approx_percentile_cont_with_weight" => {
            "write approx_percentile(x, 0.5), or approx_percentile(x, p) for another quantile"
        }
        "nvl" | "ifnull" => "write coalesce(x, y)",
        "nvl2" => "write if(x IS NOT NULL, a, b)",
        "date_part" | "datepart" => "write extract(hour FROM t), or hour(t), day(t) and the like",
        "datetrunc" => "write date_trunc('hour', t)",
        "date_bin" => {
            "write date_trunc('hour', t), or from_unixtime(floor(to_unixtime(t) / n) * n) for \
             buckets of n seconds"
        }
        "today" => "write current_date",
        "to_timestamp_seconds"
        | "to_timestamp_millis"
        | "to_timestamp_micros"
        | "to_timestamp_nanos" => {
            "write from_unixtime(seconds), or from_unixtime(ms / 1000.0) for milliseconds"
        }
        "make_date" => "write date(format('%04d-%02d-%02d', y, m, d))",
        "array_length" | "list_length" | "array_size" => "write cardinality(a)",
        "array_empty" | "list_empty" | "empty" => "write cardinality(a) = 0",
        "array_has" | "list_has" | "array_contains" | "list_contains" => "write contains(a, x)",
        "array_has_any" | "list_has_any" => "write arrays_overlap(a, b)",
        "array_has_all" | "list_has_all" => "write cardinality(array_except(b, a)) = 0",
        "array_append" | "list_append" | "array_push_back" | "list_push_back" | "array_prepend"
        | "list_prepend" | "array_push_front" | "list_push_front" | "array_cat" | "list_cat"
        | "array_concat" | "list_concat" => "write concat(a, ARRAY[x]), or a || b for two arrays",
        "make_array" | "make_list" => "write ARRAY[x, y]",
        "array_to_string" | "list_to_string" => "write array_join(a, ', ')",
        "string_to_array" | "string_to_list" => "write split(s, ',')",
        "string_agg" => {
            "write listagg(x, ', ') WITHIN GROUP (ORDER BY x), or array_join(array_agg(x), ', ')"
        }
        "array_slice" | "list_slice" => "write slice(a, start, length)",
        "array_element" | "array_extract" | "list_element" | "list_extract" => {
            "write element_at(a, i), or a[i]"
        }
        "array_indexof" | "list_indexof" | "list_position" => "write array_position(a, x)",
        "array_reverse" | "list_reverse" => "write reverse(a)",
        "array_repeat" | "list_repeat" => "write repeat(x, n)",
        "array_filter" | "list_filter" => "write filter(a, x -> …)",
        "array_transform" | "list_transform" => "write transform(a, x -> …)",
        "array_any_match" | "list_any_match" => "write any_match(a, x -> …)",
        "arrays_zip" | "list_zip" => "write zip(a, b)",
        "array_sum" | "list_sum" => "write reduce(a, 0, (s, x) -> s + x, s -> s)",
        "array_any_value" | "list_any_value" | "list_first" => "write element_at(a, 1)",
        "list_sort" => "write array_sort(a)",
        "list_distinct" => "write array_distinct(a)",
        "list_max" => "write array_max(a)",
        "list_min" => "write array_min(a)",
        "list_remove" | "array_remove_all" | "list_remove_all" => "write array_remove(a, x)",
        "list_intersect" => "write array_intersect(a, b)",
        "list_union" => "write array_union(a, b)",
        "list_except" => "write array_except(a, b)",
        "list_join" => "write array_join(a, ', ')",
        "inner_product" | "list_inner_product" => {
            "write reduce(zip_with(a, b, (x, y) -> x * y), 0, (s, x) -> s + x, s -> s)"
        }
        "btrim" => "write trim(s)",
        "instr" => "write strpos(s, part)",
        "left" => "write substr(s, 1, n)",
        "right" => "write substr(s, -n)",
        "initcap" => "write concat(upper(substr(s, 1, 1)), lower(substr(s, 2))) for one word",
        "char_length" | "character_length" => "write length(s)",
        "octet_length" => "write length(to_utf8(s))",
        "bit_length" => "write 8 * length(to_utf8(s))",
        "ascii" => "write codepoint(substr(s, 1, 1))",
        "levenshtein" => "write levenshtein_distance(a, b)",
        "regexp_match" => {
            "write regexp_extract_all(s, pattern), or regexp_extract(s, pattern, group)"
        }
        "regexp_instr" => "write regexp_position(s, pattern)",
        "substr_index" | "substring_index" => "write array_join(slice(split(s, d), 1, n), d)",
        "find_in_set" => "write array_position(split(list, ','), s)",
        "signum" => "write sign(x)",
        "trunc" => "write truncate(x)",
        "var" | "var_sample" => "write var_samp(x)",
        "var_population" => "write var_pop(x)",
        "covar" => "write covar_samp(x, y)",
        "mean" => "write avg(x)",
        "bit_and" => "write bitwise_and_agg(x)",
        "bit_or" => "write bitwise_or_agg(x)",
        "bit_xor" => "write bitwise_xor_agg(x)",
        "regr_count" | "regr_r2" | "regr_avgx" | "regr_avgy" | "regr_sxx" | "regr_syy"
        | "regr_sxy" => "Athena's regressions are regr_slope(y, x) and regr_intercept(y, x)",
        "isnan" => "write is_nan(x)",
        "iszero" => "write x = 0",
        "nanvl" => "write if(is_nan(x), y, x)",
        "cot" => "write 1 / tan(x)",
        "acosh" => "write ln(x + sqrt(x * x - 1))",
        "asinh" => "write ln(x + sqrt(x * x + 1))",
        "atanh" => "write 0.5 * ln((1 + x) / (1 - x))",
        "digest" => "write md5(to_utf8(s)), sha256(to_utf8(s)) and the like",
        "sha224" | "sha384" => "Athena hashes with md5, sha1, sha256 and sha512 (of varbinary)",
        "encode" => "write to_hex(to_utf8(s)), or to_base64(to_utf8(s))",
        "decode" => "write from_utf8(from_hex(s)), or from_utf8(from_base64(s))",
        "arrow_typeof" => "write typeof(x)",
        "arrow_cast" | "arrow_try_cast" => "write CAST(x AS type), or TRY_CAST(x AS type)",
        "named_struct" => "write CAST(ROW(x, y) AS ROW(a type, b type))",
        "get_field" => "write r.field",
        "map_extract" => "write element_at(m, key)",
        "generate_series" | "range" => "write sequence(start, stop)",
        _ => "it is the local engine's own; the README lists Athena's functions that run here",
    }
}

/// The first function of the query that the session has and Athena does not, a table
/// function (`FROM range(10)`) included.
pub fn first_local_only(ctx: &SessionContext, written: &Written) -> Option<ForeignSyntax> {
    let call = crate::trino::missing::first_in(&written.statements, |e| {
        let Expr::Function(f) = e else { return None };
        if f.name.0.len() != 1 {
            return None;
        }
        let name = f.name.0[0].as_ident()?.value.to_ascii_lowercase();
        let athena = ATHENA_FUNCTIONS.contains(&name.as_str())
            || ATHENA_FORMS.contains(&name.as_str())
            || RECENT_TRINO.contains(&name.as_str())
            || crate::trino::missing::SYNTAX.contains(&name.as_str());
        (!athena && known(ctx, &name)).then(|| (format!("{name}()"), instead(&name)))
    });
    let table = first_table_function(ctx, &written.statements);
    let ((written, instead), line, column) = match (call, table) {
        (Some(c), Some(t)) => std::cmp::min_by_key(c, t, |(_, line, column)| (*line, *column)),
        (c, t) => c.or(t)?,
    };
    Some(ForeignSyntax {
        written,
        instead,
        line,
        column,
    })
}

/// The first of the local engine's table functions in a `FROM` (`range(10)`,
/// `generate_series(1, 10)`): Athena has none of them.
fn first_table_function(
    ctx: &SessionContext,
    statements: &[Statement],
) -> Option<((String, &'static str), u64, u64)> {
    use datafusion::sql::sqlparser::ast::{Spanned, TableFactor, Visit, Visitor};
    struct Tables<'a> {
        ctx: &'a SessionContext,
        found: Option<((String, &'static str), u64, u64)>,
    }
    impl Visitor for Tables<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                name,
                args: Some(_),
                ..
            } = t
                && name.0.len() == 1
                && let Some(i) = name.0[0].as_ident()
                && self
                    .ctx
                    .table_function(&i.value.to_ascii_lowercase())
                    .is_ok()
            {
                let at = name.span().start;
                self.found = Some((
                    (
                        format!("{}()", i.value.to_ascii_lowercase()),
                        "Athena has no such table function; write \
                         FROM UNNEST(sequence(1, 10)) AS t(x) for a series",
                    ),
                    at.line,
                    at.column,
                ));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = Tables { ctx, found: None };
    for s in statements {
        if s.visit(&mut v).is_break() {
            break;
        }
    }
    v.found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str) -> Option<String> {
        let ctx = crate::session::functions_session().unwrap();
        first_local_only(&ctx, &Written::read(sql)).map(|f| f.to_string())
    }

    #[test]
    fn the_local_engines_own_functions_are_refused_with_athenas_form() {
        assert_eq!(
            refused("SELECT team,\n  median(x) FROM t").as_deref(),
            Some(
                "line 2, column 3: `median()` is not in Athena's SQL, which would refuse this \
                 query; write approx_percentile(x, 0.5), or approx_percentile(x, p) for another \
                 quantile"
            )
        );
        for (sql, name) in [
            ("SELECT nvl(a, 'x') FROM t", "nvl()"),
            ("SELECT DATE_PART('hour', t) FROM t", "date_part()"),
            (
                "SELECT 1 FROM t WHERE array_length(a) > 1",
                "array_length()",
            ),
            ("SELECT string_agg(a, ',') FROM t", "string_agg()"),
            ("SELECT transform(a, x -> left(x, 1)) FROM t", "left()"),
            ("SELECT named_struct('a', 1)", "named_struct()"),
            ("SELECT interval_multiply(1, 2)", "interval_multiply()"),
            ("SELECT value FROM range(3)", "range()"),
            (
                "SELECT * FROM t CROSS JOIN generate_series(1, 3)",
                "generate_series()",
            ),
        ] {
            let got = refused(sql).unwrap_or_else(|| panic!("{sql} ran"));
            assert!(got.contains(&format!("`{name}`")), "{sql}: {got}");
        }
    }

    #[test]
    fn athenas_functions_and_forms_pass() {
        for sql in [
            "SELECT approx_percentile(x, 0.5), coalesce(a, 'x'), cardinality(a) FROM t",
            "SELECT ROW(1, 'a'), count(*), GROUPING(team) FROM t GROUP BY ROLLUP (team)",
            "SELECT listagg(a, ',') WITHIN GROUP (ORDER BY a), try_cast('1' AS integer) FROM t",
            "SELECT to_char(t, 'yyyy'), any_value(a), x FROM t CROSS JOIN UNNEST(a) AS u(x)",
            "SELECT nosuchfunction(1)",
            "SELECT sys.median(1)",
            "SELECT (",
        ] {
            assert_eq!(refused(sql), None, "{sql}");
        }
    }
}
