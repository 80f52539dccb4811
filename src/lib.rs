//! The harness: open-loop load at a traced system, with verification of its traces and metrics.
//! The binary (`src/main.rs`) is the command line over these modules.

pub mod scenario;
