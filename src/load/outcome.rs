//! How one request ended, as the drivers report it: the vocabulary the recorder counts by and a
//! sampled request carries to the verifier, kept apart so that neither depends on the other.

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response with this status.
    Status(u16),
    /// A gRPC response with this status code.
    Code(tonic::Code),
    /// No answer within the request timeout.
    Timeout,
    /// The request could not be sent or its answer not read (connection refused, reset, ...).
    Transport(String),
}

impl Outcome {
    /// The key under which outcomes are counted: `200`, `INVALID_ARGUMENT`, `timeout`, `transport`.
    pub fn label(&self) -> String {
        match self {
            Outcome::Status(status) => status.to_string(),
            Outcome::Code(code) => engine::status::code_name(*code).to_owned(),
            Outcome::Timeout => "timeout".to_owned(),
            Outcome::Transport(_) => "transport".to_owned(),
        }
    }
}
