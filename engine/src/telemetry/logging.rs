//! JSON logs, one object per line on stderr, carrying the current OTel `trace_id` and `span_id`.
//!
//! Spans are made with the OTel API (see the parent module), so the ids come from the OTel context
//! that the services attach to each request's future, not from `tracing` spans.

use std::fmt;

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;
use serde::ser::{SerializeMap, Serializer as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FromEnvError, LevelFilter};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::ids::{span_id_hex, trace_id_hex};

/// Installs the JSON logger, with the level from `RUST_LOG` (default `info`).
pub fn init_logging() -> Result<(), FromEnvError> {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env()?;
    // A second install (as in tests that run two services in one process) keeps the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(JsonLines)
        .try_init();
    Ok(())
}

struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::with_capacity(32);
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let meta = event.metadata();
        let cx = Context::current();
        let span = cx.span();
        let sc = span.span_context();

        let mut line = Vec::with_capacity(256);
        let mut serializer = serde_json::Serializer::new(&mut line);
        let mut map = serializer.serialize_map(None).map_err(|_| fmt::Error)?;
        map.serialize_entry("timestamp", &timestamp)
            .and_then(|()| map.serialize_entry("level", meta.level().as_str()))
            .and_then(|()| map.serialize_entry("target", meta.target()))
            .map_err(|_| fmt::Error)?;
        if sc.is_valid() {
            map.serialize_entry("trace_id", trace_id_hex(sc.trace_id()).as_str())
                .and_then(|()| map.serialize_entry("span_id", span_id_hex(sc.span_id()).as_str()))
                .map_err(|_| fmt::Error)?;
        }
        let mut fields = JsonFields {
            map: &mut map,
            failed: false,
        };
        event.record(&mut fields);
        if fields.failed {
            return Err(fmt::Error);
        }
        map.end().map_err(|_| fmt::Error)?;
        // serde_json writes UTF-8 only.
        writer.write_str(std::str::from_utf8(&line).map_err(|_| fmt::Error)?)?;
        writer.write_char('\n')
    }
}

/// Streams an event's fields into the line's JSON object, with no intermediate map.
struct JsonFields<'a, M> {
    map: &'a mut M,
    failed: bool,
}

impl<M: SerializeMap> JsonFields<'_, M> {
    fn entry(&mut self, field: &Field, value: impl serde::Serialize) {
        self.failed |= self.map.serialize_entry(field.name(), &value).is_err();
    }
}

impl<M: SerializeMap> Visit for JsonFields<'_, M> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.entry(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, AsDebugString(value));
    }
}

/// Serializes a value's `Debug` text as a JSON string, without an intermediate `String`.
/// (The event's message arrives here, as `format_args!` output, whose `Debug` is its text.)
struct AsDebugString<'a>(&'a dyn fmt::Debug);

impl serde::Serialize for AsDebugString<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{:?}", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use serde_json::Value;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    fn lines(f: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer.clone())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buffer.0.lock().expect("buffer lock").clone();
        String::from_utf8(bytes)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect()
    }

    #[test]
    fn lines_carry_fields_and_the_current_trace() {
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let out = lines(|| {
            tracing::info!(status = 200, path = "/x", "outside");
            let _guard = Context::new().with_remote_span_context(sc).attach();
            tracing::warn!(elapsed_us = 12u64, "inside \"quoted\"");
        });
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["message"], "outside");
        assert_eq!(out[0]["status"], 200);
        assert_eq!(out[0]["level"], "INFO");
        assert!(out[0].get("trace_id").is_none());
        assert_eq!(out[1]["message"], "inside \"quoted\"");
        assert_eq!(out[1]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(out[1]["span_id"], "00f067aa0ba902b7");
        assert!(
            out[1]["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
    }
}
