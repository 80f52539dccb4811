//! The exit codes of `harness run`, `harness signoff`, `harness validate` and `harness compare`:
//! the gate CI reads, so one definition for the command line and the sign-off that reports them.

/// Every threshold, check and claim passed.
pub const EXIT_PASSED: u8 = 0;
/// The run completed and something failed it: a threshold, a check, or the overhead claim.
pub const EXIT_FAILED: u8 = 1;
/// A scenario, suite or result file is wrong; nothing was measured, or should not have been.
pub const EXIT_BAD_INPUT: u8 = 2;
/// The run did not complete: a service would not start or crashed, the target was unreachable,
/// or it was interrupted. Its results, if any, cannot be trusted to pass or fail it.
pub const EXIT_INCOMPLETE: u8 = 3;

/// Where a run goes wrong, by the exit code it calls for.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Exit 2: the scenario or flags are wrong.
    #[error("{0}")]
    BadInput(String),
    /// Exit 3: the run could not be completed.
    #[error("{0:#}")]
    Incomplete(anyhow::Error),
}

impl RunError {
    /// The exit code this error calls for.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::BadInput(_) => EXIT_BAD_INPUT,
            RunError::Incomplete(_) => EXIT_INCOMPLETE,
        }
    }
}
