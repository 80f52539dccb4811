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
    #[error("{}", Chain(.0))]
    Incomplete(anyhow::Error),
}

/// An error and its causes, `: `-separated as anyhow's `{:#}` prints them, but without a cause
/// that the text before it already ends with: many errors repeat their source in their own
/// message, and the reason would otherwise be printed twice.
struct Chain<'a>(&'a anyhow::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = String::new();
        for cause in self.0.chain() {
            let cause = cause.to_string();
            if text.is_empty() {
                text = cause;
            } else if !text.ends_with(&cause) {
                text.push_str(": ");
                text.push_str(&cause);
            }
        }
        f.write_str(&text)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// As the harness's write errors are: the source in the message and as `#[source]`.
    #[derive(Debug, thiserror::Error)]
    #[error("writing out.json: {source}")]
    struct Repeats {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let io = std::io::Error::from_raw_os_error(28);
        let error = anyhow::Error::from(Repeats { source: io }).context("the result");
        assert_eq!(
            RunError::Incomplete(error).to_string(),
            "the result: writing out.json: No space left on device (os error 28)"
        );
        // A cause not yet said is still printed.
        let error = anyhow::Error::from(std::io::Error::from_raw_os_error(2)).context("reading x");
        assert_eq!(
            RunError::Incomplete(error).to_string(),
            "reading x: No such file or directory (os error 2)"
        );
    }
}
