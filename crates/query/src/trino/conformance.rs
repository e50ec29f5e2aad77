//! The conformance suite: every case in `tests/athena/*.txt` (an expression and Athena's
//! documented result) runs on the local engine.
//!
//! A case passes when the engine prints Athena's result. `tests/athena/known-gaps.txt` lists the
//! cases that do not pass yet, each with what happens instead; the suite fails when a case
//! outside that list fails, and when a listed case passes (so the list only shrinks). A listed
//! case that uses a function the engine lacks must fail with the message that names it.
//! `UPDATE_ATHENA_GAPS=1` rewrites the list from a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::prelude::SessionContext;

use crate::trino::render;

#[derive(Debug, Clone)]
pub struct Case {
    pub file: String,
    pub function: String,
    pub expr: String,
    pub expected: String,
}

pub fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/athena")
}

pub fn load() -> Vec<Case> {
    let mut files: Vec<_> = std::fs::read_dir(cases_dir())
        .expect("tests/athena")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt") && !p.ends_with("known-gaps.txt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&f).unwrap();
        let mut function = String::new();
        for line in text.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                function = h.trim().to_string();
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (expr, rest) = line
                .split_once("  ==>  ")
                .unwrap_or_else(|| panic!("{name}: a case line without '  ==>  ': {line}"));
            let expected = rest.split("  -- ").next().unwrap().trim().to_string();
            out.push(Case {
                file: name.clone(),
                function: function.clone(),
                expr: expr.trim().to_string(),
                expected,
            });
        }
    }
    out
}

/// What one case gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    /// Printed something else.
    Differs(String),
    /// Failed where Athena gives a value, or gave a value where Athena fails.
    Error(String),
    /// A function the engine lacks, reported as such.
    Missing(String),
}

fn one_line(s: &str) -> String {
    let s = s.replace('\n', " ");
    let s = s.split(". You might need").next().unwrap_or(&s).to_string();
    s.chars().take(140).collect()
}

pub async fn run(ctx: &SessionContext, c: &Case) -> Outcome {
    let sql = format!("SELECT {}", c.expr);
    let result = match crate::session::run_sql(ctx, &sql).await {
        Ok(r) => r,
        Err(crate::Error::MissingFunction(m)) => return Outcome::Missing(m.name),
        Err(e) if c.expected == "ERROR" => {
            let _ = e;
            return Outcome::Pass;
        }
        Err(e) => return Outcome::Error(one_line(&e.to_string())),
    };
    let (_, batches) = result;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Outcome::Differs("(no rows)".into());
    };
    let got = render::cell(b.column(0), 0);
    let got = if got.is_empty() {
        "''".to_string()
    } else {
        got
    };
    if c.expected == "ERROR" {
        return Outcome::Differs(format!("{got} (Athena fails)"));
    }
    if got == c.expected {
        Outcome::Pass
    } else {
        Outcome::Differs(got)
    }
}

fn gap_key(c: &Case) -> String {
    format!("{}: {}", c.file, c.expr)
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Pass => "passes".into(),
        Outcome::Differs(g) => format!("differs: {g}"),
        Outcome::Error(e) => format!("error: {e}"),
        Outcome::Missing(f) => format!("missing: {f}"),
    }
}

/// The listed gaps: case key → what the list says happens.
fn known_gaps() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(cases_dir().join("known-gaps.txt")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            l.rsplit_once("  => ")
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn athena_conformance() {
    let ctx = crate::functions_session().unwrap();
    let cases = load();
    assert!(
        cases.len() > 500,
        "the case files hold {} cases",
        cases.len()
    );
    let gaps = known_gaps();
    let mut outcomes = Vec::with_capacity(cases.len());
    for c in &cases {
        outcomes.push(run(&ctx, c).await);
    }
    let mut per_file: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut new_gaps = Vec::new();
    for (c, o) in cases.iter().zip(&outcomes) {
        let e = per_file.entry(&c.file).or_default();
        e.0 += 1;
        let key = gap_key(c);
        if *o == Outcome::Pass {
            e.1 += 1;
            if gaps.contains_key(&key) {
                unexpected.push(format!("now passes, remove from known-gaps.txt: {key}"));
            }
            continue;
        }
        new_gaps.push(format!("{key}  => {}", describe(o)));
        if !gaps.contains_key(&key) {
            unexpected.push(format!(
                "{key}\n    Athena: {}\n    local:  {}",
                c.expected,
                describe(o)
            ));
        }
    }
    let passed: usize = per_file.values().map(|v| v.1).sum();
    println!("Athena conformance: {passed} of {} cases pass", cases.len());
    for (f, (n, p)) in &per_file {
        println!("  {f:<12} {p:>4} of {n:>4}");
    }
    if std::env::var_os("UPDATE_ATHENA_GAPS").is_some() {
        let mut text = String::from(
            "# Cases of tests/athena/*.txt the local engine does not pass yet, with what it does\n\
             # instead. The conformance test fails when a case outside this list fails, and when a\n\
             # listed case passes. Rewritten by UPDATE_ATHENA_GAPS=1 cargo test -p eventlake-query\n\
             # athena_conformance.\n",
        );
        for g in &new_gaps {
            text.push_str(g);
            text.push('\n');
        }
        std::fs::write(cases_dir().join("known-gaps.txt"), text).unwrap();
    } else {
        assert!(
            unexpected.is_empty(),
            "{} case(s) do not match tests/athena/known-gaps.txt:\n{}",
            unexpected.len(),
            unexpected.join("\n")
        );
    }
    readme_block(&ctx, &cases, &outcomes);
}

const BEGIN: &str = "<!-- athena-functions:begin -->";
const END: &str = "<!-- athena-functions:end -->";

/// The README's list of functions, from the engine's registry and this run: it cannot drift
/// from the code. `UPDATE_README=1` rewrites it; otherwise a difference fails.
/// Whether `expr` names `word` as a whole word (`beta_cdf` is not in `inverse_beta_cdf(…)`).
fn mentions(expr: &str, word: &str) -> bool {
    let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    expr.match_indices(word).any(|(i, _)| {
        !part(expr[..i].chars().next_back()) && !part(expr[i + word.len()..].chars().next())
    })
}

fn readme_block(ctx: &SessionContext, cases: &[Case], outcomes: &[Outcome]) {
    let mut passing: BTreeMap<&str, usize> = BTreeMap::new();
    for (c, o) in cases.iter().zip(outcomes) {
        if *o == Outcome::Pass {
            // A section of several functions (`## json_exists, json_value`) credits each one
            // its case calls.
            let names: Vec<&str> = c.function.split(", ").collect();
            for n in &names {
                if names.len() == 1 || mentions(&c.expr, n) {
                    *passing.entry(n).or_default() += 1;
                }
            }
        }
    }
    let supported = crate::trino::missing::supported(ctx);
    let lacking = crate::trino::missing::unsupported(ctx);
    let passed = outcomes.iter().filter(|o| **o == Outcome::Pass).count();
    let names: Vec<String> = supported
        .iter()
        .map(|n| match passing.get(n) {
            Some(k) => format!("`{n}` ({k})"),
            None => format!("`{n}`"),
        })
        .collect();
    let block = format!(
        "{BEGIN}\n\
         Generated by the conformance test (`UPDATE_README=1 cargo test -p eventlake-query \\\n\
         athena_conformance` refreshes it). In parentheses: the cases of `crates/query/tests/athena/`\n\
         with Athena's documented result that the local engine reproduces ({passed} of {} pass;\n\
         the others are listed with what happens instead in `known-gaps.txt`).\n\n\
         **Athena functions that run locally ({}):** {}.\n\n\
         **Athena functions the local engine lacks ({}),** which fail before the query runs with\n\
         the function's line and column: {}.\n\
         {END}",
        cases.len(),
        supported.len(),
        names.join(", "),
        lacking.len(),
        lacking
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(b), Some(e)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("README.md has no {BEGIN} … {END} block");
    };
    let current = &readme[b..e + END.len()];
    if current == block {
        return;
    }
    if std::env::var_os("UPDATE_README").is_some() {
        let new = format!("{}{block}{}", &readme[..b], &readme[e + END.len()..]);
        std::fs::write(&path, new).unwrap();
    } else {
        panic!(
            "README.md's list of Athena functions is out of date: run\n  UPDATE_README=1 cargo test -p eventlake-query athena_conformance"
        );
    }
}
