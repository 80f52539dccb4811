//! The overhead section's charts: each trial by pair, each point's estimate and interval against
//! the bound, and for a sweep the cost curve.

use std::collections::BTreeSet;

use super::effect_text;
use crate::format::{bytes, count, duration_us, percent, rate, signed_percent};
use crate::report::chart::{Axis, Chart, Color, Direction, Dot, Interval};
use crate::report::page::{Figure, Table};
use crate::result::overhead::{ArmName, Effect, OverheadResult, PointResult, TrialResult};
use crate::scenario::ClaimMetric;

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

pub(super) fn trials_figure(
    metric: ClaimMetric,
    point: &PointResult,
    index: Option<usize>,
) -> Option<Figure> {
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

/// Every point's estimate and interval of the claim's metric, against the bound.
pub(super) fn effect_figure(experiment: &OverheadResult) -> Option<Figure> {
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

pub(super) fn sweep_figure(experiment: &OverheadResult) -> Option<Figure> {
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
}
