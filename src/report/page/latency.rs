//! Latency over the percentiles (the spectrum HdrHistogram users know) and over time (per
//! second, with stalls and the load profile's phases).

use hdrhistogram::Histogram;
use serde::Serialize;

use super::profile::{target_at, target_line};
use super::{Figure, HEADROOM, PageError, Table};
use crate::format::{count, duration_us, latency_axis_unit, significant};
use crate::report::chart::{self, Axis, Chart, Color};
use crate::result::{KindResult, PhaseResult, SecondResult, decode_histogram};

#[derive(Debug, Serialize)]
pub(super) struct SpectrumView {
    kind: String,
    id: String,
    /// `None` when no request of the kind completed.
    figure: Option<Figure>,
}

#[derive(Debug, Serialize)]
pub(super) struct TimelineView {
    latency: Figure,
    throughput: Figure,
    /// Seconds in which nothing completed.
    stalls: Vec<u64>,
}

/// Points per decade of the percentile axis: smooth enough, and a few hundred at most per series.
const SPECTRUM_STEPS_PER_DECADE: u32 = 24;

/// The percentile axis goes no further than 99.99999%: the tail of ten million requests.
const MAX_SPECTRUM_DECADES: u32 = 7;

/// Rows of a spectrum's data table: quantile, label, and whether it is one of the named
/// percentiles (p50, p90, p95, p99, p99.9) the table highlights.
const TABLE_QUANTILES: &[(f64, &str, bool)] = &[
    (0.0, "0% (min)", false),
    (0.5, "50% (p50)", true),
    (0.75, "75%", false),
    (0.9, "90% (p90)", true),
    (0.95, "95% (p95)", true),
    (0.99, "99% (p99)", true),
    (0.995, "99.5%", false),
    (0.999, "99.9% (p99.9)", true),
    (0.9999, "99.99%", false),
    (0.99999, "99.999%", false),
    (0.999_999, "99.9999%", false),
];

/// The percentiles ringed on the spectrum, with their hover values.
const MARKED_QUANTILES: &[(f64, &str)] =
    &[(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9")];

fn decode(text: &str, field: String) -> Result<Histogram<u64>, PageError> {
    decode_histogram(text).map_err(|source| PageError::Histogram { field, source })
}

/// How many nines the percentile axis needs for `count` values: one decade past the last
/// quantile the data can resolve, so that the curve ends at the maximum.
pub(crate) fn spectrum_decades(count: u64) -> u32 {
    let resolved = (count.max(1) as f64).log10().floor() as u32;
    (resolved + 1).clamp(1, MAX_SPECTRUM_DECADES)
}

/// The percentile spectrum of `h` in units of `unit_us` microseconds, at even steps of the
/// percentile axis.
fn spectrum_points(h: &Histogram<u64>, decades: u32, unit_us: f64) -> Vec<Option<(f64, f64)>> {
    (0..=decades * SPECTRUM_STEPS_PER_DECADE)
        .map(|step| {
            let x = f64::from(step) / f64::from(SPECTRUM_STEPS_PER_DECADE);
            let q = 1.0 - 10f64.powf(-x);
            Some((x, h.value_at_quantile(q) as f64 / unit_us))
        })
        .collect()
}

pub(super) fn spectrum(index: usize, kind: &KindResult) -> Result<SpectrumView, PageError> {
    let field = |name: &str| format!("kinds[{index}].{name} (kind {:?})", kind.name);
    let latency = decode(&kind.latency_histogram, field("latency_histogram"))?;
    let service = decode(
        &kind.service_time_histogram,
        field("service_time_histogram"),
    )?;
    let id = format!("spectrum-{}", kind.name);
    if latency.is_empty() {
        return Ok(SpectrumView {
            kind: kind.name.clone(),
            id,
            figure: None,
        });
    }
    let decades = spectrum_decades(latency.len().max(service.len()));
    let top_us = latency.max().max(service.max()) as f64;
    let (unit_us, unit) = latency_axis_unit(top_us);
    let top = top_us / unit_us;
    let mut chart = Chart::new(
        format!("Latency by percentile, {}", kind.name),
        Axis::percentile("percentile", decades),
        Axis::linear(format!("latency ({unit})"), 0.0, top * HEADROOM),
    );
    // Latency drawn last: where the two coincide (no send lag), it is the one to see.
    if !service.is_empty() {
        chart.line(
            "service time from the actual send",
            Color::S2,
            &spectrum_points(&service, decades, unit_us),
        );
    }
    chart.line(
        "latency from the intended send",
        Color::S1,
        &spectrum_points(&latency, decades, unit_us),
    );
    for &(q, label) in MARKED_QUANTILES {
        let x = chart::percentile_position(q);
        if x <= f64::from(decades) + 1e-9 {
            let us = latency.value_at_quantile(q);
            chart.marker(
                x,
                us as f64 / unit_us,
                label,
                &format!("{label} latency: {}", duration_us(us as f64)),
            );
        }
    }
    let mut table = Table::new(&["percentile", "latency", "service time"]);
    let service_at = |q: f64| {
        if service.is_empty() {
            "—".to_owned()
        } else {
            duration_us(service.value_at_quantile(q) as f64)
        }
    };
    for &(q, label, marked) in TABLE_QUANTILES {
        if chart::percentile_position(q) <= f64::from(decades) + 1e-9 {
            table.push(
                vec![
                    label.to_owned(),
                    duration_us(latency.value_at_quantile(q) as f64),
                    service_at(q),
                ],
                marked,
            );
        }
    }
    table.push(
        vec![
            "100% (max)".to_owned(),
            duration_us(latency.max() as f64),
            service_at(1.0),
        ],
        false,
    );
    Ok(SpectrumView {
        kind: kind.name.clone(),
        figure: Some(Figure {
            id: id.clone(),
            caption: format!(
                "{}: latency at each percentile over {} completed requests. Latency counts from the moment each request was due, service time from the actual send. The sender never waits for the system, so a stall shows in both; the two part only where the harness itself sent late, which should not happen. The axis spaces 90%, 99%, 99.9% evenly: the right-hand end is the tail.",
                kind.name,
                count(latency.len())
            ),
            svgs: vec![chart.render()],
            table,
        }),
        id,
    })
}

fn phase_label(i: usize, phase: &PhaseResult) -> String {
    let rate = |r: f64| {
        if r.fract() == 0.0 {
            format!("{r:.0}")
        } else {
            significant(r, 3)
        }
    };
    if phase.from_rate == phase.to_rate {
        format!("phase {}: {}/s", i + 1, rate(phase.from_rate))
    } else {
        format!(
            "phase {}: {}→{}/s",
            i + 1,
            rate(phase.from_rate),
            rate(phase.to_rate)
        )
    }
}

/// `experiment`: the timeline is an overhead experiment's treatment trials, end to end.
pub(super) fn timeline(
    seconds: &[SecondResult],
    phases: &[PhaseResult],
    experiment: bool,
) -> Option<TimelineView> {
    if seconds.is_empty() {
        return None;
    }
    let end = seconds.len() as f64;
    let top_us = seconds
        .iter()
        .filter_map(|s| s.p50_us.max(s.p99_us))
        .max()
        .unwrap_or(0);
    let (unit_us, unit) = latency_axis_unit(top_us as f64);
    let ms = |us: Option<u64>| us.map(|us| us as f64 / unit_us);
    let p50: Vec<Option<f64>> = seconds.iter().map(|s| ms(s.p50_us)).collect();
    let p99: Vec<Option<f64>> = seconds.iter().map(|s| ms(s.p99_us)).collect();
    let stalls: Vec<u64> = seconds
        .iter()
        .filter(|s| s.p50_us.is_none())
        .map(|s| s.second)
        .collect();
    let time_axis = || Axis::linear_exact("time (s)", 0.0, end);
    let hover: Vec<String> = seconds
        .iter()
        .map(|s| {
            let latency = match (s.p50_us, s.p99_us) {
                (Some(p50), Some(p99)) => format!(
                    "p50 {}, p99 {}",
                    duration_us(p50 as f64),
                    duration_us(p99 as f64)
                ),
                _ => "nothing completed".to_owned(),
            };
            format!(
                "second {}: {latency}; sent {}, completed {}, unexpected {}, dropped {}",
                s.second, s.sent, s.completed, s.unexpected, s.dropped
            )
        })
        .collect();
    // One phase needs no marking: the target line says all there is. A phase the run never
    // reached has no boundary on this axis.
    let draw_phases = |chart: &mut Chart| {
        if phases.len() > 1 {
            for (i, phase) in phases.iter().enumerate() {
                if phase.start_s < end {
                    chart.vrule(phase.start_s, "phase", &phase_label(i, phase));
                }
            }
        }
    };

    let mut latency = Chart::new(
        "Latency per second: p50 and p99",
        time_axis(),
        Axis::spread(
            format!("latency ({unit})"),
            p50.iter().chain(&p99).flatten().copied(),
        ),
    );
    // Drawn where the lines are: at the second's place in the timeline.
    for (at, s) in seconds.iter().enumerate() {
        if s.p50_us.is_none() {
            latency.stall(
                at as f64,
                at as f64 + 1.0,
                "nothing completed",
                &format!("second {}: no request completed", s.second),
            );
        }
    }
    latency.hover_columns(0.0, 1.0, &hover);
    draw_phases(&mut latency);
    latency.steps("p50", Color::S1, 0.0, 1.0, &p50);
    latency.steps("p99", Color::S2, 0.0, 1.0, &p99);
    let mut latency_table = Table::new(&["second", "p50", "p99"]);
    for s in seconds {
        let (p50, p99) = match (s.p50_us, s.p99_us) {
            (Some(p50), Some(p99)) => (duration_us(p50 as f64), duration_us(p99 as f64)),
            _ => ("nothing completed".to_owned(), "—".to_owned()),
        };
        latency_table.push(vec![s.second.to_string(), p50, p99], s.p50_us.is_none());
    }

    let sent: Vec<Option<f64>> = seconds.iter().map(|s| Some(s.sent as f64)).collect();
    let completed: Vec<Option<f64>> = seconds.iter().map(|s| Some(s.completed as f64)).collect();
    let dropped: Vec<Option<f64>> = seconds.iter().map(|s| Some(s.dropped as f64)).collect();
    let unexpected: Vec<Option<f64>> = seconds.iter().map(|s| Some(s.unexpected as f64)).collect();
    // The target as far as the timeline goes: a run that stopped early was not asked for the
    // rest of the profile, and the axis covers only the rates drawn.
    let target = target_line(phases, end);
    let top = seconds
        .iter()
        .map(|s| s.sent.max(s.completed) as f64)
        .chain(target.iter().map(|&(_, rate)| rate))
        .fold(0.0, f64::max);
    let mut throughput = Chart::new(
        if phases.is_empty() {
            "Requests per second: sent and completed"
        } else {
            "Requests per second: sent and completed, against the target rate"
        },
        time_axis(),
        Axis::linear("requests per second", 0.0, top * HEADROOM),
    );
    throughput.hover_columns(0.0, 1.0, &hover);
    draw_phases(&mut throughput);
    throughput.steps("sent", Color::S1, 0.0, 1.0, &sent);
    throughput.steps("completed", Color::S3, 0.0, 1.0, &completed);
    if seconds.iter().any(|s| s.unexpected > 0) {
        throughput.steps("unexpected", Color::S2, 0.0, 1.0, &unexpected);
    }
    if seconds.iter().any(|s| s.dropped > 0) {
        throughput.steps("dropped", Color::S4, 0.0, 1.0, &dropped);
    }
    // On top: a held rate runs along the target, which must still show.
    let target: Vec<Option<(f64, f64)>> = target.into_iter().map(Some).collect();
    throughput.dashed("target rate", Color::Muted, &target);
    let mut throughput_table = Table::new(&[
        "second",
        "target /s",
        "sent",
        "completed",
        "unexpected",
        "dropped",
    ]);
    for s in seconds {
        throughput_table.push(
            vec![
                s.second.to_string(),
                target_at(phases, s.second as f64 + 0.5)
                    .map_or_else(|| "—".to_owned(), |r| significant(r, 4)),
                count(s.sent),
                count(s.completed),
                count(s.unexpected),
                count(s.dropped),
            ],
            false,
        );
    }
    let stall_note = if stalls.is_empty() {
        String::new()
    } else {
        format!(
            " Shaded: {} second(s) in which no request completed (a stall, not a zero latency).",
            stalls.len()
        )
    };
    let phase_note = if experiment {
        " The seconds are the treatment arm's trials, one after another."
    } else if phases.len() < 2 {
        ""
    } else {
        " Vertical lines mark the phases of the load profile."
    };
    Some(TimelineView {
        latency: Figure {
            id: "timeline-latency".to_owned(),
            caption: format!(
                "Latency from the intended send time of the requests that completed in each second.{stall_note}{phase_note}"
            ),
            svgs: vec![latency.render()],
            table: latency_table,
        },
        throughput: Figure {
            id: "timeline-throughput".to_owned(),
            caption: format!(
                "Requests sent and completed in each second{}.{phase_note}",
                if phases.is_empty() {
                    ""
                } else {
                    ", with the rate the scenario asked for"
                }
            ),
            svgs: vec![throughput.render()],
            table: throughput_table,
        },
        stalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::page::samples::{charts, element, escaped, html, sample};

    #[test]
    fn a_second_in_which_nothing_completed_is_a_gap_not_a_zero() {
        let page = html(&sample("stall"));
        let figure = element(&page, "timeline-latency");
        // Four stalls (seconds 3, 8, 13, 18) split each latency line into five runs.
        let chart = charts(figure)[0];
        let p50 = chart
            .split("<path class=\"series s1\" d=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a p50 line");
        assert_eq!(p50.matches('M').count(), 5, "{p50}");
        assert_eq!(
            chart.matches("class=\"band stall\"").count(),
            4 + 1,
            "4 + legend"
        );
        assert!(figure.contains("second 3: no request completed"));
        // The data table says so instead of giving a number.
        assert_eq!(figure.matches("nothing completed</td>").count(), 4);
        assert!(element(&page, "timeline").contains("3, 8, 13, 18"));

        let steady = html(&sample("smoke"));
        let chart = charts(element(&steady, "timeline-latency"))[0];
        assert!(!chart.contains("band stall"), "no stall, no band");
    }

    #[test]
    fn the_spectrum_runs_to_the_maximum_on_enough_nines() {
        assert_eq!(spectrum_decades(1), 1);
        assert_eq!(spectrum_decades(87), 2);
        assert_eq!(spectrum_decades(100), 3);
        assert_eq!(spectrum_decades(3_200), 4);
        assert_eq!(spectrum_decades(u64::MAX), MAX_SPECTRUM_DECADES);
        let mut h = crate::load::recorder::new_histogram();
        for us in 1..=1_000u64 {
            h.record(us * 10).expect("in range");
        }
        let decades = spectrum_decades(h.len());
        let points: Vec<(f64, f64)> = spectrum_points(&h, decades, 1e3)
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(points.len() as u32, decades * SPECTRUM_STEPS_PER_DECADE + 1);
        assert_eq!(points[0], (0.0, h.min() as f64 / 1e3));
        let (x, y) = points[points.len() - 1];
        assert_eq!((x, y), (f64::from(decades), h.max() as f64 / 1e3));
        // The median sits at log10(2) along the axis, and the curve never falls.
        assert!(
            points
                .windows(2)
                .all(|w| w[1].1 >= w[0].1 && w[1].0 > w[0].0)
        );

        let page = html(&sample("stall"));
        let figure = element(&page, "spectrum-quote");
        for marked in [
            "50% (p50)",
            "90% (p90)",
            "95% (p95)",
            "99% (p99)",
            "99.9% (p99.9)",
        ] {
            assert!(
                figure.contains(&format!("<tr class=\"marked\"><td>{marked}</td>")),
                "{marked}"
            );
        }
        // 2,000 requests: the axis runs to 99.99%, and the table stops there too.
        assert!(figure.contains(">99.99%</text>") && !figure.contains(">99.999%"));
        assert!(figure.contains("<td>100% (max)</td><td class=\"num\">1.02 s</td>"));
    }

    #[test]
    fn phases_and_the_target_rate_are_drawn_when_there_are_several() {
        let mut result = sample("stall");
        result.phases = vec![
            PhaseResult {
                start_s: 0.0,
                duration_s: 10.0,
                from_rate: 50.0,
                to_rate: 150.0,
            },
            PhaseResult {
                start_s: 10.0,
                duration_s: 10.0,
                from_rate: 100.0,
                to_rate: 100.0,
            },
        ];
        let page = html(&result);
        let throughput = element(&page, "timeline-throughput");
        assert!(
            throughput.contains(&escaped("phase 1: 50→150/s")),
            "{throughput}"
        );
        assert!(throughput.contains(&escaped("phase 2: 100/s")));
        assert!(throughput.contains("series muted dashed"));
        assert_eq!(throughput.matches("class=\"rule phase\"").count(), 2);
    }

    /// The `d` attribute of the dashed target line, and the y axis's largest tick label.
    fn target_path_and_top(figure: &str) -> (&str, &str) {
        let chart = charts(figure)[0];
        let path = chart
            .split("<path class=\"series muted dashed\" d=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a target line");
        let top = chart
            .split("text-anchor=\"end\">")
            .filter_map(|rest| rest.split('<').next())
            .last()
            .expect("y ticks");
        (path, top)
    }

    #[test]
    fn a_ramp_cut_short_is_drawn_only_as_far_as_it_ran() {
        // A 60 s ramp from 100/s to 1000/s, stopped after 20 s: the target had reached 400/s.
        let mut result = sample("stall");
        result.phases = vec![PhaseResult {
            start_s: 0.0,
            duration_s: 60.0,
            from_rate: 100.0,
            to_rate: 1_000.0,
        }];
        result.status = crate::result::RunStatus::Interrupted {
            reason: "interrupted (SIGINT or SIGTERM)".to_owned(),
        };
        let page = html(&result);
        let figure = element(&page, "timeline-throughput");
        let (path, top) = target_path_and_top(figure);
        // From the left edge at 100/s to the right edge at 400/s, on an axis that ends at 500/s,
        // not 1000/s at the right edge.
        assert_eq!(top, "500", "{figure}");
        let points: Vec<&str> = path
            .split(['M', 'L'])
            .filter(|p| !p.trim().is_empty())
            .collect();
        assert_eq!(points.len(), 2, "{path}");
        assert!(points[1].trim().starts_with("730.0 "), "{path}");
        let y = |p: &str| -> f64 {
            p.trim()
                .split(' ')
                .nth(1)
                .and_then(|v| v.parse().ok())
                .expect("y")
        };
        // y runs down: 400/s is four times as far above the bottom as 100/s.
        let bottom = 300.0 - 46.0;
        assert!(
            ((bottom - y(points[1])) / (bottom - y(points[0])) - 4.0).abs() < 0.01,
            "{path}"
        );
        assert!(
            figure.contains("<td>19</td><td class=\"num\">392.5</td>"),
            "{figure}"
        );

        // A second phase that never started has no boundary on the chart.
        result.phases.push(PhaseResult {
            start_s: 60.0,
            duration_s: 10.0,
            from_rate: 5_000.0,
            to_rate: 5_000.0,
        });
        let page = html(&result);
        let figure = element(&page, "timeline-throughput");
        assert!(!figure.contains("phase 2"), "{figure}");
        assert_eq!(figure.matches("class=\"rule phase\"").count(), 1);
        assert_eq!(target_path_and_top(figure).1, "500");
    }

    #[test]
    fn stall_bands_sit_in_the_gaps_of_the_lines() {
        // Seconds numbered from 100: bands and lines are both placed by position on the axis.
        let mut result = sample("stall");
        for s in &mut result.timeline {
            s.second += 100;
        }
        let page = html(&result);
        let figure = element(&page, "timeline-latency");
        let chart = charts(figure)[0];
        // Four stalls, plus the legend's swatch, and the hover names the second as recorded.
        assert_eq!(
            chart.matches("class=\"band stall\"").count(),
            4 + 1,
            "{chart}"
        );
        assert!(chart.contains("second 103: no request completed"));
        // The band over the fourth second starts where the p50 line breaks.
        let width = 760.0 - 66.0 - 30.0;
        let x3 = 66.0 + width * 3.0 / 20.0;
        assert!(
            chart.contains(&format!("class=\"band stall\" x=\"{x3:.1}\"")),
            "{chart}"
        );
        assert!(chart.contains(&format!("H{x3:.1} M")), "{chart}");
    }

    #[test]
    fn latencies_of_many_seconds_are_charted_in_seconds() {
        let mut result = sample("stall");
        for s in &mut result.timeline {
            s.p50_us = s.p50_us.map(|_| 3_600_000_000);
            s.p99_us = s.p99_us.map(|_| 3_600_000_000);
        }
        let page = html(&result);
        let chart = charts(element(&page, "timeline-latency"))[0];
        assert!(chart.contains(">latency (s)</text>"), "{chart}");
        assert!(!chart.contains("000000<"), "no seven-digit labels: {chart}");
        let steady = html(&sample("stall"));
        assert!(charts(element(&steady, "timeline-latency"))[0].contains(">latency (ms)</text>"));
    }
}
