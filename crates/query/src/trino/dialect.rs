//! The SQL dialect Athena's text is read in: sqlparser's generic dialect, which the rest of the
//! engine was built on, plus Trino's lambda expressions (`x -> x + 1`, `(s, x) -> s + x`) as
//! arguments of the higher-order functions (`transform`, `filter`, `reduce`, ...).
//!
//! Every parse of a query goes through [`AthenaDialect`], so the missing-function check, the
//! rewrites and the planner read the same statement.

use std::any::TypeId;

use datafusion::sql::sqlparser::ast::Expr;
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};

/// The generic dialect with lambdas. It reports itself as the generic dialect, so that the
/// parser's dialect-specific branches take the generic ones.
#[derive(Debug, Default, Clone, Copy)]
pub struct AthenaDialect;

const GENERIC: GenericDialect = GenericDialect {};

/// Delegates each of the generic dialect's switches unchanged.
macro_rules! generic {
    ($($name:ident)*) => {
        $(fn $name(&self) -> bool {
            GENERIC.$name()
        })*
    };
}

impl Dialect for AthenaDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<GenericDialect>()
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        GENERIC.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        GENERIC.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        GENERIC.is_identifier_part(ch)
    }

    fn supports_lambda_functions(&self) -> bool {
        true
    }

    /// `a IS [NOT] DISTINCT FROM b`: `b` is a value expression, as in Trino's grammar, so
    /// `x IS DISTINCT FROM 'web' AND y LIKE 'u%'` is two conditions. The generic parser reads
    /// the whole rest (`'web' AND y LIKE 'u%'`) as `b`.
    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        _precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        if !parser.peek_keyword(Keyword::IS) {
            return None;
        }
        let negated = if parser.parse_keywords(&[Keyword::IS, Keyword::DISTINCT, Keyword::FROM]) {
            false
        } else if parser.parse_keywords(&[
            Keyword::IS,
            Keyword::NOT,
            Keyword::DISTINCT,
            Keyword::FROM,
        ]) {
            true
        } else {
            return None;
        };
        let left = Box::new(expr.clone());
        Some(
            parser
                .parse_subexpr(self.prec_value(Precedence::Eq))
                .map(|right| match negated {
                    false => Expr::IsDistinctFrom(left, Box::new(right)),
                    true => Expr::IsNotDistinctFrom(left, Box::new(right)),
                }),
        )
    }

    generic! {
        supports_unicode_string_literal
        supports_partition_by_after_order_by
        supports_array_join_syntax
        supports_group_by_expr
        supports_group_by_with_modifier
        supports_left_associative_joins_without_parens
        supports_connect_by
        supports_match_recognize
        supports_pipe_operator
        supports_start_transaction_modifier
        supports_window_function_null_treatment_arg
        supports_dictionary_syntax
        supports_window_clause_named_window_reference
        supports_parenthesized_set_variables
        supports_select_wildcard_except
        support_map_literal_syntax
        allow_extract_custom
        allow_extract_single_quotes
        supports_extract_comma_syntax
        supports_create_view_comment_syntax
        supports_parens_around_table_factor
        supports_values_as_table_factor
        supports_create_index_with_clause
        supports_explain_with_utility_options
        supports_limit_comma
        supports_update_order_by
        supports_from_first_select
        supports_projection_trailing_commas
        supports_asc_desc_in_column_definition
        supports_try_convert
        supports_bitwise_shift_operators
        supports_comment_on
        supports_load_extension
        supports_named_fn_args_with_assignment_operator
        supports_struct_literal
        supports_empty_projections
        supports_nested_comments
        supports_multiline_comment_hints
        supports_user_host_grantee
        supports_string_escape_constant
        supports_array_typedef_with_brackets
        supports_match_against
        supports_set_names
        supports_comma_separated_set_assignments
        supports_filter_during_aggregation
        supports_select_wildcard_exclude
        supports_data_type_signed_suffix
        supports_interval_options
        supports_quote_delimited_string
        supports_select_wildcard_replace
        supports_select_wildcard_ilike
        supports_select_wildcard_rename
        supports_optimize_table
        supports_install
        supports_detach
        supports_prewhere
        supports_with_fill
        supports_limit_by
        supports_interpolate
        supports_settings
        supports_select_format
        supports_comment_optimizer_hint
        supports_constraint_keyword_without_name
        supports_key_column_option
        supports_comma_separated_trim
        supports_cte_without_as
        supports_select_item_multi_column_alias
        supports_xml_expressions
    }
}
