//! Latency over the percentiles: the spectrum HdrHistogram users know, per request kind. The
//! latency over time is `timeline`'s.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{Figure, HEADROOM, PageError, Table};
use crate::format::{count, duration_us, latency_axis_unit};
use crate::report::chart::{self, Axis, Chart, Color};
use crate::result::{KindResult, decode_histogram};

#[derive(Debug, Serialize)]
pub(super) struct SpectrumView {
    kind: String,
    id: String,
    /// `None` when no request of the kind completed.
    figure: Option<Figure>,
}

/// Points per decade of the percentile axis: smooth enough, and a few hundred at most per series.
const SPECTRUM_STEPS_PER_DECADE: u32 = 24;

/// The percentile axis goes no further than 99.99999%: the tail of ten million requests.
const MAX_SPECTRUM_DECADES: u32 = 7;

/// Rows of a spectrum's data table: quantile, label, and whether it is one of the named
/// percentiles (p50, p90, p95, p99, p99.9) the table highlights.
pub(super) const TABLE_QUANTILES: &[(f64, &str, bool)] = &[
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
pub(super) const MARKED_QUANTILES: &[(f64, &str)] =
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
pub(super) fn spectrum_points(
    h: &Histogram<u64>,
    decades: u32,
    unit_us: f64,
) -> Vec<Option<(f64, f64)>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::page::samples::{element, html, sample};

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
}
