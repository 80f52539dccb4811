//! The load core: an open-loop schedule, protocol drivers, and the recorder of what came back.
//! It knows nothing of traces or scenario files: it takes a [`LoadPlan`] and returns a [`RunReport`].

pub mod driver;
pub mod recorder;
pub mod runner;
pub mod schedule;

pub use driver::{Driver, GrpcDriver, HttpDriver};
pub use recorder::{Completion, KindStats, Outcome, Recorder};
pub use runner::{LoadKind, LoadPlan, PlanError, RunReport, Stop, run};
pub use schedule::{Arrival, Arrivals, RatePhase, Schedule};
