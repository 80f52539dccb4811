//! Opening a connection to a target: TCP without Nagle's delay, then TLS where the scheme asks for
//! it, telling which protocol ALPN settled on. Shared by the HTTP and gRPC drivers.

use hyper::http::uri::Authority;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
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
    open_sized(authority, tls, None).await
}

/// As [`open`], with the socket's receive buffer set to `receive_buffer` bytes before it
/// connects (the kernel doubles it and keeps it fixed): a small one lets a slow reader's
/// backlog reach the server instead of waiting in the kernel's buffers.
pub(super) async fn open_sized(
    authority: &Authority,
    tls: Option<&TlsConnector>,
    receive_buffer: Option<u32>,
) -> Result<Connected, String> {
    let host = authority.host();
    let default_port = if tls.is_some() { 443 } else { 80 };
    let address = format!("{host}:{}", authority.port_u16().unwrap_or(default_port));
    let tcp = match receive_buffer {
        None => TcpStream::connect(&address).await,
        Some(bytes) => connect_sized(&address, bytes).await,
    }
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

/// Connects to the first address `address` resolves to that accepts, with the receive buffer
/// set beforehand (it bounds the window the connection offers, so it must precede the connect).
async fn connect_sized(address: &str, receive_buffer: u32) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host(address).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_recv_buffer_size(receive_buffer)?;
        match socket.connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the name resolves to no address",
        )
    }))
}
