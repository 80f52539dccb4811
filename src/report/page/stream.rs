//! The stream section: a stream load's update latency as a percentile spectrum (the chart the
//! request latencies use), the time to the first update, updates received per second, what each
//! kind lost and how its connections closed, and the trace checks of its updates.

use serde::Serialize;

use super::latency::{MARKED_QUANTILES, TABLE_QUANTILES, spectrum_decades, spectrum_points};
use super::{Fact, Figure, HEADROOM, PageError, PercentileRow, Table, fact, percentile_row};
use crate::format::{count, duration_us, latency_axis_unit, percent};
use crate::report::chart::{self, Axis, Chart, Color};
use crate::result::{StreamKindResult, StreamResult, StreamTraceReport, decode_histogram};

#[derive(Debug, Serialize)]
pub(super) struct StreamView {
    /// The update latency over all kinds; `None` when no update arrived.
    latency: Option<Figure>,
    /// Updates received per second; `None` when none were.
    rate: Option<Figure>,
    first_update: Vec<PercentileRow>,
    kinds: Vec<KindRow>,
    traces: Option<TracesView>,
}

#[derive(Debug, Serialize)]
struct KindRow {
    name: String,
    connects: String,
    connected: String,
    updates: String,
    lost: String,
    sequence_errors: String,
    traced: String,
    closes: Vec<Fact>,
    connect_failures: Vec<Fact>,
}

#[derive(Debug, Serialize)]
struct TracesView {
    source: String,
    facts: Vec<Fact>,
    failed_checks: Vec<Fact>,
    /// `traceparent [kind, sequence] check: detail`.
    failing: Vec<String>,
}

/// How many failing updates the page quotes.
const QUOTED: usize = 10;

pub(super) fn stream(
    stream: &StreamResult,
    traces: Option<&StreamTraceReport>,
) -> Result<StreamView, PageError> {
    let many = stream.kinds.len() > 1;
    let rows = || std::iter::once(&stream.total).chain(stream.kinds.iter().filter(|_| many));
    Ok(StreamView {
        latency: latency(&stream.total)?,
        rate: rate(&stream.updates_per_second),
        first_update: rows()
            .filter(|k| k.first_message.count > 0)
            .map(|k| percentile_row(&k.name, &k.first_message))
            .collect(),
        kinds: rows().map(kind_row).collect(),
        traces: traces.map(traces_view),
    })
}

fn latency(total: &StreamKindResult) -> Result<Option<Figure>, PageError> {
    let h = decode_histogram(&total.latency_histogram).map_err(|source| PageError::Histogram {
        field: "stream.total.latency_histogram".to_owned(),
        source,
    })?;
    if h.is_empty() {
        return Ok(None);
    }
    let decades = spectrum_decades(h.len());
    let (unit_us, unit) = latency_axis_unit(h.max() as f64);
    let mut chart = Chart::new(
        "Update latency by percentile",
        Axis::percentile("percentile", decades),
        Axis::linear(
            format!("latency ({unit})"),
            0.0,
            h.max() as f64 / unit_us * HEADROOM,
        ),
    );
    chart.line(
        "from the update's event time to its receipt",
        Color::S1,
        &spectrum_points(&h, decades, unit_us),
    );
    let within = |q: f64| chart::percentile_position(q) <= f64::from(decades) + 1e-9;
    for &(q, label) in MARKED_QUANTILES.iter().filter(|(q, _)| within(*q)) {
        let us = h.value_at_quantile(q);
        chart.marker(
            chart::percentile_position(q),
            us as f64 / unit_us,
            label,
            &format!("{label} update latency: {}", duration_us(us as f64)),
        );
    }
    let mut table = Table::new(&["percentile", "update latency"]);
    for &(q, label, marked) in TABLE_QUANTILES.iter().filter(|(q, _, _)| within(*q)) {
        table.push(
            vec![label.to_owned(), duration_us(h.value_at_quantile(q) as f64)],
            marked,
        );
    }
    table.push(
        vec!["100% (max)".to_owned(), duration_us(h.max() as f64)],
        false,
    );
    Ok(Some(Figure {
        id: "stream-latency".to_owned(),
        caption: format!(
            "Latency of each of {} updates, from the event time the engine stamped on it to its receipt by the harness: a stall, a slow reader's backlog or a queue shows in the tail.",
            count(h.len())
        ),
        svgs: vec![chart.render()],
        table,
    }))
}

fn rate(per_second: &[u64]) -> Option<Figure> {
    let top = per_second.iter().copied().max().filter(|&m| m > 0)?;
    let mut chart = Chart::new(
        "Updates received per second",
        Axis::linear(
            "seconds from the start of the load",
            0.0,
            per_second.len() as f64,
        ),
        Axis::linear("updates per second", 0.0, top as f64 * HEADROOM),
    );
    let points: Vec<Option<(f64, f64)>> = per_second
        .iter()
        .enumerate()
        .map(|(s, &n)| Some((s as f64 + 0.5, n as f64)))
        .collect();
    chart.line("updates received", Color::S1, &points);
    let mut table = Table::new(&["second", "updates"]);
    for (s, &n) in per_second.iter().enumerate() {
        table.push(vec![s.to_string(), count(n)], false);
    }
    Some(Figure {
        id: "stream-rate".to_owned(),
        caption: format!(
            "Updates received in each second of the load, {} in all.",
            count(per_second.iter().sum())
        ),
        svgs: vec![chart.render()],
        table,
    })
}

fn kind_row(kind: &StreamKindResult) -> KindRow {
    let facts = |map: &std::collections::BTreeMap<String, u64>| {
        map.iter()
            .map(|(k, n)| fact(k.clone(), count(*n)))
            .collect()
    };
    KindRow {
        name: kind.name.clone(),
        connects: count(kind.connects),
        connected: count(kind.connected),
        updates: count(kind.updates),
        lost: format!("{} ({})", count(kind.lost), percent(kind.lost_rate())),
        sequence_errors: count(kind.sequence_errors),
        traced: count(kind.traced),
        closes: facts(&kind.closes),
        connect_failures: facts(&kind.connect_failures),
    }
}

fn traces_view(report: &StreamTraceReport) -> TracesView {
    TracesView {
        source: report.source.clone(),
        facts: vec![
            fact("traced updates kept", count(report.kept)),
            fact("sampled", count(report.sampled)),
            fact("both message spans found", count(report.found)),
            fact("traced end to end", count(report.passed)),
        ],
        failed_checks: report
            .failed_checks
            .iter()
            .map(|(check, n)| fact(check.clone(), count(*n)))
            .collect(),
        failing: report
            .failing
            .iter()
            .take(QUOTED)
            .flat_map(|f| {
                let sequence = f.sequence.map_or_else(|| "?".to_owned(), |s| s.to_string());
                f.failures.iter().map(move |(check, detail)| {
                    format!(
                        "{} [{}, sequence {sequence}] {check}: {detail}",
                        f.traceparent, f.kind
                    )
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::samples::{draws_data, element, has_id, html, sample};
    use crate::load::stream::StreamStats;
    use crate::result::{FailingUpdate, StreamResult, StreamTraceReport};

    #[test]
    fn a_stream_run_shows_its_updates_losses_closes_and_traced_updates() {
        let mut result = sample("stall");
        assert!(!has_id(&html(&result), "stream"), "no stream, no section");
        let mut stats = StreamStats::new(["fast".to_owned(), "slow".to_owned()]);
        for us in 1..=500u64 {
            stats.kinds[0].latency.saturating_record(us * 20);
        }
        stats.kinds[0].updates = 500;
        stats.kinds[0].first_message.saturating_record(3_000);
        stats.kinds[1].lost = 1_234;
        stats.kinds[0].closes.insert("1000".to_owned(), 2);
        stats.kinds[1].closes.insert("1011".to_owned(), 1);
        stats.per_second = vec![200, 300];
        result.stream = Some(StreamResult::of(&stats));
        result.verification.streams = Some(StreamTraceReport {
            source: "embedded OTLP receiver".to_owned(),
            kept: 50,
            sampled: 10,
            found: 9,
            passed: 9,
            failed_checks: [("producer".to_owned(), 1)].into(),
            failing: vec![FailingUpdate {
                kind: "fast".to_owned(),
                traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
                sequence: Some(7),
                failures: vec![("producer".to_owned(), "the span is a root".to_owned())],
            }],
        });
        let page = html(&result);
        let section = element(&page, "stream");
        for id in ["stream-latency", "stream-rate"] {
            assert!(draws_data(element(section, id)), "{id}");
        }
        assert!(
            section.contains("<td>99% (p99)</td>"),
            "the spectrum's table"
        );
        assert!(
            section.contains("<td class=\"num\">1,234 (100%)</td>"),
            "{section}"
        );
        assert!(section.contains("<code>1011</code>: 1"), "closes by code");
        assert!(section.contains("<dt>traced end to end</dt><dd>9</dd>"));
        assert!(section.contains("[fast, sequence 7] producer: the span is a root"));
    }
}
