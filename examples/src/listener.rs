//! Listening near the open-files limit: the process raises its soft limit to the hard one at
//! start ([`raise_open_files_limit`]), and the listeners keep one descriptor in reserve, so that
//! when every other is in use a new connection is still accepted, answered with a 503 JSON body
//! and closed — not left in the kernel's queue to time out — and the shortage is logged once
//! when it begins and once when it ends, not per attempt.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// Descriptors kept for everything but sockets (files, logs, Redis, the database).
const SPARE_DESCRIPTORS: u64 = 64;

/// The answer to a connection accepted while the process is out of descriptors.
const AT_LIMIT: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 5\r\ncontent-length: 50\r\nconnection: close\r\n\r\n\
{\"detail\":\"Server at its connection limit, retry\"}";

/// Raises the open-files soft limit to the hard limit and logs how many sockets that leaves
/// room for; returns the limit now in force (`None` where it cannot be read).
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(
                open_files = limit,
                sockets = limit.saturating_sub(SPARE_DESCRIPTORS),
                "open-files limit raised to the hard limit"
            );
            Some(limit)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-files limit");
            None
        }
    }
}

/// Whether `e` means the process (or the system) has no descriptor left.
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == 24 /* EMFILE */ || code == 23 /* ENFILE */)
}

/// Errors of one connection that leave the listener healthy (the client gave up first).
fn connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A TCP listener that keeps one descriptor in reserve for the moment all others are in use.
#[derive(Debug)]
pub struct GuardedListener {
    inner: TcpListener,
    reserve: Option<std::fs::File>,
    at_limit: bool,
}

impl GuardedListener {
    /// Wraps `inner`, opening the reserve descriptor.
    pub fn new(inner: TcpListener) -> Self {
        Self {
            inner,
            reserve: open_reserve(),
            at_limit: false,
        }
    }

    /// Raises the open-files limit ([`raise_open_files_limit`]) and listens on `addr`.
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        raise_open_files_limit();
        Ok(Self::new(TcpListener::bind(addr).await?))
    }

    /// The next connection; a connection that arrives while the process is out of
    /// descriptors is answered 503 and closed with the reserve's descriptor.
    pub async fn accept_guarded(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok(accepted) => {
                    if self.at_limit {
                        self.at_limit = false;
                        tracing::info!("descriptors are available again; accepting connections");
                    }
                    if self.reserve.is_none() {
                        self.reserve = open_reserve();
                    }
                    return accepted;
                }
                Err(e) if out_of_descriptors(&e) => self.refuse_one().await,
                Err(e) if connection_error(&e) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Out of descriptors: frees the reserve, accepts one waiting connection with it, answers
    /// 503 and closes it, then takes the reserve back.
    async fn refuse_one(&mut self) {
        if !self.at_limit {
            self.at_limit = true;
            tracing::error!(
                "out of file descriptors: new connections are answered 503 until sockets close (raise the hard open-files limit to hold more)"
            );
        }
        self.reserve = None;
        if let Ok(Ok((mut stream, _))) =
            tokio::time::timeout(Duration::from_millis(100), self.inner.accept()).await
        {
            let _ =
                tokio::time::timeout(Duration::from_millis(100), stream.write_all(AT_LIMIT)).await;
            let _ = stream.shutdown().await;
        }
        self.reserve = open_reserve();
        if self.reserve.is_none() {
            // Still none free: let the sockets close before trying again.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

fn open_reserve() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

impl axum::serve::Listener for GuardedListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        self.accept_guarded().await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        GuardedListener::local_addr(self)
    }
}

/// The guarded listener as a poem acceptor.
#[derive(Debug)]
pub struct GuardedAcceptor {
    listener: GuardedListener,
    local: poem::web::LocalAddr,
}

impl GuardedAcceptor {
    /// Wraps `listener`.
    pub fn new(listener: GuardedListener) -> io::Result<Self> {
        let local = poem::web::LocalAddr(listener.local_addr()?.into());
        Ok(Self { listener, local })
    }
}

impl poem::listener::Acceptor for GuardedAcceptor {
    type Io = TcpStream;

    fn local_addr(&self) -> Vec<poem::web::LocalAddr> {
        vec![self.local.clone()]
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(
        Self::Io,
        poem::web::LocalAddr,
        poem::web::RemoteAddr,
        http::uri::Scheme,
    )> {
        let (stream, peer) = self.listener.accept_guarded().await;
        Ok((
            stream,
            self.local.clone(),
            poem::web::RemoteAddr(peer.into()),
            http::uri::Scheme::HTTP,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_http_answer() {
        let text = std::str::from_utf8(AT_LIMIT).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["detail"], "Server at its connection limit, retry");
    }
}
