//! Walking each place the search reads: a trace's spans, a log file's lines, scraped series.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::Search;
use crate::metrics::Snapshot;
use crate::trace::{AttrValue, Span, Trace};

/// The longest log line searched; the rest of a longer one is skipped (and counted).
const MAX_LINE_BYTES: usize = 256 << 10;

impl Search {
    /// Every text of every span: name, attributes, status message, resource attributes, events
    /// with their attributes, and links' attributes.
    pub(crate) fn trace(&self, trace: &Trace) {
        {
            let mut found = self.lock();
            found.searched.traces += 1;
            found.searched.spans += trace.spans.len() as u64;
        }
        for span in &trace.spans {
            self.span(span);
        }
    }

    fn span(&self, span: &Span) {
        let at = |what: String| {
            format!(
                "trace {} span {:?} ({}) {what}",
                span.trace_id, span.name, span.service
            )
        };
        self.text(None, &span.name, &|| at("name".to_owned()));
        let attributes = |list: &mut dyn Iterator<Item = (&String, &AttrValue)>, scope: &str| {
            for (key, value) in list {
                self.text(Some(key), &value.to_string(), &|| {
                    at(format!("{scope}attribute {key}"))
                });
            }
        };
        attributes(&mut span.attributes.iter(), "");
        let details = &span.details;
        self.text(None, &details.status_message, &|| {
            at("status message".to_owned())
        });
        attributes(
            &mut details.resource.iter().map(|(k, v)| (k, v)),
            "resource ",
        );
        for (i, event) in details.events.iter().enumerate() {
            self.text(None, &event.name, &|| at(format!("event[{i}] name")));
            let scope = format!("event[{i}] {:?} ", event.name);
            attributes(&mut event.attributes.iter().map(|(k, v)| (k, v)), &scope);
        }
        for (i, link) in details.links.iter().enumerate() {
            attributes(
                &mut link.iter().map(|(k, v)| (k, v)),
                &format!("link[{i}] "),
            );
        }
    }

    /// Every line of a service's log, each up to [`MAX_LINE_BYTES`]; the place is the file's
    /// name and the line's number.
    pub(crate) fn log_file(&self, path: &Path) {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(error) => {
                self.not_searched(format!("{}: {error}", path.display()));
                return;
            }
        };
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        let mut number = 0u64;
        let mut cut = 0u64;
        loop {
            match read_line(&mut reader, &mut line) {
                Ok(None) => break,
                Ok(Some(truncated)) => {
                    number += 1;
                    cut += u64::from(truncated);
                    let text = String::from_utf8_lossy(&line);
                    self.text(None, &text, &|| format!("{name}:{number}"));
                }
                Err(error) => {
                    self.not_searched(format!("{name} after line {number}: {error}"));
                    break;
                }
            }
        }
        if cut > 0 {
            self.not_searched(format!(
                "{name}: {cut} lines longer than {MAX_LINE_BYTES} bytes, searched up to that length"
            ));
        }
        let mut found = self.lock();
        found.searched.log_files += 1;
        found.searched.log_lines += number;
    }

    /// The label values of every scraped series.
    pub(crate) fn series(&self, snapshots: &[Snapshot]) {
        for snapshot in snapshots {
            self.lock().searched.series += snapshot.samples.len() as u64;
            for sample in &snapshot.samples {
                for (label, value) in &sample.labels {
                    self.text(Some(label), value, &|| {
                        format!(
                            "series {} of {} label {label}",
                            sample.name, snapshot.service
                        )
                    });
                }
            }
        }
    }
}

/// The next line into `line` (without its newline), at most [`MAX_LINE_BYTES`] of it: `None` at
/// the end, else whether the line was longer.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    line.clear();
    let read = reader
        .by_ref()
        .take(MAX_LINE_BYTES as u64)
        .read_until(b'\n', line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(Some(false));
    }
    if read < MAX_LINE_BYTES {
        return Ok(Some(false)); // the last line, without a newline
    }
    // Too long: skip to the end of the line.
    let mut skipped = Vec::new();
    loop {
        skipped.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut skipped)?;
        if n == 0 || skipped.last() == Some(&b'\n') {
            return Ok(Some(true));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metrics::Sample;
    use crate::plan::Canaries;
    use crate::scenario::template::CanaryKind;
    use crate::scenario::{PatternSeverity, PiiChecks};
    use crate::trace::{SpanEvent, SpanId, SpanKind, TraceId};

    fn setup() -> (Search, Canaries) {
        let canaries = Canaries::with_tag(0x00ab_cdef_0123);
        let search = Search::new(
            PiiChecks {
                patterns: PatternSeverity::Warn,
            },
            canaries,
            CanaryKind::ALL.into_iter().collect(),
        )
        .expect("valid");
        (search, canaries)
    }

    #[test]
    fn every_part_of_a_span_is_searched_and_the_place_named() {
        let (search, canaries) = setup();
        let email = canaries.value(CanaryKind::Email, 0, 1);
        let mut span = Span {
            trace_id: TraceId(0x4bf9),
            span_id: SpanId(1),
            parent: None,
            service: "api-gateway".to_owned(),
            name: "POST /x".to_owned(),
            kind: SpanKind::Server,
            status: crate::trace::SpanStatus::Unset,
            attributes: BTreeMap::from([(
                "http.request.method".to_owned(),
                AttrValue::String("POST".to_owned()),
            )]),
            start_unix_nanos: 1_733_445_600_123_456_789,
            end_unix_nanos: 1_733_445_600_123_456_999,
            links: Vec::new(),
            details: Default::default(),
        };
        span.details.events.push(SpanEvent {
            name: "exception".to_owned(),
            attributes: vec![(
                "exception.message".to_owned(),
                AttrValue::String(format!("no user {email}")),
            )],
        });
        span.details.resource =
            vec![("host.name".to_owned(), AttrValue::String("h".to_owned()))].into();
        search.trace(&Trace { spans: vec![span] });
        let report = search.report();
        assert_eq!((report.searched.traces, report.searched.spans), (1, 1));
        assert_eq!(report.canaries_found, 1, "{report:?}");
        assert_eq!(
            report.findings[0].place,
            "trace 00000000000000000000000000004bf9 span \"POST /x\" (api-gateway) event[0] \"exception\" attribute exception.message"
        );
    }

    #[test]
    fn log_lines_are_numbered_bounded_and_series_labels_searched() {
        let (search, canaries) = setup();
        let dir = std::env::temp_dir().join(format!("harness-pii-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("gateway.log");
        let token = canaries.value(CanaryKind::Token, 0, 0);
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        std::fs::write(
            &log,
            format!("{{\"level\":\"INFO\"}}\n{long}\n{{\"body\":\"{token}\"}}\nlast"),
        )
        .expect("write");
        search.log_file(&log);
        search.log_file(&dir.join("absent.log"));
        search.series(&[Snapshot {
            service: "api-gateway".to_owned(),
            samples: vec![Sample {
                name: "requests_total".to_owned(),
                labels: BTreeMap::from([(
                    "client".to_owned(),
                    canaries.value(CanaryKind::Account, 0, 0),
                )]),
                value: 1.0,
            }],
        }]);
        let report = search.report();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            (report.searched.log_files, report.searched.log_lines),
            (1, 4)
        );
        assert_eq!(report.searched.series, 1);
        let places: Vec<&str> = report.findings.iter().map(|f| f.place.as_str()).collect();
        assert_eq!(
            places,
            [
                "gateway.log:3",
                "series requests_total of api-gateway label client"
            ]
        );
        assert_eq!(report.not_searched.len(), 2, "{:?}", report.not_searched);
    }
}
