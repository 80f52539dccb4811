//! The metrics checks a scenario declares for its own system: each named series must grow over
//! the load by what the harness received, or by as much as another series. Nothing else is
//! checked: a metric that no rule names cannot fail the run.

use std::collections::BTreeMap;

use super::Snapshot;
use super::reconcile::{Out, Pair, Reconciliation, Rules, by_service, matchers};
use crate::scenario::{Equals, MetricRule};

/// What the harness received, by request kind and outcome label (`200`, `OK`, `timeout`, ...).
pub type Outcomes = BTreeMap<String, BTreeMap<String, u64>>;

/// The placeholders a label value may be, standing for the outcome received.
const OUTCOME_PLACEHOLDERS: [&str; 2] = ["{status}", "{code}"];

/// Runs `rules` on the snapshots, service by service in the order the rules first name them.
pub fn reconcile(
    before: &[Snapshot],
    after: &[Snapshot],
    rules: &[MetricRule],
    received: &Outcomes,
) -> Reconciliation {
    let mut services: Vec<&str> = Vec::new();
    for rule in rules {
        if !services.contains(&rule.service.as_str()) {
            services.push(&rule.service);
        }
    }
    let per_service: Vec<(&str, Box<Rules<'_>>)> = services
        .iter()
        .map(|&service| {
            let mine: Vec<&MetricRule> = rules.iter().filter(|r| r.service == service).collect();
            let run = move |out: &mut Out<'_>, pair: &Pair<'_>| {
                for rule in &mine {
                    check(out, pair, rule, received);
                }
            };
            (service, Box::new(run) as Box<Rules<'_>>)
        })
        .collect();
    let refs: Vec<(&str, &Rules<'_>)> = per_service
        .iter()
        .map(|(service, rules)| (*service, rules.as_ref()))
        .collect();
    by_service(before, after, &refs)
}

fn check(out: &mut Out<'_>, pair: &Pair<'_>, rule: &MetricRule, received: &Outcomes) {
    let placeholder = rule
        .labels
        .iter()
        .position(|(_, value)| OUTCOME_PLACEHOLDERS.contains(&value.as_str()));
    match (&rule.equals, placeholder) {
        (Equals::Responses { kinds }, Some(at)) => {
            // One check per outcome received, with the outcome as the label's value.
            for (outcome, count) in answers(received, kinds) {
                let mut labels = rule.labels.clone();
                labels[at].1 = outcome.clone();
                let matching = pairs(&labels);
                out.compare(
                    &rule.metric,
                    matchers(&matching),
                    count as f64,
                    pair.delta(&rule.metric, &matching),
                    format!(
                        "{}: responses with outcome {outcome} ({})",
                        rule.at,
                        of(kinds)
                    ),
                );
            }
        }
        (Equals::Responses { kinds }, None) => {
            let matching = pairs(&rule.labels);
            let count: u64 = answers(received, kinds).values().sum();
            out.compare(
                &rule.metric,
                matchers(&matching),
                count as f64,
                pair.delta(&rule.metric, &matching),
                format!("{}: responses received ({})", rule.at, of(kinds)),
            );
        }
        (Equals::Metric { metric, labels }, _) => {
            let matching = pairs(&rule.labels);
            let other = pairs(labels);
            out.compare(
                &rule.metric,
                matchers(&matching),
                pair.delta(metric, &other),
                pair.delta(&rule.metric, &matching),
                format!(
                    "{}: as much as {metric}{{{}}} grew",
                    rule.at,
                    matchers(&other)
                ),
            );
        }
    }
}

fn pairs(labels: &[(String, String)]) -> Vec<(&str, &str)> {
    labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Answers (not timeouts or transport failures) of `kinds` (all when empty), by outcome.
fn answers(received: &Outcomes, kinds: &[String]) -> BTreeMap<String, u64> {
    let mut total: BTreeMap<String, u64> = BTreeMap::new();
    for (kind, outcomes) in received {
        if !kinds.is_empty() && !kinds.contains(kind) {
            continue;
        }
        for (outcome, count) in outcomes {
            if outcome != "timeout" && outcome != "transport" {
                *total.entry(outcome.clone()).or_default() += count;
            }
        }
    }
    total
}

fn of(kinds: &[String]) -> String {
    if kinds.is_empty() {
        "every kind".to_owned()
    } else {
        format!("kinds {}", kinds.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Sample;

    /// A series: its name, labels and value.
    type Series<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

    fn snapshot(service: &str, series: &[Series<'_>]) -> Snapshot {
        Snapshot {
            service: service.to_owned(),
            samples: series
                .iter()
                .map(|(name, labels, value)| Sample {
                    name: (*name).to_owned(),
                    labels: labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    value: *value,
                })
                .collect(),
        }
    }

    fn rule(labels: &[(&str, &str)], equals: Equals) -> MetricRule {
        MetricRule {
            service: "front".into(),
            metric: "http_requests_total".into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            equals,
            at: "x.yaml:1:1: verify.metrics.checks[0]".into(),
        }
    }

    fn received() -> Outcomes {
        BTreeMap::from([
            (
                "quote".to_owned(),
                BTreeMap::from([
                    ("200".to_owned(), 30),
                    ("401".to_owned(), 5),
                    ("transport".to_owned(), 2),
                ]),
            ),
            ("other".to_owned(), BTreeMap::from([("200".to_owned(), 7)])),
        ])
    }

    fn after(count_200: f64) -> Vec<Snapshot> {
        vec![snapshot(
            "front",
            &[
                (
                    "http_requests_total",
                    &[("route", "/q"), ("status", "200")],
                    count_200,
                ),
                (
                    "http_requests_total",
                    &[("route", "/q"), ("status", "401")],
                    5.0,
                ),
                (
                    "http_request_duration_seconds_count",
                    &[("route", "/q")],
                    35.0,
                ),
                ("unrelated_total", &[], 1e9),
            ],
        )]
    }

    #[test]
    fn a_counter_per_status_matches_what_was_received_and_nothing_else_is_checked() {
        let rules = [rule(
            &[("route", "/q"), ("status", "{status}")],
            Equals::Responses {
                kinds: vec!["quote".into()],
            },
        )];
        let before = vec![snapshot("front", &[])];
        let result = reconcile(&before, &after(30.0), &rules, &received());
        assert!(result.passed, "{:#?}", result.checks);
        assert_eq!(result.checks.len(), 2, "{:#?}", result.checks);
    }

    #[test]
    fn a_counter_that_counts_twice_fails_with_expected_and_observed() {
        let rules = [rule(
            &[("route", "/q"), ("status", "{status}")],
            Equals::Responses {
                kinds: vec!["quote".into()],
            },
        )];
        let before = vec![snapshot("front", &[])];
        let result = reconcile(&before, &after(60.0), &rules, &received());
        assert!(!result.passed);
        let failed = result.failures();
        assert_eq!(failed.len(), 1);
        assert_eq!((failed[0].expected, failed[0].observed), (30.0, 60.0));
        assert!(failed[0].labels.contains("status=\"200\""), "{}", failed[0]);
    }

    #[test]
    fn a_histogram_count_equals_a_counter() {
        let equals = Equals::Metric {
            metric: "http_requests_total".into(),
            labels: vec![("route".into(), "/q".into())],
        };
        let mut histogram = rule(&[("route", "/q")], equals);
        histogram.metric = "http_request_duration_seconds_count".into();
        let before = vec![snapshot("front", &[])];
        let ok = reconcile(&before, &after(30.0), &[histogram.clone()], &received());
        assert!(ok.passed, "{:#?}", ok.checks);
        let doubled = reconcile(&before, &after(60.0), &[histogram], &received());
        assert!(!doubled.passed, "{:#?}", doubled.checks);
    }

    #[test]
    fn a_service_without_snapshots_fails_once() {
        let rules = [rule(&[], Equals::Responses { kinds: Vec::new() })];
        let result = reconcile(&[], &[], &rules, &received());
        assert!(!result.passed);
        assert_eq!(result.checks.len(), 1);
    }
}
