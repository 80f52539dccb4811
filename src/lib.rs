//! The harness: open-loop load at a traced system, with verification of its traces and metrics.
//! The binary (`src/main.rs`) is the command line over these modules; data flows scenario → system
//! → load → verification (trace, metrics) → result → thresholds → summary.

pub mod bundled;
pub mod compare;
pub mod exit;
pub mod format;
pub mod load;
pub mod metrics;
pub mod overhead;
pub mod plan;
pub mod progress;
pub mod report;
pub mod result;
pub mod run;
pub mod scenario;
pub mod signoff;
pub mod summary;
pub mod system;
pub mod threshold;
pub mod trace;
pub mod verify;
