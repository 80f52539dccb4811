//! The PromQL of the alert rules and the Grafana dashboards, and the metric names it reads.
//!
//! Names come from the parsed query (`promql-parser`'s AST), not from pattern matching, so that
//! function names, label names and `by (...)` clauses are never mistaken for metrics.

use std::collections::{BTreeMap, BTreeSet};

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Names Prometheus makes itself rather than scraping them.
pub(crate) const PROMETHEUS_OWN: &[&str] = &["up", "ALERTS"];

/// What a Grafana variable other than an interval becomes: a label value no job has.
const VARIABLE: &str = "grafana-variable";

/// One query and where it was found, for messages.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub origin: String,
    pub expr: String,
}

/// A metric a query reads, and the jobs its selector restricts it to (empty: any job).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Reference {
    pub name: String,
    pub jobs: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
pub(crate) struct RuleGroup {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
pub(crate) struct Rule {
    #[serde(default)]
    pub alert: Option<String>,
    #[serde(default)]
    pub record: Option<String>,
    pub expr: String,
}

pub(crate) fn rule_file(text: &str) -> Result<RuleFile, String> {
    serde_saphyr::from_str(text).map_err(|e| format!("alert rules: {e}"))
}

/// Every rule's expression, named by its group and alert.
pub(crate) fn alert_queries(rules: &RuleFile) -> Vec<Query> {
    rules
        .groups
        .iter()
        .flat_map(|group| {
            group.rules.iter().map(move |rule| Query {
                origin: format!(
                    "alerts.yml {}/{}",
                    group.name,
                    rule.alert
                        .as_deref()
                        .or(rule.record.as_deref())
                        .unwrap_or("?")
                ),
                expr: rule.expr.clone(),
            })
        })
        .collect()
}

/// The cases of `promtool test rules`, reduced to what coverage needs: per alert, how many
/// evaluations expect it firing and how many expect silence.
#[derive(Deserialize)]
struct RuleTests {
    tests: Vec<RuleTestGroup>,
}

#[derive(Deserialize)]
struct RuleTestGroup {
    #[serde(default)]
    alert_rule_test: Vec<AlertRuleTest>,
}

#[derive(Deserialize)]
struct AlertRuleTest {
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<IgnoredAny>,
}

/// Alerts of `rules` that the unit tests never expect to fire, or never expect to stay quiet.
pub(crate) fn untested_alerts(rules: &RuleFile, tests_yaml: &str) -> Result<Vec<String>, String> {
    let tests: RuleTests =
        serde_saphyr::from_str(tests_yaml).map_err(|e| format!("alert rule tests: {e}"))?;
    let mut cases: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for case in tests.tests.iter().flat_map(|t| &t.alert_rule_test) {
        let (firing, quiet) = cases.entry(case.alertname.as_str()).or_default();
        if case.exp_alerts.is_empty() {
            *quiet += 1;
        } else {
            *firing += 1;
        }
    }
    let mut problems = Vec::new();
    for alert in rules
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| r.alert.as_deref())
    {
        let (firing, quiet) = cases.get(alert).copied().unwrap_or_default();
        if firing == 0 {
            problems.push(format!("{alert}: no test case expects it to fire"));
        }
        if quiet == 0 {
            problems.push(format!("{alert}: no test case expects it to stay quiet"));
        }
    }
    Ok(problems)
}

/// Every Prometheus query of a dashboard's panels (rows' nested panels included). Targets of
/// other data sources (Jaeger) have no `expr` and are left out.
pub(crate) fn dashboard_queries(file: &str, json: &str) -> Result<Vec<Query>, String> {
    let dashboard: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("{file}: {e}"))?;
    let mut queries = Vec::new();
    let mut panels: Vec<&serde_json::Value> = dashboard["panels"]
        .as_array()
        .ok_or_else(|| format!("{file}: no panels"))?
        .iter()
        .collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                queries.push(Query {
                    origin: format!("{file} panel {:?}", panel["title"].as_str().unwrap_or("?")),
                    expr: expr.to_owned(),
                });
            }
        }
    }
    Ok(queries)
}

/// Replaces Grafana's variables with values PromQL accepts: the interval ones (`$__rate_interval`,
/// `${__interval}`, ...) with a duration, any other (`$job`, `${instance}`) with a marker word, as
/// they stand only in label values here; a job matcher holding it restricts nothing.
pub(crate) fn substitute_grafana_variables(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        if name.is_empty() {
            // A `$` that starts no variable, such as a regex anchor.
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(if name.starts_with("__") {
            "5m"
        } else {
            VARIABLE
        });
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// The metrics `expr` reads.
pub(crate) fn references(expr: &str) -> Result<Vec<Reference>, String> {
    let parsed = parser::parse(&substitute_grafana_variables(expr))?;
    let mut found = Vec::new();
    walk(&parsed, &mut found)?;
    found.sort();
    found.dedup();
    Ok(found)
}

fn walk(expr: &Expr, found: &mut Vec<Reference>) -> Result<(), String> {
    match expr {
        Expr::VectorSelector(vs) => found.push(reference(vs)?),
        Expr::MatrixSelector(ms) => found.push(reference(&ms.vs)?),
        Expr::Aggregate(e) => {
            walk(&e.expr, found)?;
            if let Some(param) = &e.param {
                walk(param, found)?;
            }
        }
        Expr::Unary(e) => walk(&e.expr, found)?,
        Expr::Binary(e) => {
            walk(&e.lhs, found)?;
            walk(&e.rhs, found)?;
        }
        Expr::Paren(e) => walk(&e.expr, found)?,
        Expr::Subquery(e) => walk(&e.expr, found)?,
        Expr::Call(call) => {
            for arg in &call.args.args {
                walk(arg, found)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::Extension(_) => return Err("a PromQL extension, which Prometheus lacks".into()),
    }
    Ok(())
}

fn reference(vs: &VectorSelector) -> Result<Reference, String> {
    let named = |label: &'static str| vs.matchers.matchers.iter().filter(move |m| m.name == label);
    let name = vs
        .name
        .clone()
        .or_else(|| {
            named("__name__")
                .find(|m| matches!(m.op, MatchOp::Equal))
                .map(|m| m.value.clone())
        })
        .ok_or_else(|| format!("a selector without a metric name: {vs}"))?;
    let mut jobs = Vec::new();
    for matcher in named("job").filter(|m| !m.value.contains(VARIABLE)) {
        match &matcher.op {
            MatchOp::Equal => jobs.push(matcher.value.clone()),
            // A plain alternation such as `api-gateway|core-engine`; anything fancier stays
            // unrestricted rather than guessed.
            MatchOp::Re(_)
                if matcher.value.split('|').all(|j| {
                    !j.is_empty()
                        && j.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
                }) =>
            {
                jobs.extend(matcher.value.split('|').map(str::to_owned))
            }
            _ => {}
        }
    }
    Ok(Reference { name, jobs })
}

/// What each query reads that the scraped services do not export: `exported` maps each
/// Prometheus job to the sample names of its scrape. A metric restricted to jobs must be exported
/// by each of them; an unrestricted one by at least one.
pub(crate) fn unknown_references(
    queries: &[Query],
    exported: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for query in queries {
        let references = match references(&query.expr) {
            Ok(references) => references,
            Err(error) => {
                problems.push(format!("{}: does not parse: {error}", query.origin));
                continue;
            }
        };
        for Reference { name, jobs } in references {
            let own = PROMETHEUS_OWN.contains(&name.as_str());
            if jobs.is_empty() {
                if !own && !exported.values().any(|names| names.contains(&name)) {
                    problems.push(format!(
                        "{}: `{name}` is exported by no service",
                        query.origin
                    ));
                }
                continue;
            }
            for job in jobs {
                match exported.get(&job) {
                    None => problems.push(format!(
                        "{}: `{name}` names the job {job:?}, which Prometheus does not scrape",
                        query.origin
                    )),
                    Some(names) if !own && !names.contains(&name) => problems.push(format!(
                        "{}: `{name}` is not exported by {job}",
                        query.origin
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    problems
}
