//! Accepting TCP connections within limits: at most a few open per client address, and one
//! descriptor kept in reserve so that, when every other is in use, a new connection is still
//! accepted, answered with a 503 JSON body and closed (not left in the kernel's queue to time
//! out), the shortage logged once when it begins and once when it ends.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{ConnectionLimits, EdgeStream};
use crate::config::{IpNet, counted_address};
use crate::util::lock;

/// The answer to a connection accepted while the process is out of descriptors.
const AT_LIMIT: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 5\r\ncontent-length: 50\r\nconnection: close\r\n\r\n\
{\"detail\":\"Server at its connection limit, retry\"}";

/// The answer to a connection beyond its address's share.
const ADDRESS_FULL: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
retry-after: 10\r\ncontent-length: 63\r\nconnection: close\r\n\r\n\
{\"detail\":\"Too many open connections from your address, retry\"}";

/// Refused connections that may be held at once while their answer is read.
const LINGERING_REFUSALS: usize = 256;

/// Open connections per counted client address.
#[derive(Debug, Default)]
struct AddressCounts(Mutex<HashMap<IpAddr, u32>>);

/// One counted connection of an address; dropping it (with the connection) frees the place.
#[derive(Debug)]
pub struct AddressPermit {
    counts: Arc<AddressCounts>,
    address: IpAddr,
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts.0);
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

impl AddressCounts {
    fn admit(self: &Arc<Self>, address: IpAddr, cap: u32) -> Option<AddressPermit> {
        let mut counts = lock(&self.0);
        let count = counts.entry(address).or_insert(0);
        if cap != 0 && *count >= cap {
            return None;
        }
        *count += 1;
        Some(AddressPermit {
            counts: Arc::clone(self),
            address,
        })
    }

    fn open(&self, address: IpAddr) -> u32 {
        lock(&self.0).get(&address).copied().unwrap_or(0)
    }
}

/// A TCP listener that gives each client address a bounded share of connections and keeps one
/// descriptor in reserve for the moment all others are in use. Its connections come as
/// [`EdgeStream`]s carrying the limits' timeouts.
#[derive(Debug)]
pub struct EdgeListener {
    inner: TcpListener,
    limits: ConnectionLimits,
    trusted: Vec<IpNet>,
    counts: Arc<AddressCounts>,
    reserve: Option<std::fs::File>,
    at_limit: bool,
    /// Refused connections being answered at once (at most [`LINGERING_REFUSALS`]).
    lingering: Arc<tokio::sync::Semaphore>,
}

impl EdgeListener {
    /// Wraps `inner` with `limits`; connections from `trusted_proxies` are not counted (the
    /// proxy speaks for many clients and enforces its own limits).
    pub fn new(inner: TcpListener, limits: ConnectionLimits, trusted_proxies: Vec<IpNet>) -> Self {
        Self {
            inner,
            limits,
            trusted: trusted_proxies,
            counts: Arc::default(),
            reserve: open_reserve(),
            at_limit: false,
            lingering: Arc::new(tokio::sync::Semaphore::new(LINGERING_REFUSALS)),
        }
    }

    /// Wraps `inner` with the limits and trusted proxies of `config`.
    pub fn from_config(inner: TcpListener, config: &crate::Config) -> Self {
        Self::new(
            inner,
            config.network.connections.clone(),
            config.network.trusted_proxies.clone(),
        )
    }

    /// The limits its connections are held to.
    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// How many connections `ip`'s address holds open now.
    pub fn open_from(&self, ip: IpAddr) -> u32 {
        self.counts.open(counted_address(ip))
    }

    /// The next connection within the limits. One beyond its address's share is answered 429
    /// and closed; one that arrives while the process is out of descriptors is answered 503 and
    /// closed with the reserve's descriptor. Neither touches any other connection.
    pub async fn accept(&mut self) -> (EdgeStream, SocketAddr) {
        loop {
            let (stream, peer) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(e) if out_of_descriptors(&e) => {
                    self.refuse_one().await;
                    continue;
                }
                Err(e) if connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if self.at_limit {
                self.at_limit = false;
                tracing::info!("descriptors are available again; accepting connections");
            }
            if self.reserve.is_none() {
                self.reserve = open_reserve();
            }
            let permit = if self.trusted.iter().any(|net| net.contains(peer.ip())) {
                None
            } else {
                match self
                    .counts
                    .admit(counted_address(peer.ip()), self.limits.per_address)
                {
                    Some(permit) => Some(permit),
                    None => {
                        self.refuse_over_share(stream, peer);
                        continue;
                    }
                }
            };
            let _ = stream.set_nodelay(true);
            return (EdgeStream::new(stream, permit, &self.limits), peer);
        }
    }

    /// Answers a connection beyond its address's share without holding up the listener: a few
    /// refusals at a time (bounded, so refusals cannot hoard descriptors) read the client's
    /// request head for up to a second, answer 429 and close (an answer sent before the
    /// request would confuse an HTTP client, and one closed with the request unread would be
    /// reset before it is read); beyond those, the connection is closed at once.
    fn refuse_over_share(&self, stream: TcpStream, peer: SocketAddr) {
        if let Ok(lingering) = Arc::clone(&self.lingering).try_acquire_owned() {
            tokio::spawn(async move {
                let mut stream = stream;
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                })
                .await;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    stream.write_all(ADDRESS_FULL).await?;
                    stream.shutdown().await
                })
                .await;
                drop(lingering);
            });
        }
        crate::client_log::client_warn!(
            client = %counted_address(peer.ip()),
            per_address = self.limits.per_address,
            "a connection beyond its address's share was refused"
        );
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

fn open_reserve() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete_answer(bytes: &[u8], status: &str, detail: &str) {
        let text = std::str::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["detail"], detail);
    }

    #[test]
    fn the_refusals_are_complete_http_answers() {
        complete_answer(AT_LIMIT, "503", "Server at its connection limit, retry");
        complete_answer(
            ADDRESS_FULL,
            "429",
            "Too many open connections from your address, retry",
        );
    }

    #[test]
    fn an_address_holds_its_share_and_gets_it_back() {
        let counts = Arc::new(AddressCounts::default());
        let a = counted_address("2001:db8::1".parse().unwrap());
        let same_64 = counted_address("2001:db8::ffff".parse().unwrap());
        let first = counts.admit(a, 2).unwrap();
        let _second = counts.admit(same_64, 2).unwrap();
        assert!(counts.admit(a, 2).is_none(), "a /64 is one address");
        assert!(counts.admit("192.0.2.1".parse().unwrap(), 2).is_some());
        drop(first);
        assert_eq!(counts.open(a), 1);
        assert!(counts.admit(a, 2).is_some());
        assert!(counts.admit(a, 0).is_some(), "0 = unlimited");
    }

    #[tokio::test]
    async fn connections_beyond_the_share_are_answered_429_and_others_served() {
        let limits = ConnectionLimits {
            per_address: 2,
            ..ConnectionLimits::default()
        };
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        let mut listener = EdgeListener::new(inner, limits, Vec::new());
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            for _ in 0..3 {
                held.push(listener.accept().await);
            }
            (listener, held)
        });
        let mut ours = Vec::new();
        for _ in 0..2 {
            ours.push(TcpStream::connect(addr).await.unwrap());
        }
        let mut over = TcpStream::connect(addr).await.unwrap();
        // A request sent before the refusal does not hide the answer.
        over.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        over.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 429 "));
        // Another address is served while the first is at its share.
        let other = tokio::net::TcpSocket::new_v4().unwrap();
        other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let _other = other.connect(addr).await.unwrap();
        let (listener, held) = server.await.unwrap();
        assert_eq!(held[2].1.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(listener.open_from("127.0.0.1".parse().unwrap()), 2);
        drop(held);
        assert_eq!(listener.open_from("127.0.0.1".parse().unwrap()), 0);
    }
}
