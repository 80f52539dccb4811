//! The tracing-overhead experiment: the claim and its verdict, each trial by pair, each point's
//! estimate and interval against the bound, and for a sweep the cost curve. The charts are in
//! `figures`; this module assembles the section's facts and tables around them.

mod figures;

use serde::Serialize;

use super::{Fact, Figure, Table, fact};
use crate::format::{count, duration_us, percent, rate, signed_percent};
use crate::result::overhead::{
    ArmResult, Effect, InstructionCounts, OverheadResult, PointResult, Spread, Verdict,
};
use crate::scenario::ClaimMetric;
use figures::{effect_figure, sweep_figure, trials_figure};

#[derive(Debug, Serialize)]
pub(super) struct OverheadView {
    claim: String,
    verdict: String,
    verdict_class: &'static str,
    facts: Vec<Fact>,
    points: Vec<PointView>,
    effect: Option<Figure>,
    sweep: Option<Figure>,
}

#[derive(Debug, Serialize)]
struct PointView {
    setting: Option<String>,
    verdict: String,
    verdict_class: &'static str,
    trials: Option<Figure>,
    facts: Vec<Fact>,
    effects: Table,
    services: Table,
    steps: Table,
}

fn verdict_class(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Inconclusive => "inconclusive",
    }
}

pub(super) fn claim_text(experiment: &OverheadResult) -> String {
    format!(
        "{} rises by less than {} with tracing on",
        experiment.claim.metric.describe(),
        percent(experiment.claim.bound)
    )
}

fn effect_text(effect: Option<&Effect>, show: impl Fn(f64) -> String) -> String {
    match effect {
        Some(e) => {
            let estimate = show(e.estimate);
            let signed = if e.estimate > 0.0 {
                format!("+{estimate}")
            } else {
                estimate
            };
            format!("{signed} [{}, {}]", show(e.low), show(e.high))
        }
        None => "n/a (too few pairs)".to_owned(),
    }
}

fn arm_text(arm: &ArmResult) -> String {
    let tracing = if arm.tracing {
        "tracing on"
    } else {
        "tracing off"
    };
    let mut parts = vec![tracing.to_owned()];
    parts.extend(arm.extras.iter().cloned());
    parts.join("; ")
}

pub(super) fn overhead(experiment: &OverheadResult) -> OverheadView {
    let mut facts = vec![
        fact("control arm", arm_text(&experiment.control)),
        fact("treatment arm", arm_text(&experiment.treatment)),
    ];
    for (n, step) in experiment.steps.iter().enumerate() {
        facts.push(fact(
            format!("arm between them, {}", n + 1),
            format!("{}: {}", step.name, arm_text(&step.arm)),
        ));
    }
    facts.push(fact(
        "trials",
        format!(
            "{} per arm, {}; {} settle after each",
            experiment.trials_per_arm,
            experiment.execution.describe(),
            duration_us(experiment.settle_s * 1e6)
        ),
    ));
    if let Some(spans) = experiment.spans_received {
        facts.push(fact("spans received from the tracing arm", count(spans)));
    }
    let sweep = experiment.points.len() > 1;
    let points = experiment
        .points
        .iter()
        .enumerate()
        .map(|(i, point)| point_view(experiment, point, sweep.then_some(i)))
        .collect();
    OverheadView {
        claim: claim_text(experiment),
        verdict: experiment.verdict.to_string(),
        verdict_class: verdict_class(experiment.verdict),
        facts,
        points,
        effect: effect_figure(experiment),
        sweep: sweep.then(|| sweep_figure(experiment)).flatten(),
    }
}

/// The second estimate, labelled as instructions: a count, not a time.
fn instruction_facts(counts: &InstructionCounts) -> Vec<Fact> {
    let spread = |s: Option<Spread>| {
        s.map_or_else(
            || "n/a".to_owned(),
            |s| {
                format!(
                    "{} (from {} to {})",
                    signed_percent(s.median),
                    signed_percent(s.low),
                    signed_percent(s.high)
                )
            },
        )
    };
    let per_request = |x: Option<f64>| x.map_or_else(|| "n/a".to_owned(), |x| count(x as u64));
    let mut facts = vec![
        fact(
            "instructions per request (callgrind; not time)",
            format!(
                "control {}, treatment {}: {}, over {} counts of {} requests at {}",
                per_request(counts.control),
                per_request(counts.treatment),
                spread(counts.relative),
                counts.counts.len(),
                counts.requests,
                rate(counts.rate),
            ),
        ),
        fact(
            "instructions tracing adds per request",
            counts.cost.map_or_else(
                || "n/a".to_owned(),
                |c| {
                    format!(
                        "{} (from {} to {})",
                        c.median as i64, c.low as i64, c.high as i64
                    )
                },
            ),
        ),
    ];
    for (service, s) in &counts.services {
        facts.push(fact(
            format!("instructions per request, {service}"),
            spread(Some(*s)),
        ));
    }
    facts
}

fn point_view(experiment: &OverheadResult, point: &PointResult, index: Option<usize>) -> PointView {
    let metric = experiment.claim.metric;
    let a = &point.analysis;
    let cpu = |us: Option<f64>| us.map_or_else(|| "n/a".to_owned(), duration_us);
    let mut facts = vec![
        fact("complete pairs", a.pairs.to_string()),
        fact("CPU per request, control (median)", cpu(a.control_cpu_us)),
        fact(
            "CPU per request, treatment (median)",
            cpu(a.treatment_cpu_us),
        ),
        fact(
            "tracing's cost per request",
            effect_text(a.cpu_cost_us.as_ref(), duration_us),
        ),
        fact(
            "smallest detectable effect",
            a.smallest_detectable
                .map_or_else(|| "n/a".to_owned(), |r| format!("±{}", percent(r))),
        ),
    ];
    if let Some(break_even) = a.break_even_us {
        let range = a.break_even_range_us.map_or(String::new(), |(low, high)| {
            format!(" (95%: {} to {})", duration_us(low), duration_us(high))
        });
        facts.push(fact(
            "break-even",
            format!(
                "the cost is under {} only for requests of at least {} of CPU{range}",
                percent(experiment.claim.bound),
                duration_us(break_even)
            ),
        ));
    }
    if let Some(counts) = &point.instructions {
        facts.extend(instruction_facts(counts));
    }
    let mut effects = Table::new(&["metric", "estimate", "95% low", "95% high", "pairs"]);
    for (name, effect, is_claim) in [
        ("CPU per request", a.cpu, metric == ClaimMetric::Cpu),
        ("latency p50", a.p50, metric == ClaimMetric::P50),
        ("latency p90", a.p90, metric == ClaimMetric::P90),
        ("latency p99", a.p99, metric == ClaimMetric::P99),
    ] {
        let cells = match effect {
            Some(e) => vec![
                name.to_owned(),
                signed_percent(e.estimate),
                signed_percent(e.low),
                signed_percent(e.high),
                e.pairs.to_string(),
            ],
            None => vec![
                name.to_owned(),
                "n/a (too few pairs)".to_owned(),
                String::new(),
                String::new(),
                String::new(),
            ],
        };
        effects.push(cells, is_claim);
    }
    let mut services = Table::new(&[
        "service",
        "CPU per request, control",
        "relative change [95%]",
        "cost per request [95%]",
        "page faults per request, control → treatment",
    ]);
    for (name, effect) in &a.services {
        let faults = effect.faults.map_or_else(
            || "n/a".to_owned(),
            |f| format!("{:.1} → {:.1}", f.control, f.treatment),
        );
        // A row whose faults differ is marked: its CPU comparison measures the allocator too.
        let faults_differ = effect.faults.is_some_and(|f| f.differ());
        services.push(
            vec![
                name.clone(),
                cpu(effect.control_cpu_us),
                effect_text(effect.relative.as_ref(), percent),
                effect_text(effect.cost_us.as_ref(), duration_us),
                faults,
            ],
            faults_differ,
        );
        if faults_differ {
            facts.push(fact(
                "warning",
                format!(
                    "{name}'s page faults differ between the arms: its memory allocator moves its \
                     CPU per request by itself, tracing or not (docs/overhead.md, \"Page faults\")"
                ),
            ));
        }
    }
    let mut steps = Table::new(&[
        "arm",
        "adds to the arm before it [95%]",
        "share of the control's CPU [95%]",
        "per service",
    ]);
    for step in &a.steps {
        let per_service: Vec<String> = step
            .services
            .iter()
            .map(|(name, e)| format!("{name} {}", effect_text(e.as_ref(), duration_us)))
            .collect();
        steps.push(
            vec![
                experiment.arm_title(step.arm),
                effect_text(step.cost_us.as_ref(), duration_us),
                effect_text(step.share.as_ref(), percent),
                per_service.join("; "),
            ],
            false,
        );
    }
    PointView {
        setting: point.setting.clone(),
        verdict: a.verdict.to_string(),
        verdict_class: verdict_class(a.verdict),
        trials: trials_figure(metric, point, index),
        facts,
        effects,
        services,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::report::page::samples::{charts, element, html, sample};
    use crate::result::overhead::ArmName;

    #[test]
    fn the_overhead_section_shows_the_claim_and_its_evidence() {
        let page = html(&sample("overhead-quick"));
        let section = element(&page, "overhead");
        assert!(section.contains("CPU per request rises by less than 1.00% with tracing on"));
        assert!(
            section.contains("+315 µs [72.2 µs, 582 µs]"),
            "absolute cost"
        );
        assert!(section.contains("±15.8%"), "smallest detectable effect");
        assert!(section.contains("31.5 ms"), "break-even");
        assert!(section.contains("api-gateway") && section.contains("core-engine"));
        let effect = element(&page, "overhead-effect");
        assert!(effect.contains("class=\"rule bound\""));
        assert!(effect.contains("class=\"rule zero\""));
        let trials = charts(element(&page, "overhead-trials"))[0];
        // Eight pairs: sixteen trials, eight links.
        assert_eq!(trials.matches("<circle class=\"series").count(), 16);
        assert_eq!(trials.matches("class=\"link\"").count(), 8);
        // The experiment's timeline is its trials: no phases, no target line.
        let throughput = element(&page, "timeline-throughput");
        assert!(!throughput.contains("target rate") && !throughput.contains("rule phase"));
    }

    #[test]
    fn steps_and_instruction_counts_show_only_when_measured() {
        let plain = element(&html(&sample("overhead-quick")), "overhead").to_owned();
        assert!(!plain.contains("Where tracing's cost goes"));
        assert!(!plain.contains("instructions per request"));

        let mut result = sample("overhead-quick");
        let experiment = result.overhead.as_mut().expect("an experiment");
        experiment.steps = vec![crate::result::overhead::StepArm {
            name: "spans, not exported".to_owned(),
            arm: experiment.treatment.clone(),
        }];
        let point = &mut experiment.points[0];
        let cost = point.analysis.cpu_cost_us;
        point.analysis.steps = vec![
            crate::result::overhead::StepEffect {
                arm: ArmName::Step(0),
                cost_us: cost,
                share: point.analysis.cpu,
                services: BTreeMap::new(),
            },
            crate::result::overhead::StepEffect {
                arm: ArmName::Treatment,
                cost_us: None,
                share: None,
                services: BTreeMap::new(),
            },
        ];
        let spread = Spread {
            median: 0.5,
            low: 0.49,
            high: 0.51,
        };
        point.instructions = Some(InstructionCounts {
            requests: 400,
            rate: 20.0,
            counts: Vec::new(),
            control: Some(200_000.0),
            treatment: Some(300_000.0),
            relative: Some(spread),
            cost: None,
            services: [("core-engine".to_owned(), spread)].into(),
        });
        let page = html(&result);
        let section = element(&page, "overhead");
        assert!(section.contains("Where tracing's cost goes"));
        assert!(
            section.contains("spans, not exported"),
            "the step by its name"
        );
        assert!(
            section.contains("+315 µs [72.2 µs, 582 µs]"),
            "the step's cost"
        );
        assert!(
            section.contains("<td>treatment</td><td class=\"num\">n&#x2f;a (too few pairs)"),
            "the treatment's step"
        );
        assert!(
            section.contains("control 200,000, treatment 300,000: +50.0%"),
            "{section}"
        );
        assert!(section.contains("instructions per request, core-engine"));
    }

    #[test]
    fn page_faults_show_per_service_and_a_difference_is_flagged() {
        let plain = element(&html(&sample("overhead-quick")), "overhead").to_owned();
        assert!(plain.contains("page faults per request, control → treatment"));
        assert!(
            !plain.contains("page faults differ"),
            "a stored result without them"
        );

        let mut result = sample("overhead-quick");
        let experiment = result.overhead.as_mut().expect("an experiment");
        let services = &mut experiment.points[0].analysis.services;
        for (name, effect) in services.iter_mut() {
            let treatment = if name == "core-engine" { 3.9 } else { 0.0 };
            effect.faults = Some(crate::result::overhead::FaultCounts {
                control: if name == "core-engine" { 16.7 } else { 0.0 },
                treatment,
            });
        }
        let page = html(&result);
        let section = element(&page, "overhead");
        assert!(section.contains("16.7 → 3.9"), "{section}");
        assert!(section.contains("core-engine&#x27;s page faults differ between the arms"));
        assert!(!section.contains("api-gateway&#x27;s page faults differ"));
    }
}
