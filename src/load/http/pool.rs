//! The connections to one origin: HTTP/1.1 ones taken for one exchange and put back, the one
//! HTTP/2 connection every request shares.

use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper::http::uri::{Authority, Scheme};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_rustls::TlsConnector;

use super::super::connect::open;
use super::http1::Http1Conn;
use super::{Error, HttpVersion, lock};

/// Scheme and authority: what a connection is made to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Origin {
    pub(super) scheme: Scheme,
    pub(super) authority: Authority,
}

/// The connections to one origin.
pub(super) struct Pool {
    pub(super) origin: Origin,
    /// HTTP/1.1 connections between exchanges, the most recently used last.
    idle: Mutex<Vec<Http1Conn>>,
    /// The HTTP/2 connection every request shares, once there is one.
    shared: Mutex<Shared>,
    /// Lets one request at a time open a connection that may turn out HTTP/2, so that a burst
    /// of first requests opens one shared connection, not one each.
    opening_h2: tokio::sync::Mutex<()>,
}

/// The shared HTTP/2 connection, numbered so that a request that saw it fail replaces that one
/// and not a newer one another request already opened.
#[derive(Default)]
struct Shared {
    generation: u64,
    sender: Option<http2::SendRequest<Full<Bytes>>>,
}

pub(super) enum Connection {
    Http1(Http1Conn),
    /// The shared connection and its generation.
    Http2(u64, http2::SendRequest<Full<Bytes>>),
}

/// How connections are opened: what the driver was configured with.
pub(super) struct Opener<'a> {
    pub(super) version: HttpVersion,
    pub(super) tls: &'a TlsConnector,
}

impl Pool {
    pub(super) fn new(origin: Origin) -> Self {
        Pool {
            origin,
            idle: Mutex::new(Vec::new()),
            shared: Mutex::new(Shared::default()),
            opening_h2: tokio::sync::Mutex::new(()),
        }
    }

    /// A connection for one exchange: the shared HTTP/2 one, an idle HTTP/1.1 one, or a new one.
    pub(super) async fn checkout(&self, opener: &Opener<'_>) -> Result<Connection, Error> {
        let may_be_h2 = match opener.version {
            HttpVersion::Http1 => false,
            HttpVersion::Http2 => true,
            HttpVersion::Auto => self.origin.scheme == Scheme::HTTPS,
        };
        if may_be_h2 && let Some((generation, shared)) = self.reusable_shared() {
            return Ok(Connection::Http2(generation, shared));
        }
        while let Some(mut idle) = lock(&self.idle).pop() {
            // Closed since it was put back (the server's idle timeout): dropped, not tried.
            if !idle.closed_while_idle() {
                return Ok(Connection::Http1(idle));
            }
        }
        if !may_be_h2 {
            return self.open(opener).await;
        }
        let _opening = self.opening_h2.lock().await;
        if let Some((generation, shared)) = self.reusable_shared() {
            return Ok(Connection::Http2(generation, shared));
        }
        Ok(match self.open(opener).await? {
            Connection::Http2(_, sender) => {
                let mut shared = lock(&self.shared);
                shared.generation += 1;
                shared.sender = Some(sender.clone());
                Connection::Http2(shared.generation, sender)
            }
            http1 => http1,
        })
    }

    /// A new connection: HTTP/2 by prior knowledge or by ALPN, else HTTP/1.1.
    pub(super) async fn open(&self, opener: &Opener<'_>) -> Result<Connection, Error> {
        let tls = (self.origin.scheme == Scheme::HTTPS).then_some(opener.tls);
        let connected = open(&self.origin.authority, tls).await?;
        let h2 = connected.h2 || (tls.is_none() && opener.version == HttpVersion::Http2);
        if h2 {
            let io = TokioIo::new(connected.io);
            let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(connection);
            // Numbered when it becomes the pool's shared connection.
            Ok(Connection::Http2(0, sender))
        } else {
            Ok(Connection::Http1(Http1Conn::new(connected.io)))
        }
    }

    /// Keeps `connection` for a later exchange, unless `most` are kept already.
    pub(super) fn put_back(&self, connection: Http1Conn, most: usize) {
        let mut idle = lock(&self.idle);
        if idle.len() < most {
            idle.push(connection);
        }
    }

    /// Drops the shared HTTP/2 connection if it is still the one of `generation`, which failed,
    /// so that the next request opens a new one.
    pub(super) fn forget_shared(&self, generation: u64) {
        let mut shared = lock(&self.shared);
        if shared.generation == generation {
            shared.sender = None;
        }
    }

    /// The shared HTTP/2 connection and its generation, if it is still open.
    fn reusable_shared(&self) -> Option<(u64, http2::SendRequest<Full<Bytes>>)> {
        let mut shared = lock(&self.shared);
        if shared
            .sender
            .as_ref()
            .is_some_and(http2::SendRequest::is_closed)
        {
            shared.sender = None;
        }
        let generation = shared.generation;
        shared.sender.clone().map(|sender| (generation, sender))
    }

    #[cfg(test)]
    pub(super) fn idle(&self) -> usize {
        lock(&self.idle).len()
    }
}
