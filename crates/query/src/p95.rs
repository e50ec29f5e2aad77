//! `etl check-p95`: runs each saved query N times on an engine and compares its P95 latency with
//! the budget in its header (or one given for all), as a table, as JSON and as an SVG chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::athena::Athena;
use crate::error::{Error, Result};
use crate::saved::SavedQuery;

/// Where the queries run.
pub enum Engine {
    Local(SessionContext),
    Athena(Athena),
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Engine {
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Local(_) => "local",
            Engine::Athena(_) => "athena",
        }
    }

    /// Runs one query; returns (wall ms, queue ms, rows).
    async fn time(&self, sql: &str) -> Result<(f64, f64, usize)> {
        match self {
            Engine::Local(ctx) => {
                let prepared = &crate::session::prepare(ctx, sql)?;
                crate::session::athena_names(ctx, sql).await?;
                let sql = prepared;
                let t = Instant::now();
                let batches = crate::session::dataframe(ctx, sql).await?.collect().await?;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                Ok((ms, 0.0, batches.iter().map(|b| b.num_rows()).sum()))
            }
            Engine::Athena(a) => {
                let r = a.run(sql).await?;
                Ok((r.wall_ms as f64, r.queue_ms as f64, r.rows.len()))
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryStats {
    pub name: String,
    pub file: String,
    pub runs: usize,
    pub rows: usize,
    pub budget_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    /// Athena only: P95 of the time spent queued (included in the latencies).
    pub queue_p95_ms: f64,
    pub samples_ms: Vec<f64>,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub engine: String,
    pub warmup: usize,
    pub runs: usize,
    pub ok: bool,
    pub over_budget: Vec<String>,
    pub queries: Vec<QueryStats>,
}

/// The nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs every query `warmup` times untimed, then `runs` times timed (after checking all of them
/// render), in turn, so that a noisy moment spreads over all queries rather than hitting one.
/// The warm-up keeps a process's one-time costs (thread pools, first reads of file footers) out
/// of the figures, as an analyst's engine is already running.
pub async fn check(
    engine: &Engine,
    queries: &[SavedQuery],
    params: &BTreeMap<String, String>,
    (warmup, runs): (usize, usize),
    budget: Option<Duration>,
) -> Result<Report> {
    let sqls: Vec<String> = queries
        .iter()
        .map(|q| q.render(params))
        .collect::<Result<_>>()?;
    if let Engine::Local(ctx) = engine {
        // Plan every query once before timing any: unknown columns or functions fail here.
        for (q, sql) in queries.iter().zip(&sqls) {
            let failed = |message: String| Error::SavedQuery {
                path: q.path.display().to_string(),
                line: 1,
                message,
            };
            // Planned as the timed runs will plan it (Athena's type syntax, lateral UNNEST, and
            // the rewrites of the parsed query: outputs named by place, subquery tests in the
            // select list, ...); DataFusion's own planner refused some that run.
            let prepared = crate::session::prepare(ctx, sql).map_err(|e| failed(e.to_string()))?;
            crate::session::athena_names(ctx, sql)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let sql = prepared;
            crate::session::dataframe(ctx, &sql)
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); queries.len()];
    let mut queued: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); queries.len()];
    let mut rows = vec![0; queries.len()];
    for (i, sql) in sqls.iter().enumerate().cycle().take(sqls.len() * warmup) {
        engine.time(sql).await.map_err(|e| Error::Run {
            query: queries[i].path.display().to_string(),
            run: "warm-up".into(),
            source: Box::new(e),
        })?;
    }
    for run in 0..runs {
        for (i, sql) in sqls.iter().enumerate() {
            let (ms, q, n) = engine.time(sql).await.map_err(|e| Error::Run {
                query: queries[i].path.display().to_string(),
                run: format!("run {}", run + 1),
                source: Box::new(e),
            })?;
            samples[i].push(ms);
            queued[i].push(q);
            rows[i] = n;
        }
    }
    let mut out = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let mut s = samples[i].clone();
        s.sort_by(f64::total_cmp);
        let mut qs = queued[i].clone();
        qs.sort_by(f64::total_cmp);
        let budget_ms = budget.unwrap_or(q.budget).as_secs_f64() * 1000.0;
        let p95 = percentile(&s, 95.0);
        out.push(QueryStats {
            name: q.name.clone(),
            file: q.path.display().to_string(),
            runs,
            rows: rows[i],
            budget_ms,
            p50_ms: percentile(&s, 50.0),
            p95_ms: p95,
            max_ms: s.last().copied().unwrap_or(0.0),
            queue_p95_ms: percentile(&qs, 95.0),
            samples_ms: samples[i].clone(),
            ok: p95 <= budget_ms,
        });
    }
    let over_budget: Vec<String> = out
        .iter()
        .filter(|q| !q.ok)
        .map(|q| q.name.clone())
        .collect();
    Ok(Report {
        engine: engine.name().into(),
        warmup,
        runs,
        ok: over_budget.is_empty(),
        over_budget,
        queries: out,
    })
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else {
        format!("{v:.1} ms")
    }
}

/// The report as a table for people.
pub fn format_report(r: &Report) -> String {
    let mut s = format!(
        "{:<28} {:>5} {:>10} {:>10} {:>10} {:>10}  {}\n",
        "query", "runs", "p50", "p95", "max", "budget", "verdict"
    );
    for q in &r.queries {
        let _ = writeln!(
            s,
            "{:<28} {:>5} {:>10} {:>10} {:>10} {:>10}  {}",
            q.name,
            q.runs,
            ms(q.p50_ms),
            ms(q.p95_ms),
            ms(q.max_ms),
            ms(q.budget_ms),
            if q.ok { "ok" } else { "OVER BUDGET" }
        );
        if r.engine == "athena" {
            let _ = writeln!(s, "{:<28} queued p95 {}", "", ms(q.queue_p95_ms));
        }
    }
    let _ = writeln!(
        s,
        "{} queries on {}, {} runs each: {}",
        r.queries.len(),
        r.engine,
        r.runs,
        if r.ok {
            "every P95 within its budget".to_owned()
        } else {
            format!("over budget: {}", r.over_budget.join(", "))
        }
    );
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A self-contained SVG: one row per query, every run as a dot on a log-scaled latency axis, the
/// P50 and P95 as ticks and the budget as a red mark.
pub fn chart_svg(r: &Report) -> String {
    let (left, width, row_h, top) = (230.0, 640.0, 34.0, 50.0);
    let height = top + row_h * r.queries.len() as f64 + 50.0;
    let lo = r
        .queries
        .iter()
        .flat_map(|q| q.samples_ms.iter().copied())
        .fold(f64::INFINITY, f64::min)
        .max(0.01);
    let hi = r
        .queries
        .iter()
        .flat_map(|q| q.samples_ms.iter().copied().chain([q.budget_ms]))
        .fold(0.0_f64, f64::max)
        .max(lo * 10.0);
    let (llo, lhi) = (lo.log10().floor(), hi.log10().ceil());
    let x = |v: f64| left + (v.max(lo).log10() - llo) / (lhi - llo) * width;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="12">
<title>eventlake saved queries: latency per run ({engine}, {runs} runs)</title>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="15">Saved queries on {engine}: {runs} runs each (dots), P50 (blue), P95 (black), budget (red)</text>
"#,
        w = left + width + 40.0,
        engine = esc(&r.engine),
        runs = r.runs
    );
    let mut decade = llo;
    while decade <= lhi {
        let v = 10f64.powf(decade);
        let px = x(v);
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{b:.1}" stroke="#ddd"/><text x="{px:.1}" y="{t:.1}" text-anchor="middle">{label}</text>"##,
            b = height - 40.0,
            t = height - 25.0,
            label = esc(&ms(v))
        );
        decade += 1.0;
    }
    for (i, q) in r.queries.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        let color = if q.ok { "#222" } else { "#c00" };
        let _ = writeln!(
            s,
            r#"<text x="{tx}" y="{ty:.1}" text-anchor="end" fill="{color}">{name}</text>"#,
            tx = left - 10.0,
            ty = y + 4.0,
            name = esc(&q.name)
        );
        for v in &q.samples_ms {
            let _ = writeln!(
                s,
                r##"<circle cx="{:.1}" cy="{y:.1}" r="3" fill="#888" fill-opacity="0.5"><title>{}</title></circle>"##,
                x(*v),
                esc(&ms(*v))
            );
        }
        for (v, c, label) in [
            (q.p50_ms, "#1f77b4", "P50"),
            (q.p95_ms, "#000", "P95"),
            (q.budget_ms, "#d62728", "budget"),
        ] {
            let _ = writeln!(
                s,
                r#"<line x1="{px:.1}" y1="{a:.1}" x2="{px:.1}" y2="{b:.1}" stroke="{c}" stroke-width="2"><title>{label} {val}</title></line>"#,
                px = x(v),
                a = y - 10.0,
                b = y + 10.0,
                val = esc(&ms(v))
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 10.0);
        assert_eq!(percentile(&v, 95.0), 19.0);
        assert_eq!(percentile(&v, 100.0), 20.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        assert_eq!(percentile(&[], 95.0), 0.0);
    }
}
