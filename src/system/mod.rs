//! The system under test: the bundled services launched by the harness, or an external one.

pub mod managed;

pub use managed::{ManagedSystem, ServiceLaunch, ServiceProcess, SystemError};
