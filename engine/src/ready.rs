//! The one line each service prints on stdout once it accepts connections, so that a supervisor
//! (the harness, a test) learns the ports it bound, including ephemeral ones, without parsing logs.
//!
//! ```json
//! {"event":"ready","service":"core-engine","pid":4242,"tracing":true,"listen":{"grpc":"127.0.0.1:43117","metrics":"127.0.0.1:43119"}}
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub event: String,
    pub service: String,
    pub pid: u32,
    /// Whether tracing is on (`OTEL_SDK_DISABLED` not `true`).
    pub tracing: bool,
    /// Bound address per listener name (`grpc`, `metrics`, `http`).
    pub listen: BTreeMap<String, SocketAddr>,
}

impl Ready {
    pub fn new(service: &str, tracing: bool, listen: &[(&str, SocketAddr)]) -> Self {
        Ready {
            event: "ready".into(),
            service: service.into(),
            pid: std::process::id(),
            tracing,
            listen: listen
                .iter()
                .map(|&(name, addr)| (name.into(), addr))
                .collect(),
        }
    }

    /// Writes the line to stdout and flushes it, so a reader on a pipe sees it at once.
    pub fn announce(&self) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer(&mut stdout, self)?;
        stdout.write_all(b"\n")?;
        stdout.flush()
    }

    /// Parses a line as printed by [`Ready::announce`]; `None` for any other line.
    pub fn parse(line: &str) -> Option<Self> {
        serde_json::from_str::<Ready>(line)
            .ok()
            .filter(|r| r.event == "ready")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let addr: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let ready = Ready::new("core-engine", true, &[("grpc", addr)]);
        let line = serde_json::to_string(&ready).expect("json");
        assert!(
            line.starts_with(r#"{"event":"ready","service":"core-engine""#),
            "{line}"
        );
        assert_eq!(Ready::parse(&line), Some(ready));
        assert_eq!(Ready::parse(r#"{"level":"INFO"}"#), None);
    }
}
