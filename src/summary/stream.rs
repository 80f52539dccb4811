//! The stream section of the summary: per kind, the updates received and their latency, what was
//! lost or out of order, the time to the first update, and how connections failed and closed.

use std::fmt::Write as _;

use crate::format::{count, decimals, duration_terse, percent};
use crate::result::{StreamKindResult, StreamResult, StreamTraceReport};

pub(super) fn lines(out: &mut String, stream: &StreamResult) {
    let seconds = stream.updates_per_second.len().max(1) as f64;
    let _ = writeln!(
        out,
        "stream: {} updates ({}/s), {} traced",
        count(stream.total.updates),
        decimals(stream.total.updates as f64 / seconds),
        count(stream.total.traced),
    );
    let many = stream.kinds.len() > 1;
    for kind in std::iter::once(&stream.total).chain(stream.kinds.iter().filter(|_| many)) {
        one(out, kind);
    }
}

fn one(out: &mut String, kind: &StreamKindResult) {
    let latency = kind.latency();
    let first = kind.first_message();
    let _ = writeln!(
        out,
        "  [{}] update latency (event time to receipt): p50 {}, p99 {}, max {}; first update p95 {}",
        kind.name(),
        duration_terse(latency.p50),
        duration_terse(latency.p99),
        duration_terse(latency.max),
        duration_terse(first.p95.unwrap_or(first.p99)),
    );
    let _ = writeln!(
        out,
        "    updates {}, lost {} ({}), sequence errors {}, other messages {}, unreadable {}",
        count(kind.updates),
        count(kind.lost),
        percent(kind.lost_rate()),
        count(kind.sequence_errors),
        count(kind.other_messages),
        count(kind.unreadable),
    );
    let closes: Vec<String> = kind
        .closes
        .iter()
        .map(|(c, n)| format!("{c}: {n}"))
        .collect();
    let _ = writeln!(
        out,
        "    connects {}, connected {}, late {}, dropped {}; closes {}",
        count(kind.connects),
        count(kind.connected),
        count(kind.late_connects),
        count(kind.dropped_connects),
        if closes.is_empty() {
            "none yet".to_owned()
        } else {
            closes.join(", ")
        },
    );
    if !kind.connect_failures.is_empty() {
        let failures: Vec<String> = kind
            .connect_failures
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        let _ = writeln!(out, "    connect failures: {}", failures.join(", "));
    }
    for error in &kind.errors {
        let _ = writeln!(out, "    error: {error}");
    }
}

/// `verify.streams`: how many sampled updates were traced end to end, and the first failures.
pub(super) fn traces(out: &mut String, report: &StreamTraceReport) {
    let _ = writeln!(
        out,
        "stream traces ({}): {} of {} kept updates sampled, {} found, {} traced end to end",
        report.source,
        count(report.sampled),
        count(report.kept),
        count(report.found),
        count(report.passed),
    );
    for (check, n) in &report.failed_checks {
        let _ = writeln!(out, "  failed {check}: {n} update(s)");
    }
    for failing in report.failing.iter().take(super::SHOWN_FAILURES) {
        for (check, detail) in &failing.failures {
            let _ = writeln!(
                out,
                "  {} [{} sequence {}] {check}: {detail}",
                failing.traceparent,
                failing.kind,
                failing
                    .sequence
                    .map_or_else(|| "?".to_owned(), |s| s.to_string()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::result::{FailingUpdate, StreamTraceReport};

    #[test]
    fn the_trace_line_counts_and_quotes_the_first_failures() {
        let report = StreamTraceReport {
            source: "embedded OTLP receiver".to_owned(),
            kept: 1_200,
            sampled: 100,
            found: 100,
            passed: 98,
            failed_checks: [("links".to_owned(), 2)].into(),
            failing: vec![FailingUpdate {
                kind: "sub".to_owned(),
                traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
                sequence: None,
                failures: vec![("links".to_owned(), "no link".to_owned())],
            }],
        };
        let mut out = String::new();
        super::traces(&mut out, &report);
        assert_eq!(
            out,
            "stream traces (embedded OTLP receiver): 100 of 1,200 kept updates sampled, 100 found, \
             98 traced end to end\n  failed links: 2 update(s)\n  \
             00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 [sub sequence ?] links: no link\n"
        );
    }
}
