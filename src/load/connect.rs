//! Opening a connection to a target: TCP without Nagle's delay, then TLS where the scheme asks for
//! it, telling which protocol ALPN settled on. Shared by the HTTP and gRPC drivers.

use hyper::http::uri::Authority;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A byte stream to the target, plain or TLS.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// An open connection.
pub(super) struct Connected {
    pub(super) io: Box<dyn Io>,
    /// TLS negotiated HTTP/2 by ALPN.
    pub(super) h2: bool,
}

/// TLS with the given ALPN protocols, trusting what `config` says.
pub(super) fn tls_connector(mut config: rustls::ClientConfig, alpn: &[&[u8]]) -> TlsConnector {
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(std::sync::Arc::new(config))
}

/// Connects to `authority` (its port, else 443 with TLS and 80 without), over TLS when `tls` is
/// given. Errors say what failed and where.
pub(super) async fn open(
    authority: &Authority,
    tls: Option<&TlsConnector>,
) -> Result<Connected, String> {
    let host = authority.host();
    let default_port = if tls.is_some() { 443 } else { 80 };
    let address = format!("{host}:{}", authority.port_u16().unwrap_or(default_port));
    let tcp = TcpStream::connect(&address)
        .await
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    let Some(tls) = tls else {
        return Ok(Connected {
            io: Box::new(tcp),
            h2: false,
        });
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(bare.to_owned())
        .map_err(|e| format!("{host}: not a TLS server name: {e}"))?;
    let stream = tls
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {address}: {e}"))?;
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    Ok(Connected {
        io: Box::new(stream),
        h2,
    })
}
