//! The Market Intel Brain services that the harness is built around: a core engine (gRPC) and an
//! API gateway (HTTP to gRPC), both instrumented with OpenTelemetry tracing, JSON logs and
//! Prometheus metrics.
//!
//! Both run as standalone binaries (`core-engine`, `api-gateway`); their `run` functions are
//! public so that other programs can host them too.

pub mod core_engine;
pub mod duration;
pub mod faults;
pub mod gateway;
pub mod market;
pub mod metrics;
pub mod metrics_token;
pub mod ready;
pub mod shutdown;
pub mod status;
pub mod telemetry;

/// Generated from `proto/core_engine.proto`.
pub mod proto {
    tonic::include_proto!("core_engine.v1");
}
