//! The check that runs before a query, beside the missing-function one: an operator or a form
//! that the SQL parser reads but Athena's grammar does not have fails with where it is and what
//! Athena writes instead. Without it, `2 ^ 3` would be 1 here (an exclusive or) where Athena
//! refuses the query, and a query tried on a laptop would fail once saved for Athena.

use datafusion::sql::sqlparser::ast::{BinaryOperator, CastKind, Expr, UnaryOperator};

/// Syntax Athena does not read, where it is in the SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignSyntax {
    /// The operator or form, as written (`^`, `::`, `ILIKE`).
    pub written: String,
    /// What Athena writes instead.
    pub instead: &'static str,
    pub line: u64,
    pub column: u64,
}

impl ForeignSyntax {
    /// What is wrong, without where.
    pub fn what(&self) -> String {
        format!(
            "`{}` is not in Athena's SQL, which would refuse this query; {}",
            self.written, self.instead
        )
    }
}

impl std::fmt::Display for ForeignSyntax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line,
            self.column,
            self.what()
        )
    }
}

/// What Athena writes for a binary operator it does not have; `None` for one of its own.
fn binary(op: &BinaryOperator) -> Option<&'static str> {
    use BinaryOperator as B;
    Some(match op {
        B::Plus
        | B::Minus
        | B::Multiply
        | B::Divide
        | B::Modulo
        | B::StringConcat
        | B::Gt
        | B::Lt
        | B::GtEq
        | B::LtEq
        | B::Eq
        | B::NotEq
        | B::And
        | B::Or => return None,
        B::BitwiseXor => {
            "write power(x, y) for a power, bitwise_xor(x, y) for an exclusive or of the bits"
        }
        B::PGBitwiseXor | B::Xor => "write bitwise_xor(x, y), or (a OR b) AND NOT (a AND b)",
        B::BitwiseAnd => "write bitwise_and(x, y)",
        B::BitwiseOr => "write bitwise_or(x, y)",
        B::PGBitwiseShiftLeft => "write bitwise_left_shift(x, n)",
        B::PGBitwiseShiftRight => {
            "write bitwise_right_shift(x, n), or bitwise_right_shift_arithmetic(x, n) to keep the sign"
        }
        B::PGRegexMatch | B::PGRegexIMatch | B::PGRegexNotMatch | B::PGRegexNotIMatch => {
            "write regexp_like(s, pattern) (with (?i) at the pattern's start to ignore case)"
        }
        B::PGLikeMatch | B::PGILikeMatch | B::PGNotLikeMatch | B::PGNotILikeMatch => {
            "write s LIKE pattern (lower(s) LIKE lower(pattern) to ignore case)"
        }
        B::Spaceship => "write a IS NOT DISTINCT FROM b",
        B::DuckIntegerDivide | B::MyIntegerDivide => {
            "an integer divided by an integer is already whole: write x / y"
        }
        B::PGStartsWith => "write starts_with(s, prefix)",
        B::PGExp => "write power(x, y)",
        _ => "Athena's operators are + - * / % ||, the comparisons, AND, OR and NOT",
    })
}

/// The first operator or form in `sql` that Athena's grammar lacks. SQL that does not parse
/// passes (the planner reports it with its own position).
pub fn first_foreign(sql: &str) -> Option<ForeignSyntax> {
    let ((written, instead), line, column) = crate::trino::missing::first_in(sql, |e| match e {
        Expr::BinaryOp { op, .. } => binary(op).map(|instead| (op.to_string(), instead)),
        Expr::UnaryOp { op, .. }
            if !matches!(
                op,
                UnaryOperator::Plus | UnaryOperator::Minus | UnaryOperator::Not
            ) =>
        {
            let instead = match op {
                UnaryOperator::BitwiseNot => "write bitwise_not(x)",
                UnaryOperator::PGSquareRoot => "write sqrt(x)",
                UnaryOperator::PGCubeRoot => "write cbrt(x)",
                UnaryOperator::PGAbs => "write abs(x)",
                _ => "Athena's unary operators are +, - and NOT",
            };
            Some((op.to_string(), instead))
        }
        Expr::Cast {
            kind: CastKind::DoubleColon,
            ..
        } => Some(("::".into(), "write CAST(x AS type)")),
        Expr::Cast {
            kind: CastKind::SafeCast,
            ..
        } => Some(("SAFE_CAST".into(), "write TRY_CAST(x AS type)")),
        Expr::ILike { negated, .. } => Some((
            if *negated { "NOT ILIKE" } else { "ILIKE" }.into(),
            "write lower(s) LIKE lower(pattern)",
        )),
        Expr::RLike {
            negated, regexp, ..
        } => Some((
            format!(
                "{}{}",
                if *negated { "NOT " } else { "" },
                if *regexp { "REGEXP" } else { "RLIKE" }
            ),
            "write regexp_like(s, pattern)",
        )),
        Expr::SimilarTo { negated, .. } => Some((
            if *negated {
                "NOT SIMILAR TO"
            } else {
                "SIMILAR TO"
            }
            .into(),
            "write regexp_like(s, pattern), the pattern a Java regular expression",
        )),
        Expr::Struct { .. } => Some((
            "STRUCT".into(),
            "write CAST(ROW(x, y) AS ROW(a type, b type))",
        )),
        _ => None,
    })?;
    Some(ForeignSyntax {
        written,
        instead,
        line,
        column,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(sql: &str) -> Option<String> {
        first_foreign(sql).map(|f| f.written)
    }

    #[test]
    fn operators_athena_lacks_are_named_with_their_place() {
        let f = first_foreign("SELECT 1,\n  2 ^ 3").unwrap();
        assert_eq!((f.written.as_str(), f.line, f.column), ("^", 2, 3));
        assert!(f.to_string().contains("power(x, y)"), "{f}");
        for (sql, op) in [
            ("SELECT 6 & 3", "&"),
            ("SELECT 6 | 3", "|"),
            ("SELECT 1 << 2", "<<"),
            ("SELECT 8 >> 1", ">>"),
            ("SELECT 'a' ~ 'a'", "~"),
            ("SELECT 'a' !~ 'b'", "!~"),
            ("SELECT 1 <=> 1", "<=>"),
            ("SELECT 7 // 2", "//"),
            ("SELECT 'a'::varchar", "::"),
            ("SELECT 'abc' ILIKE 'A%'", "ILIKE"),
            ("SELECT 'abc' NOT ILIKE 'A%'", "NOT ILIKE"),
            ("SELECT 'x' RLIKE 'x'", "RLIKE"),
            ("SELECT 'x' SIMILAR TO 'x'", "SIMILAR TO"),
            ("SELECT struct(1, 'a')", "STRUCT"),
            ("SELECT ~1", "~"),
            ("SELECT x FROM t WHERE y IN (SELECT 2 ^ 3)", "^"),
        ] {
            assert_eq!(written(sql).as_deref(), Some(op), "{sql}");
        }
    }

    #[test]
    fn athena_sql_passes() {
        for sql in [
            "SELECT 1 + 2 * 3 - 4 / 2 % 3, 'a' || 'b', -x, NOT true FROM t",
            "SELECT a FROM t WHERE a >= 1 AND a <> 2 OR a != 3 AND b LIKE 'x%' ESCAPE '\\'",
            "SELECT CAST(x AS varchar), TRY_CAST(x AS integer), x IS DISTINCT FROM y FROM t",
            "SELECT transform(a, x -> x * 2), regexp_like(s, '^a') FROM t",
            "SELECT power(2, 3), bitwise_xor(6, 3), 'it''s', 'a^b|c&d' FROM t",
            "not SQL at all (",
        ] {
            assert_eq!(written(sql), None, "{sql}");
        }
    }
}
