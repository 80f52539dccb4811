//! The tracing-overhead experiment: the claim and its verdict, each trial by pair, each point's
//! estimate and interval against the bound, and for a sweep the cost curve.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Fact, Figure, Table, fact};
use crate::overhead::{
    ArmName, ArmResult, Effect, InstructionCounts, OverheadResult, PointResult, Spread,
    TrialResult, Verdict,
};
use crate::report::chart::{Axis, Chart, Color, Direction, Dot, Interval};
use crate::report::format::{bytes, count, duration_us, percent, rate, signed_percent};
use crate::scenario::ClaimMetric;

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

/// A point's name on a chart axis: the swept value alone (`1000` of `window=1000`).
fn point_label(point: &PointResult) -> String {
    match &point.setting {
        Some(setting) => setting
            .split_once('=')
            .map_or(setting.as_str(), |(_, value)| value)
            .to_owned(),
        None => "all pairs".to_owned(),
    }
}

/// A point's relative effect as an interval mark at `at`, in percent, titled for hovering.
fn relative_interval(at: f64, point: &PointResult, e: &Effect) -> Interval {
    Interval {
        at,
        low: e.low * 100.0,
        estimate: e.estimate * 100.0,
        high: e.high * 100.0,
        title: format!(
            "{}: {} {}",
            point.setting.as_deref().unwrap_or("all pairs"),
            effect_text(Some(e), percent),
            point.analysis.verdict
        ),
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

/// The claim metric's value in one trial, in the unit its chart shows: µs of CPU, ms of latency.
fn trial_value(metric: ClaimMetric, trial: &TrialResult) -> f64 {
    match metric {
        ClaimMetric::Cpu => trial.cpu_us_total,
        ClaimMetric::P50 => trial.p50_us as f64 / 1e3,
        ClaimMetric::P90 => trial.p90_us as f64 / 1e3,
        ClaimMetric::P99 => trial.p99_us as f64 / 1e3,
    }
}

fn trial_text(metric: ClaimMetric, value: f64) -> String {
    match metric {
        ClaimMetric::Cpu => duration_us(value),
        _ => duration_us(value * 1e3),
    }
}

/// A pair as people count them, from 1.
fn pair_label(pair: usize) -> String {
    pair.saturating_add(1).to_string()
}

/// The trial's peak memory over all services: a sum that cannot overflow on a crafted result.
fn total_rss(trial: &TrialResult) -> u64 {
    trial
        .peak_rss_bytes
        .values()
        .fold(0, |total, &bytes| total.saturating_add(bytes))
}

fn trials_figure(metric: ClaimMetric, point: &PointResult, index: Option<usize>) -> Option<Figure> {
    if point.trials.is_empty() {
        return None;
    }
    // The pairs present, in order: one slot each, however they are numbered.
    let pairs: Vec<usize> = point
        .trials
        .iter()
        .map(|t| t.pair)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let slot = |pair: usize| pairs.binary_search(&pair).unwrap_or(0) as f64;
    let values = point.trials.iter().map(|t| trial_value(metric, t));
    let (low, high) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = ((high - low) * 0.1).max(high * 0.01);
    // Not below zero unless a value is: none may fall off the axis.
    let floor = if low >= 0.0 {
        (low - pad).max(0.0)
    } else {
        low - pad
    };
    let y_title = match metric {
        ClaimMetric::Cpu => "CPU per request (µs)",
        ClaimMetric::P50 => "latency p50 (ms)",
        ClaimMetric::P90 => "latency p90 (ms)",
        ClaimMetric::P99 => "latency p99 (ms)",
    };
    let mut chart = Chart::new(
        format!(
            "{} per trial, control and treatment by pair{}",
            metric.describe(),
            point
                .setting
                .as_ref()
                .map_or(String::new(), |s| format!(", at {s}"))
        ),
        Axis::categories("pair", pairs.iter().map(|&p| pair_label(p)).collect()),
        Axis::linear(y_title, floor, high + pad),
    );
    // The two arms of a pair side by side, joined, so that the pairing the analysis uses shows.
    let offset = |arm: ArmName| match arm {
        ArmName::Control => -0.15,
        ArmName::Step(_) => 0.0,
        ArmName::Treatment => 0.15,
    };
    let position = |t: &TrialResult| (slot(t.pair) + 0.5 + offset(t.arm), trial_value(metric, t));
    for &pair in &pairs {
        let of = |arm| point.trials.iter().find(|t| t.pair == pair && t.arm == arm);
        if let (Some(c), Some(t)) = (of(ArmName::Control), of(ArmName::Treatment)) {
            chart.link(position(c), position(t));
        }
    }
    for (arm, color) in [
        (ArmName::Control, Color::S1),
        (ArmName::Treatment, Color::S2),
    ] {
        let dots: Vec<Dot> = point
            .trials
            .iter()
            .filter(|t| t.arm == arm)
            .map(|t| {
                let (x, y) = position(t);
                Dot {
                    x,
                    y,
                    title: format!(
                        "pair {}, {}: {}",
                        pair_label(t.pair),
                        arm.label(),
                        trial_text(metric, y)
                    ),
                }
            })
            .collect();
        let label = match arm {
            ArmName::Control => "control",
            _ => "treatment",
        };
        chart.dots(label, color, &dots);
    }
    let mut table = Table::new(&[
        "pair",
        "arm",
        "sent",
        "achieved rate",
        "CPU per request",
        "p50",
        "p90",
        "p99",
        "peak memory",
    ]);
    let mut trials: Vec<_> = point.trials.iter().collect();
    trials.sort_by_key(|t| (t.pair, t.arm));
    for t in trials {
        table.push(
            vec![
                pair_label(t.pair),
                t.arm.label(),
                count(t.sent),
                rate(t.achieved_rate),
                duration_us(t.cpu_us_total),
                duration_us(t.p50_us as f64),
                duration_us(t.p90_us as f64),
                duration_us(t.p99_us as f64),
                bytes(total_rss(t)),
            ],
            false,
        );
    }
    Some(Figure {
        id: match index {
            Some(n) => format!("overhead-trials-{n}"),
            None => "overhead-trials".to_owned(),
        },
        caption: format!(
            "Each trial's {} (the claim's metric), control and treatment side by side for each pair. The analysis compares the two trials of each pair, so drift of the machine over the run cancels.",
            metric.describe()
        ),
        svgs: vec![chart.render()],
        table,
    })
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
    ]);
    for (name, effect) in &a.services {
        services.push(
            vec![
                name.clone(),
                cpu(effect.control_cpu_us),
                effect_text(effect.relative.as_ref(), percent),
                effect_text(effect.cost_us.as_ref(), duration_us),
            ],
            false,
        );
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

/// Every point's estimate and interval of the claim's metric, against the bound.
fn effect_figure(experiment: &OverheadResult) -> Option<Figure> {
    let metric = experiment.claim.metric;
    let bound = experiment.claim.bound * 100.0;
    let effects: Vec<(usize, &PointResult, Effect)> = experiment
        .points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.analysis.claim_effect(metric).map(|e| (i, p, e)))
        .collect();
    if effects.is_empty() {
        return None;
    }
    let (low, high) = effects.iter().fold((0.0f64, bound), |(lo, hi), (_, _, e)| {
        (lo.min(e.low * 100.0), hi.max(e.high * 100.0))
    });
    let mut chart = Chart::new(
        format!(
            "Relative change in {} with tracing on: estimate and 95% interval against the claim's bound",
            metric.describe()
        ),
        Axis::linear(
            format!("change in {} (%)", metric.describe()),
            low,
            high,
        ),
        Axis::categories(
            "",
            experiment.points.iter().map(point_label).rev().collect(),
        ),
    )
    .with_rows(experiment.points.len());
    let rows = experiment.points.len();
    chart.vrule(0.0, "zero", "");
    chart.vrule(
        bound,
        "bound",
        &format!("claim: < +{}", percent(experiment.claim.bound)),
    );
    let intervals: Vec<Interval> = effects
        .iter()
        // Rows run top to bottom in the points' order.
        .map(|(i, point, e)| relative_interval((rows - 1 - i) as f64 + 0.5, point, e))
        .collect();
    chart.intervals(
        "estimate, 95% interval",
        Color::S2,
        Direction::Horizontal,
        &intervals,
    );
    let mut table = Table::new(&["point", "estimate", "95% low", "95% high", "verdict"]);
    for point in &experiment.points {
        let e = point.analysis.claim_effect(metric);
        table.push(
            vec![
                point
                    .setting
                    .clone()
                    .unwrap_or_else(|| "all pairs".to_owned()),
                e.map_or_else(|| "n/a".to_owned(), |e| signed_percent(e.estimate)),
                e.map_or_else(String::new, |e| signed_percent(e.low)),
                e.map_or_else(String::new, |e| signed_percent(e.high)),
                point.analysis.verdict.to_string(),
            ],
            false,
        );
    }
    Some(Figure {
        id: "overhead-effect".to_owned(),
        caption: format!(
            "The claim holds where the whole interval lies left of the bound (+{}), fails where it lies right of it, and is undecided where it straddles it.",
            percent(experiment.claim.bound)
        ),
        svgs: vec![chart.render()],
        table,
    })
}

/// The sweep's settings as numbers, when they all are.
fn numeric_settings(points: &[PointResult]) -> Option<Vec<f64>> {
    points
        .iter()
        .map(|p| {
            p.setting
                .as_deref()
                .and_then(|s| s.split_once('='))
                .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
        })
        .collect()
}

/// The x axis of a sweep: logarithmic at the settings when they are numbers spanning more than
/// ten times, else one slot per setting.
fn sweep_axis(points: &[PointResult], title: &str) -> (Axis, Vec<f64>) {
    let labels: Vec<String> = points.iter().map(point_label).collect();
    if let Some(values) = numeric_settings(points) {
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        if min > 0.0 && max / min > 10.0 {
            let ticks: Vec<(f64, String)> = values.iter().copied().zip(labels).collect();
            return (Axis::log_at(title, &ticks), values);
        }
    }
    let positions = (0..points.len()).map(|i| i as f64 + 0.5).collect();
    (Axis::categories(title, labels), positions)
}

fn sweep_figure(experiment: &OverheadResult) -> Option<Figure> {
    let points = &experiment.points;
    let metric = experiment.claim.metric;
    let key = points
        .iter()
        .find_map(|p| {
            p.setting
                .as_deref()?
                .split_once('=')
                .map(|(k, _)| k.to_owned())
        })
        .unwrap_or_else(|| "setting".to_owned());
    let (x_axis, positions) = sweep_axis(points, &key);
    let costs: Vec<(f64, &PointResult, Effect)> = positions
        .iter()
        .zip(points)
        .filter_map(|(x, p)| p.analysis.cpu_cost_us.map(|e| (*x, p, e)))
        .collect();
    let relative: Vec<(f64, &PointResult, Effect)> = positions
        .iter()
        .zip(points)
        .filter_map(|(x, p)| p.analysis.claim_effect(metric).map(|e| (*x, p, e)))
        .collect();
    if costs.is_empty() && relative.is_empty() {
        return None;
    }
    let mut svgs = Vec::new();
    let link_estimates = |chart: &mut Chart, series: &[(f64, &PointResult, Effect)], scale: f64| {
        for pair in series.windows(2) {
            chart.link(
                (pair[0].0, pair[0].2.estimate * scale),
                (pair[1].0, pair[1].2.estimate * scale),
            );
        }
    };
    if !costs.is_empty() {
        let (low, high) = costs.iter().fold((0.0f64, 0.0f64), |(lo, hi), (_, _, e)| {
            (lo.min(e.low), hi.max(e.high))
        });
        let mut chart = Chart::new(
            "Tracing's CPU cost per request at each setting, with 95% intervals",
            x_axis.clone(),
            Axis::linear("CPU cost per request (µs)", low, high),
        );
        chart.hrule(0.0, "zero", "");
        link_estimates(&mut chart, &costs, 1.0);
        let intervals: Vec<Interval> = costs
            .iter()
            .map(|(x, p, e)| Interval {
                at: *x,
                low: e.low,
                estimate: e.estimate,
                high: e.high,
                title: format!(
                    "{}: {} per request",
                    p.setting.as_deref().unwrap_or(""),
                    effect_text(Some(e), duration_us)
                ),
            })
            .collect();
        chart.intervals(
            "cost per request",
            Color::S1,
            Direction::Vertical,
            &intervals,
        );
        svgs.push(chart.render());
    }
    if !relative.is_empty() {
        let bound = experiment.claim.bound * 100.0;
        let (low, high) = relative
            .iter()
            .fold((0.0f64, bound), |(lo, hi), (_, _, e)| {
                (lo.min(e.low * 100.0), hi.max(e.high * 100.0))
            });
        let mut chart = Chart::new(
            format!(
                "Relative change in {} at each setting, with 95% intervals, against the claim's bound",
                metric.describe()
            ),
            x_axis,
            Axis::linear(format!("change in {} (%)", metric.describe()), low, high),
        );
        chart.hrule(0.0, "zero", "");
        chart.hrule(
            bound,
            "bound",
            &format!("claim: < +{}", percent(experiment.claim.bound)),
        );
        link_estimates(&mut chart, &relative, 100.0);
        let intervals: Vec<Interval> = relative
            .iter()
            .map(|(x, point, e)| relative_interval(*x, point, e))
            .collect();
        chart.intervals(
            "relative change",
            Color::S2,
            Direction::Vertical,
            &intervals,
        );
        svgs.push(chart.render());
    }
    let mut table = Table::new(&[
        "setting",
        "control CPU per request",
        "cost per request [95%]",
        "relative change [95%]",
        "verdict",
        "break-even",
    ]);
    for point in points {
        let a = &point.analysis;
        table.push(
            vec![
                point.setting.clone().unwrap_or_default(),
                a.control_cpu_us
                    .map_or_else(|| "n/a".to_owned(), duration_us),
                effect_text(a.cpu_cost_us.as_ref(), duration_us),
                effect_text(point.analysis.claim_effect(metric).as_ref(), percent),
                a.verdict.to_string(),
                a.break_even_us
                    .map_or_else(|| "n/a".to_owned(), duration_us),
            ],
            false,
        );
    }
    Some(Figure {
        id: "overhead-sweep".to_owned(),
        caption: format!(
            "The cost curve over {key}: what tracing adds to each request in CPU time, and what that is relative to the request's own cost. A fixed cost per request falls below the bound once requests are large enough."
        ),
        svgs,
        table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::report::chart::Scale;
    use crate::report::page::samples::{charts, draws_data, element, has_id, html, sample};
    use crate::result::RunResult;

    /// The overhead-quick experiment as a four-point sweep of `values`.
    fn sweep(values: &[&str]) -> RunResult {
        let mut result = sample("overhead-quick");
        let experiment = result.overhead.as_mut().expect("an experiment");
        let point = experiment.points[0].clone();
        experiment.points = values
            .iter()
            .map(|v| {
                let mut p = point.clone();
                p.setting = Some(format!("requests.0.body.window={v}"));
                p
            })
            .collect();
        result
    }

    #[test]
    fn a_sweep_gets_a_cost_curve_and_a_trial_chart_per_point() {
        let result = sweep(&["100", "1000", "10000", "100000"]);
        let page = html(&result);
        for id in [
            "overhead-sweep",
            "overhead-effect",
            "overhead-trials-0",
            "overhead-trials-3",
        ] {
            assert!(has_id(&page, id), "#{id}");
        }
        assert!(!has_id(&page, "overhead-trials"));
        let figure = element(&page, "overhead-sweep");
        let sweep_charts = charts(figure);
        assert_eq!(sweep_charts.len(), 2, "cost and relative change");
        for chart in &sweep_charts {
            assert!(draws_data(chart));
            // The settings label the axis, on a log scale: 10x apart, equally spaced.
            for value in ["100", "1000", "10000", "100000"] {
                assert!(chart.contains(&format!(">{value}</text>")), "{value}");
            }
        }
        assert!(sweep_charts[1].contains("claim: &lt; +1.00%"));

        let experiment = result.overhead.as_ref().expect("an experiment");
        let (axis, positions) = sweep_axis(&experiment.points, "window");
        assert!(matches!(axis.scale, Scale::Log { .. }));
        let fractions: Vec<f64> = positions
            .iter()
            .filter_map(|x| axis.scale.fraction(*x))
            .collect();
        let gaps: Vec<f64> = fractions.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| (g - gaps[0]).abs() < 1e-9), "{gaps:?}");

        // Settings within 10x of each other, or not numbers at all, get one slot each.
        for values in [&["2", "4", "8"][..], &["small", "large"]] {
            let result = sweep(values);
            let points = &result.overhead.as_ref().expect("experiment").points;
            let (axis, positions) = sweep_axis(points, "window");
            assert!(matches!(axis.scale, Scale::Linear { .. }), "{values:?}");
            assert_eq!(positions[0], 0.5);
            assert!(draws_data(
                charts(element(&html(&result), "overhead-sweep"))[0]
            ));
        }
    }

    #[test]
    fn pairs_get_a_slot_each_however_they_are_numbered() {
        let mut result = sample("overhead-quick");
        let point = &mut result.overhead.as_mut().expect("an experiment").points[0];
        point.trials[0].pair = 1_000_000_000;
        point.trials[1].pair = usize::MAX;
        let pairs: BTreeSet<usize> = point.trials.iter().map(|t| t.pair).collect();
        let page = html(&result);
        let chart = charts(element(&page, "overhead-trials"))[0];
        // Centred texts: a label per pair, and the two axis titles.
        let slots = chart.matches("text-anchor=\"middle\">").count();
        assert_eq!(slots, pairs.len() + 2, "one label per pair present");
        assert!(chart.contains(">1000000001</text>"), "{chart}");
        assert!(
            chart.contains(&format!(">{}</text>", usize::MAX)),
            "{chart}"
        );
        assert_eq!(chart.matches("<circle class=\"series").count(), 16);
    }

    #[test]
    fn peak_memory_past_u64_is_held_at_the_largest_value() {
        let mut result = sample("overhead-quick");
        let point = &mut result.overhead.as_mut().expect("an experiment").points[0];
        let trial = &mut point.trials[0];
        trial.peak_rss_bytes = [("a".to_owned(), u64::MAX), ("b".to_owned(), u64::MAX)].into();
        assert_eq!(total_rss(trial), u64::MAX);
        let page = html(&result);
        let largest = bytes(u64::MAX);
        assert!(
            element(&page, "overhead-trials").contains(&largest),
            "{largest}"
        );
    }

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
        experiment.steps = vec![crate::overhead::StepArm {
            name: "spans, not exported".to_owned(),
            arm: experiment.treatment.clone(),
        }];
        let point = &mut experiment.points[0];
        let cost = point.analysis.cpu_cost_us;
        point.analysis.steps = vec![
            crate::overhead::StepEffect {
                arm: ArmName::Step(0),
                cost_us: cost,
                share: point.analysis.cpu,
                services: BTreeMap::new(),
            },
            crate::overhead::StepEffect {
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
}
