//! OpenTelemetry tracing for both services, through the OTel API directly.
//!
//! The `tracing` bridge costs 2.5–4× as much per span (see ECOSYSTEM.md), so spans are made with the
//! OTel API and `tracing` is used for logs only. With `OTEL_SDK_DISABLED=true` no provider exists and
//! every entry point here returns before doing any span or propagation work.

pub mod counting;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod ids;
mod logging;
mod propagation;
pub mod semconv;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{
    Link, SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt, TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, TracerProviderBuilder};

pub use counting::{SpanCounts, SpanTally};
pub use ids::Ascii;
pub use logging::init_logging;
pub use propagation::Carrier;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("building the OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("OTEL_TRACES_EXPORTER={0:?}: expected otlp (the default) or none")]
    UnknownExporter(String),
}

/// Where finished spans go, from `OTEL_TRACES_EXPORTER` as the OpenTelemetry specification names
/// it: `otlp` (the default), or `none`, which still starts, records and ends every span but
/// exports nothing. The overhead experiment uses `none` to tell the cost of recording spans from
/// the cost of exporting them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpanExport {
    Otlp,
    Discard,
}

impl SpanExport {
    fn from_env(value: Option<&str>) -> Result<Self, TelemetryError> {
        match value.map(str::trim) {
            None | Some("") => Ok(SpanExport::Otlp),
            Some(v) if v.eq_ignore_ascii_case("otlp") => Ok(SpanExport::Otlp),
            Some(v) if v.eq_ignore_ascii_case("none") => Ok(SpanExport::Discard),
            Some(other) => Err(TelemetryError::UnknownExporter(other.to_owned())),
        }
    }
}

/// The tracing state of one service: present when tracing is on, absent (and free) when it is off.
pub struct Telemetry {
    tracing: Option<Tracing>,
}

struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// Where the spans went, when they are exported.
    counts: Option<Arc<SpanCounts>>,
}

impl Telemetry {
    /// Sets tracing up from the standard `OTEL_*` environment variables.
    ///
    /// The SDK reads the exporter endpoint, sampler, batch settings and resource attributes itself;
    /// nothing is set in code that the environment should be able to override. Must be called inside
    /// a Tokio runtime, which the gRPC exporter needs.
    pub fn from_env(default_service_name: &str) -> Result<Self, TelemetryError> {
        if sdk_disabled(std::env::var("OTEL_SDK_DISABLED").ok().as_deref()) {
            return Ok(Telemetry::disabled());
        }
        let export = SpanExport::from_env(std::env::var("OTEL_TRACES_EXPORTER").ok().as_deref())?;
        Ok(match export {
            SpanExport::Otlp => {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .build()?;
                Telemetry::exporting(default_service_name, exporter)
            }
            SpanExport::Discard => {
                Telemetry::with_provider(default_service_name, SdkTracerProvider::builder())
            }
        })
    }

    /// Tracing as [`Self::from_env`] sets it up for OTLP (the batch processor, configured by the
    /// `OTEL_BSP_*` variables, every span counted), with spans going to `exporter`: benchmarks
    /// measure the services' tracing with an exporter that discards, or one aimed at a sink of
    /// their own.
    pub fn exporting(
        default_service_name: &str,
        exporter: impl opentelemetry_sdk::trace::SpanExporter + 'static,
    ) -> Self {
        let (processor, counts) = counting::counting_batch(exporter);
        let mut telemetry = Telemetry::with_provider(
            default_service_name,
            SdkTracerProvider::builder().with_span_processor(processor),
        );
        if let Some(tracing) = &mut telemetry.tracing {
            tracing.counts = Some(counts);
        }
        telemetry
    }

    fn with_provider(default_service_name: &str, builder: TracerProviderBuilder) -> Self {
        let provider = builder
            .with_resource(resource(default_service_name))
            .build();
        let tracer = provider.tracer(default_service_name.to_owned());
        Telemetry {
            tracing: Some(Tracing {
                provider,
                tracer,
                counts: None,
            }),
        }
    }

    /// The counts of spans ended, exported and dropped, when spans are exported; the services
    /// expose them as metrics (see [`crate::metrics`]).
    pub fn span_counts(&self) -> Option<Arc<SpanCounts>> {
        self.tracing.as_ref()?.counts.clone()
    }

    pub fn disabled() -> Self {
        Telemetry { tracing: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.tracing.is_some()
    }

    /// The current context with the remote parent carried by `carrier` (W3C `traceparent` and
    /// `tracestate`), if it carries a valid one; `None` when tracing is off.
    pub fn extract(&self, carrier: &impl Carrier) -> Option<Context> {
        self.tracing.as_ref()?;
        let cx = Context::current();
        Some(match propagation::extract(carrier) {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx,
        })
    }

    /// Writes `cx`'s span into outgoing gRPC metadata as W3C `traceparent`/`tracestate`.
    pub fn inject(&self, cx: &Context, metadata: &mut tonic::metadata::MetadataMap) {
        if self.tracing.is_some() {
            propagation::inject_metadata(cx.span().span_context(), metadata);
        }
    }

    /// Starts a span under `parent` and returns the context that holds it; end it with
    /// [`end_span`]. `None` when tracing is off.
    pub fn start_span(
        &self,
        parent: &Context,
        name: impl Into<std::borrow::Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Option<Context> {
        let tracing = self.tracing.as_ref()?;
        let span = SpanBuilder::from_name(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(&tracing.tracer, parent);
        Some(parent.with_span(span))
    }

    /// Starts a span under `parent`, as [`Self::start_span`] does, with links to `linked`: a
    /// streamed update's span points at the subscription it belongs to without being its child.
    pub fn start_linked_span(
        &self,
        parent: &Context,
        name: impl Into<std::borrow::Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
        linked: &[SpanContext],
    ) -> Option<Context> {
        let tracing = self.tracing.as_ref()?;
        let links = linked
            .iter()
            .filter(|sc| sc.is_valid())
            .map(|sc| Link::with_context(sc.clone()))
            .collect();
        let span = SpanBuilder::from_name(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .with_links(links)
            .start_with_context(&tracing.tracer, parent);
        Some(parent.with_span(span))
    }

    /// The remote span context in a W3C `traceparent` value carried in a message rather than a
    /// header; `None` when tracing is off or the value is not a valid one.
    pub fn remote_parent(&self, traceparent: &str) -> Option<SpanContext> {
        self.tracing.as_ref()?;
        ids::parse_traceparent(traceparent, opentelemetry::trace::TraceState::default())
    }

    /// Waits until every span ended so far has been exported: for benchmarks and tests that
    /// count what arrived. Nothing to do when tracing is off.
    pub fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        match &self.tracing {
            Some(tracing) => tracing.provider.force_flush(),
            None => Ok(()),
        }
    }

    /// Flushes queued spans and stops the exporter, giving up after `timeout`.
    pub async fn shutdown(&self, timeout: Duration) {
        let Some(tracing) = &self.tracing else { return };
        let provider = tracing.provider.clone();
        // The SDK's shutdown blocks on the exporter's thread; keep it off the async workers.
        let flushed =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(timeout)).await;
        match flushed {
            Ok(Ok(())) => tracing::info!("trace exporter flushed and stopped"),
            Ok(Err(error)) => tracing::warn!(%error, "trace exporter did not shut down cleanly"),
            Err(error) => tracing::warn!(%error, "trace exporter shutdown task failed"),
        }
    }
}

/// Records the outcome on the span held by `cx` and ends it.
pub fn end_span(cx: &Context, attributes: impl IntoIterator<Item = KeyValue>, status: Status) {
    let span = cx.span();
    span.set_attributes(attributes);
    if status != Status::Unset {
        span.set_status(status);
    }
    span.end();
}

/// Hex trace id of the sampled or unsampled span in `cx`, if it has a valid one.
pub fn trace_id(cx: &Context) -> Option<Ascii<32>> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| ids::trace_id_hex(sc.trace_id()))
}

/// The W3C `traceparent` of the span in `cx`, if it has a valid context.
pub fn traceparent(cx: &Context) -> Option<Ascii<55>> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| ids::traceparent(sc))
}

/// The span context of the span in `cx`, for linking to it.
pub fn span_context(cx: &Context) -> SpanContext {
    cx.span().span_context().clone()
}

/// Whether the span in `cx` is being recorded (sampled in), i.e. its work is real.
pub fn is_recording(cx: &Context) -> bool {
    cx.span().is_recording()
}

/// `OTEL_SDK_DISABLED` as the specification reads it: only a case-insensitive `true` disables.
fn sdk_disabled(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The SDK's resource from the environment, with our own service name where the environment gives
/// none (the SDK's fallback would be `unknown_service`).
fn resource(default_service_name: &str) -> Resource {
    let from_env = Resource::builder().build();
    let named = from_env
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named {
        from_env
    } else {
        Resource::builder()
            .with_service_name(default_service_name.to_owned())
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_true_disables_the_sdk() {
        assert!(sdk_disabled(Some("true")));
        assert!(sdk_disabled(Some(" TRUE ")));
        for value in [None, Some(""), Some("false"), Some("1"), Some("yes")] {
            assert!(!sdk_disabled(value), "{value:?}");
        }
    }

    #[test]
    fn the_exporter_is_otlp_unless_none_is_asked_for() {
        for value in [None, Some(""), Some("otlp"), Some(" OTLP ")] {
            assert_eq!(
                SpanExport::from_env(value).ok(),
                Some(SpanExport::Otlp),
                "{value:?}"
            );
        }
        assert_eq!(
            SpanExport::from_env(Some("none")).ok(),
            Some(SpanExport::Discard)
        );
        let error = SpanExport::from_env(Some("zipkin")).expect_err("not supported");
        assert!(error.to_string().contains("\"zipkin\""), "{error}");
    }

    #[test]
    fn disabled_telemetry_does_no_span_work() {
        let telemetry = Telemetry::disabled();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "traceparent",
            axum::http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        assert!(telemetry.extract(&headers).is_none());
        assert!(
            telemetry
                .start_span(&Context::new(), "x", SpanKind::Server, vec![])
                .is_none()
        );
        assert!(
            telemetry
                .start_linked_span(&Context::new(), "x", SpanKind::Producer, vec![], &[])
                .is_none()
        );
        assert!(
            telemetry
                .remote_parent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                .is_none()
        );
    }
}
