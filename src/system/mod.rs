//! The system under test: the bundled services launched by the harness, or an external one.

pub mod jaeger;
pub mod managed;
pub mod rss;
pub mod token;

use crate::exit::RunError;

pub use managed::{ManagedSystem, ServiceLaunch, ServiceProcess, SystemError};
pub use token::MetricsTokenFile;

/// The `http://` URI of a service's listener, as the load and the probes address it.
pub fn http_uri(addr: std::net::SocketAddr) -> Result<hyper::Uri, RunError> {
    format!("http://{addr}")
        .parse()
        .map_err(|e| RunError::Incomplete(anyhow::anyhow!("service address {addr}: {e}")))
}
