//! The check that runs before a query, beside the missing-function one: an operator or a form
//! that the SQL parser reads but Athena's grammar does not have fails with where it is and what
//! Athena writes instead. Without it, `2 ^ 3` would be 1 here (an exclusive or) where Athena
//! refuses the query, and a query tried on a laptop would fail once saved for Athena.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Distinct, Expr, GroupByExpr, Query, Select, SelectItem,
    Spanned, Statement, UnaryOperator, Visit, Visitor, WildcardAdditionalOptions,
};
use datafusion::sql::sqlparser::tokenizer::{Span, Token, TokenWithSpan};

use crate::trino::missing::Written;

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
        crate::trino::missing::write_at(f, self.line, self.column, &self.what())
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

/// The first operator or form of the query that Athena's grammar lacks.
pub fn first_foreign(written: &Written) -> Option<ForeignSyntax> {
    [
        first_in_expressions(&written.statements),
        first_in_selects(&written.statements),
        first_backquote(&written.tokens),
        first_limit_then_offset(&written.tokens),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|f| (f.line, f.column))
}

/// A clause of another dialect in a select: `DISTINCT ON`, `GROUP BY ALL`, `QUALIFY`,
/// `NATURAL JOIN`, and `* EXCLUDE`/`EXCEPT`/`REPLACE`/`RENAME`.
fn first_in_selects(statements: &[Statement]) -> Option<ForeignSyntax> {
    struct Selects(Option<ForeignSyntax>);
    impl Selects {
        fn found(&mut self, written: &str, instead: &'static str, at: Span) {
            let at = at.start;
            let earlier = self
                .0
                .as_ref()
                .is_some_and(|f| (f.line, f.column) <= (at.line, at.column));
            if !earlier {
                self.0 = Some(ForeignSyntax {
                    written: written.into(),
                    instead,
                    line: at.line,
                    column: at.column,
                });
            }
        }

        fn select(&mut self, s: &Select) {
            if let Some(Distinct::On(_)) = &s.distinct {
                self.found(
                    "DISTINCT ON",
                    "keep each key's first row with row_number() OVER (PARTITION BY key ORDER \
                     BY …) = 1 in an outer query",
                    s.select_token.0.span,
                );
            }
            if let GroupByExpr::All(_) = &s.group_by {
                self.found(
                    "GROUP BY ALL",
                    "name the grouped columns, or their places: GROUP BY 1, 2",
                    s.select_token.0.span,
                );
            }
            for from in &s.from {
                for join in &from.joins {
                    use datafusion::sql::sqlparser::ast::JoinConstraint;
                    let constraint = crate::trino::select::join_constraint(&join.join_operator);
                    if matches!(constraint, Some(JoinConstraint::Natural)) {
                        self.found(
                            "NATURAL JOIN",
                            "name the shared columns: a JOIN b USING (k)",
                            s.select_token.0.span,
                        );
                    }
                }
            }
            if let Some(q) = &s.qualify {
                self.found(
                    "QUALIFY",
                    "filter the window function's result in an outer query's WHERE",
                    q.span(),
                );
            }
            for item in &s.projection {
                if let SelectItem::Wildcard(o) | SelectItem::QualifiedWildcard(_, o) = item {
                    let WildcardAdditionalOptions {
                        wildcard_token,
                        opt_ilike,
                        opt_exclude,
                        opt_except,
                        opt_replace,
                        opt_rename,
                        ..
                    } = o;
                    let written = if opt_exclude.is_some() {
                        "* EXCLUDE"
                    } else if opt_except.is_some() {
                        "* EXCEPT"
                    } else if opt_replace.is_some() {
                        "* REPLACE"
                    } else if opt_rename.is_some() {
                        "* RENAME"
                    } else if opt_ilike.is_some() {
                        "* ILIKE"
                    } else {
                        continue;
                    };
                    self.found(
                        written,
                        "Athena's * takes every column: list the columns wanted",
                        wildcard_token.0.span,
                    );
                }
            }
        }
    }
    impl Visitor for Selects {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            for s in crate::trino::missing::selects_of(&q.body) {
                self.select(s);
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = Selects(None);
    for s in statements {
        let _ = s.visit(&mut v);
    }
    v.0
}

/// A name in backquotes (`` `team` ``), which Athena reads in DDL only; queries quote names
/// with double quotes.
fn first_backquote(tokens: &[TokenWithSpan]) -> Option<ForeignSyntax> {
    tokens.iter().find_map(|t| match &t.token {
        Token::Word(w) if w.quote_style == Some('`') => Some(ForeignSyntax {
            written: format!("`{}`", w.value),
            instead: "Athena's queries quote a name with double quotes: write \"name\"",
            line: t.span.start.line,
            column: t.span.start.column,
        }),
        _ => None,
    })
}

/// `LIMIT n OFFSET m`, PostgreSQL's order: Athena's grammar reads `OFFSET m` before `LIMIT n`
/// and refuses the other. The parse keeps no order, so the tokens are read, a query's own
/// `LIMIT` and `OFFSET` at one depth of parentheses.
fn first_limit_then_offset(tokens: &[TokenWithSpan]) -> Option<ForeignSyntax> {
    use datafusion::sql::sqlparser::keywords::Keyword;
    // Per depth of parentheses, where a LIMIT of the query there is.
    let mut limits: Vec<Option<(u64, u64)>> = vec![None];
    for t in tokens {
        match &t.token {
            Token::LParen => limits.push(None),
            Token::RParen => {
                limits.pop();
                if limits.is_empty() {
                    return None;
                }
            }
            Token::SemiColon => *limits.last_mut()? = None,
            Token::Word(w) if w.quote_style.is_none() => match w.keyword {
                Keyword::LIMIT => {
                    *limits.last_mut()? = Some((t.span.start.line, t.span.start.column));
                }
                Keyword::OFFSET => {
                    if let Some((line, column)) = *limits.last()? {
                        return Some(ForeignSyntax {
                            written: "LIMIT … OFFSET".into(),
                            instead: "Athena reads OFFSET before LIMIT: write OFFSET 20 LIMIT 10",
                            line,
                            column,
                        });
                    }
                }
                Keyword::SELECT | Keyword::UNION | Keyword::INTERSECT | Keyword::EXCEPT => {
                    *limits.last_mut()? = None;
                }
                _ => {}
            },
            _ => {}
        }
    }
    None
}

/// The first operator or form among `sql`'s expressions that Athena's grammar lacks.
fn first_in_expressions(statements: &[Statement]) -> Option<ForeignSyntax> {
    let ((written, instead), line, column) = crate::trino::missing::first_in(
        statements,
        |e| match e {
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
            Expr::Interval(i) if i.leading_field.is_none() => Some((
                format!("INTERVAL {}", i.value),
                "write the amount and its unit apart, INTERVAL '1' DAY, INTERVAL '2' HOUR",
            )),
            Expr::Array(a) if !a.named => Some(("[…]".into(), "write an array as ARRAY[1, 2]")),
            Expr::Dictionary(_) | Expr::Map(_) => Some((
                "{…}".into(),
                "write MAP(ARRAY['a'], ARRAY[1]) for a map, CAST(ROW(1) AS ROW(a integer)) for a row",
            )),
            Expr::AnyOp { right, .. } | Expr::AllOp { right, .. }
                if !matches!(right.as_ref(), Expr::Subquery(_)) =>
            {
                Some((
                    "ANY/ALL of an array".into(),
                    "write contains(a, x) for x = ANY(a); ANY and ALL take a subquery",
                ))
            }
            Expr::Cast {
                data_type: DataType::String(_) | DataType::Text,
                ..
            } => Some((
                "STRING".into(),
                "Athena's text type in queries is varchar: write CAST(x AS varchar)",
            )),
            Expr::Struct { .. } => Some((
                "STRUCT".into(),
                "write CAST(ROW(x, y) AS ROW(a type, b type))",
            )),
            _ => None,
        },
    )?;
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
        first_foreign(&Written::read(sql)).map(|f| f.written)
    }

    #[test]
    fn operators_athena_lacks_are_named_with_their_place() {
        let f = first_foreign(&Written::read("SELECT 1,\n  2 ^ 3")).unwrap();
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
            ("SELECT current_date - INTERVAL '1 day'", "INTERVAL '1 day'"),
            ("SELECT [1, 2]", "[…]"),
            ("SELECT {'a': 1}", "{…}"),
            ("SELECT 1 = ANY(ARRAY[1, 2])", "ANY/ALL of an array"),
            ("SELECT CAST(x AS STRING) FROM t", "STRING"),
            ("SELECT CAST(x AS TEXT) FROM t", "STRING"),
            ("SELECT DISTINCT ON (a) a, b FROM t", "DISTINCT ON"),
            ("SELECT a, count(*) FROM t GROUP BY ALL", "GROUP BY ALL"),
            (
                "SELECT a, row_number() OVER (ORDER BY b) AS r FROM t QUALIFY r = 1",
                "QUALIFY",
            ),
            ("SELECT * EXCLUDE (a) FROM t", "* EXCLUDE"),
            ("SELECT * FROM t NATURAL JOIN u", "NATURAL JOIN"),
            ("SELECT a FROM t NATURAL LEFT JOIN u", "NATURAL JOIN"),
            ("SELECT t.* EXCEPT (a) FROM t", "* EXCEPT"),
            ("SELECT * REPLACE (1 AS a) FROM t", "* REPLACE"),
            ("SELECT `team` FROM t", "`team`"),
            (
                "SELECT a FROM t ORDER BY a LIMIT 10 OFFSET 20",
                "LIMIT … OFFSET",
            ),
            (
                "SELECT * FROM (SELECT a FROM t LIMIT 1 OFFSET 1)",
                "LIMIT … OFFSET",
            ),
            (
                "SELECT a FROM (SELECT DISTINCT ON (a) a FROM t)",
                "DISTINCT ON",
            ),
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
            "SELECT INTERVAL '1' DAY, INTERVAL '1-2' YEAR TO MONTH, ARRAY[1], MAP(ARRAY['a'], ARRAY[1])",
            "SELECT x FROM t WHERE x = ANY (SELECT 1) AND x > ALL (SELECT 0)",
            "SELECT DISTINCT a, \"b\", count(*) FROM t GROUP BY a, 2 ORDER BY 1",
            "SELECT t.*, * FROM t",
            "SELECT 'it`s', CAST(x AS varchar(3)) FROM t",
            "SELECT a FROM t ORDER BY a OFFSET 20 LIMIT 10",
            "SELECT a FROM (SELECT a FROM t LIMIT 1) OFFSET 1",
            "SELECT a FROM t LIMIT 1 UNION ALL SELECT a FROM t OFFSET 1",
            "SELECT a FROM t ORDER BY a OFFSET 1 ROWS FETCH FIRST 1 ROWS ONLY",
            "not SQL at all (",
        ] {
            assert_eq!(written(sql), None, "{sql}");
        }
    }
}
