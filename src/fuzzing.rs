//! Entry points for the fuzz targets in `fuzz/` (docs/fuzzing.md), built only under
//! `cfg(fuzzing)`, which cargo-fuzz sets, so that normal builds keep their narrow API. Each takes
//! raw bytes from outside, runs them through the parser and what the harness then does with the
//! result, and panics only when a property fails; the parsers themselves must never panic.

use std::path::Path;

use crate::scenario::{self, Override};
use crate::threshold::Threshold;

/// A scenario file: YAML text to a validated scenario, and its thresholds parsed.
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    checked(scenario::parse("fuzz/scenario.yaml", text, &[]));
}

/// The scenario that `--set` overrides are applied to: the one with every verification section.
const BASE: &str = include_str!("../scenarios/verify.yaml");

/// `--set` arguments, one a line, parsed and applied to [`BASE`]. An override that parses writes
/// back as the text it was read from.
pub fn overrides(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parsed = Vec::new();
    for line in text.lines() {
        match line.parse::<Override>() {
            Ok(o) => {
                assert_eq!(o.to_string(), line, "an override writes back as read");
                parsed.push(o);
            }
            Err(error) => drop(error.to_string()),
        }
    }
    checked(scenario::parse("fuzz/verify.yaml", BASE, &parsed));
}

/// What validation said, as the command line would print it; a valid scenario's thresholds are
/// parsed as a run parses them.
fn checked(outcome: Result<scenario::Scenario, scenario::ScenarioError>) {
    match outcome {
        Ok(scenario) => {
            if let Err(error) = crate::threshold::parse_all(&scenario) {
                drop(error.to_string());
            }
        }
        Err(error) => drop(error.to_string()),
    }
}

/// A threshold expression. One that parses has a canonical form that parses back to an equal
/// threshold, with the same canonical form.
pub fn threshold(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Threshold::parse(text) {
        Ok(threshold) => {
            let canonical = threshold.to_string();
            let again = Threshold::parse(&canonical)
                .unwrap_or_else(|error| panic!("{canonical:?} from {text:?}: {error}"));
            assert_eq!(again, threshold, "{canonical:?} from {text:?}");
            assert_eq!(again.to_string(), canonical);
        }
        Err(error) => drop(error.to_string()),
    }
}

/// An OTLP/HTTP export body, taken in by the receiver and stored; gzipped when it starts with
/// gzip's magic bytes.
pub fn otlp(data: &[u8], json: bool) {
    crate::trace::receiver::fuzz_export(data, json, data.starts_with(&[0x1f, 0x8b]));
}

/// An answer of Jaeger's v1 (`v3` false) or v3 query API.
pub fn jaeger(data: &[u8], v3: bool) {
    crate::trace::jaeger::fuzz_answer(v3, data);
}

/// An HTTP/1.1 answer, as the HTTP driver reads it from a connection in pieces.
pub fn http1_answer(data: &[u8]) {
    crate::load::http::fuzz_answer(data);
}

/// What an HTTP/2 server sends the gRPC driver's connection: frames, header blocks, windows.
pub fn http2_server(data: &[u8]) {
    crate::load::fuzz_server_bytes(data);
}

/// An answer of the Prometheus HTTP API (a query or the target list).
pub fn prometheus(data: &[u8]) {
    crate::metrics::prometheus::fuzz_answer(data);
}

/// A `/metrics` page in the Prometheus text format. Every sample kept is a line of the page.
pub fn exposition(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let url = "http://127.0.0.1:9464/metrics";
    match crate::metrics::scrape::parse_exposition("engine", url, text) {
        Ok(snapshot) => assert!(snapshot.samples.len() <= text.lines().count()),
        Err(error) => drop(error.to_string()),
    }
}

/// A stored `result.json`, as `harness report` reads and renders it and as `harness compare`
/// reads it and compares it with itself. A result that reads back writes back equal.
pub fn stored_result(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("result.json");
    match crate::result::from_text(path, text) {
        Ok(result) => {
            let written = serde_json::to_string_pretty(&result).expect("a result serializes");
            let again = crate::result::from_text(path, &written)
                .unwrap_or_else(|error| panic!("a result written back does not read: {error}"));
            let rewritten = serde_json::to_string_pretty(&again).expect("a result serializes");
            assert_eq!(
                rewritten, written,
                "a result that reads back writes back equal"
            );
            if let Err(error) = crate::report::page::render(&result, "result.json") {
                drop(error.to_string());
            }
        }
        Err(error) => drop(error.to_string()),
    }
    match crate::compare::from_text(path, text) {
        Ok(run) => {
            let tolerance = "5%".parse().expect("a valid tolerance");
            match crate::compare::compare(&run, &run, tolerance) {
                Ok(comparison) => {
                    drop(crate::compare::text(&comparison));
                    drop(crate::compare::html(&comparison));
                }
                Err(error) => drop(error.to_string()),
            }
        }
        Err(error) => drop(error.to_string()),
    }
}

/// A stored histogram's bytes (base64-encoded here, as `result.json` holds them). One that decodes
/// encodes and decodes again to an equal histogram.
pub fn histogram(data: &[u8]) {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    match crate::result::decode_histogram(&text) {
        Ok(histogram) => {
            let again =
                crate::result::decode_histogram(&crate::result::encode_histogram(&histogram))
                    .unwrap_or_else(|error| {
                        panic!("a histogram written back does not read: {error}")
                    });
            assert_eq!(
                again, histogram,
                "a histogram that reads back writes back equal"
            );
        }
        Err(error) => drop(error.to_string()),
    }
    if let Ok(text) = std::str::from_utf8(data) {
        drop(crate::result::decode_histogram(text).map(|h| h.len()));
    }
}
