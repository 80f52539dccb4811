//! The load core: an open-loop schedule, protocol drivers, and the recorder of what came back.
//! It knows nothing of trace checks or scenario files (it only stamps sampled requests with a
//! `traceparent`): it takes a [`LoadPlan`] and returns a [`RunReport`].

mod alarm;
mod connect;
mod deadline;
pub mod driver;
pub mod grpc;
pub mod http;
mod http2;
mod intmap;
pub mod outcome;
mod prepared;
pub mod recorder;
pub mod reflection;
pub mod runner;
pub mod sample;
pub mod schedule;
pub mod stream;
mod thread;

#[cfg(fuzzing)]
pub(crate) use http2::fuzz_server_bytes;

pub use driver::{Driver, Reply};
pub use grpc::{GrpcCall, GrpcDriver};
pub use http::{HttpDriver, HttpRequest, HttpVersion};
pub use outcome::Outcome;
pub use recorder::{Completion, KindStats, Recorder, Second, SecondPercentiles};
pub use runner::{LoadKind, LoadPlan, PlanError, RunReport, Stop, run, run_together};
pub use sample::{Announce, SampleSink, SampledRequest, Sampling, TraceParent};
pub use schedule::{Arrival, Arrivals, RatePhase, Schedule, Segment};
pub use thread::ask_for_slice;
