//! The harness: open-loop load at a traced system, with verification of its traces and metrics.
//! The binary (`src/main.rs`) is the command line over these modules; data flows scenario → plan
//! → load → verify (traces, metrics) → result → thresholds → printers. `docs/architecture.md`
//! has the layers and what each module may import.

#![warn(missing_docs)]

pub(crate) mod bounded;
pub mod bundled;
pub mod compare;
pub mod exit;
pub(crate) mod format;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub mod load;
pub mod merge;
#[allow(missing_docs)] // Items still to be documented.
pub mod metrics;
pub(crate) mod overhead;
pub(crate) mod plan;
pub(crate) mod progress;
pub mod report;
pub mod result;
pub mod run;
pub(crate) mod scenario;
pub mod signoff;
pub mod summary;
pub(crate) mod summary_json;
pub mod system;
#[cfg(test)]
mod testing;
pub(crate) mod threshold;
pub mod tls;
pub mod trace;
pub mod verify;
