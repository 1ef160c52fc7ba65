//! A connection held to the edge's timeouts. It follows HTTP/1.1 just enough to know which one
//! applies: while a request head is arriving (`\r\n\r\n` not yet read), the head must be
//! complete within the header-read timeout, counted from the connection's start for its first
//! request and from the first byte for a later one; while a kept-alive connection waits for its
//! next request (after an answer was written) it may stay idle for the idle timeout, and an
//! answer the client stops reading counts as idle too; while a request is being handled no
//! timeout applies (the body read and the handlers bound themselves). Once the server writes
//! `101 Switching Protocols` the connection is a WebSocket and none applies: the socket's own
//! rules take over. A timeout ends the connection with an I/O error, which the HTTP server
//! takes as the connection closing.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::{AddressPermit, ConnectionLimits};

/// The end of a request head.
const HEAD_END: &[u8; 4] = b"\r\n\r\n";

/// An accepted connection: the TCP stream, its place in its address's share (freed when it is
/// dropped) and, until it becomes a WebSocket, its timeouts.
#[derive(Debug)]
pub struct EdgeStream {
    stream: TcpStream,
    _permit: Option<AddressPermit>,
    watch: Option<Box<Watch>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A head is arriving; `matched` bytes of `\r\n\r\n` end what was read so far.
    Head { matched: u8 },
    /// The head is complete; the request is being handled.
    Handling,
    /// An answer was written; waiting for the next request.
    Idle,
}

#[derive(Debug)]
struct Watch {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    phase: Phase,
    /// When the current phase times out (`None` while handling).
    deadline: Option<Instant>,
    /// Armed at or before `deadline`; moved on lazily when it fires early.
    timer: Pin<Box<Sleep>>,
}

impl Watch {
    fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        if let Some(at) = deadline
            && at < self.timer.deadline()
        {
            self.timer.as_mut().reset(at);
        }
    }

    /// Bytes were read: advance the head scan.
    fn on_read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut matched = match self.phase {
            Phase::Handling => return,
            Phase::Idle => {
                // A later request's first byte: its head has the header-read timeout.
                self.set_deadline(Some(after(self.header_read_timeout)));
                0
            }
            Phase::Head { matched } => matched,
        };
        for &byte in bytes {
            matched = if byte == HEAD_END[matched as usize] {
                matched + 1
            } else if byte == b'\r' {
                1
            } else {
                0
            };
            if matched as usize == HEAD_END.len() {
                self.phase = Phase::Handling;
                self.deadline = None;
                return;
            }
        }
        self.phase = Phase::Head { matched };
    }

    /// `written` bytes starting with `first` went out: an answer (or more of one).
    fn on_write(&mut self, first: &[u8]) {
        if first.starts_with(b"HTTP/1.1 100 ") {
            return; // `100 Continue`: the body follows, the request is still being handled.
        }
        self.phase = Phase::Idle;
        self.set_deadline(Some(after(self.idle_timeout)));
    }

    /// Whether the phase's time is up; otherwise arms the timer to wake the task at its end.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            if Instant::now() >= deadline {
                return true;
            }
            self.timer.as_mut().reset(deadline);
        }
    }

    fn timed_out(&self) -> io::Error {
        let what = match self.phase {
            Phase::Idle => "idle connection",
            _ => "request head not received in time",
        };
        io::Error::new(io::ErrorKind::TimedOut, what)
    }
}

/// `timeout` from now, or a year from now for a timeout too long to add (never a panic).
fn after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

impl EdgeStream {
    /// Holds `stream` (and its address `permit`) to `limits`.
    pub fn new(
        stream: TcpStream,
        permit: Option<AddressPermit>,
        limits: &ConnectionLimits,
    ) -> Self {
        let deadline = after(limits.header_read_timeout);
        Self {
            stream,
            _permit: permit,
            watch: Some(Box::new(Watch {
                header_read_timeout: limits.header_read_timeout,
                idle_timeout: limits.idle_timeout,
                phase: Phase::Head { matched: 0 },
                deadline: Some(deadline),
                timer: Box::pin(tokio::time::sleep_until(deadline)),
            })),
        }
    }

    /// The TCP stream.
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }

    /// Whether it became a WebSocket (the timeouts no longer apply).
    pub fn upgraded(&self) -> bool {
        self.watch.is_none()
    }

    fn written(&mut self, first: &[u8]) {
        if first.starts_with(b"HTTP/1.1 101 ") {
            self.watch = None;
        } else if let Some(watch) = &mut self.watch {
            watch.on_write(first);
        }
    }

    /// The timeout error if the phase's time is up while the stream waits.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        let watch = self.watch.as_mut()?;
        watch.expired(cx).then(|| watch.timed_out())
    }
}

impl AsyncRead for EdgeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some(watch) = &mut this.watch {
                    watch.on_read(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.stalled(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for EdgeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 && this.watch.is_some() {
                    this.written(buf);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.stalled(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Pending => {
                return match this.stalled(cx) {
                    Some(e) => Poll::Ready(Err(e)),
                    None => Poll::Pending,
                };
            }
            ready => ready!(ready)?,
        };
        if n > 0 && this.watch.is_some() {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
            this.written(first);
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn limits(head: u64, idle: u64) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(head),
            idle_timeout: Duration::from_millis(idle),
            ..ConnectionLimits::default()
        }
    }

    async fn pair(limits: &ConnectionLimits) -> (EdgeStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (EdgeStream::new(server, None, limits), client)
    }

    async fn read_some(server: &mut EdgeStream) -> io::Result<usize> {
        let mut buf = [0u8; 256];
        server.read(&mut buf).await
    }

    #[tokio::test]
    async fn a_silent_connection_times_out_on_its_head() {
        let (mut server, _client) = pair(&limits(50, 10_000)).await;
        let error = read_some(&mut server).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_half_sent_head_times_out_and_a_whole_one_does_not() {
        let (mut server, mut client) = pair(&limits(80, 10_000)).await;
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        read_some(&mut server).await.unwrap();
        assert_eq!(
            read_some(&mut server).await.unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );

        let (mut server, mut client) = pair(&limits(80, 10_000)).await;
        // The end of the head split across reads still counts.
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r")
            .await
            .unwrap();
        read_some(&mut server).await.unwrap();
        client.write_all(b"\n").await.unwrap();
        read_some(&mut server).await.unwrap();
        assert_eq!(server.watch.as_ref().unwrap().phase, Phase::Handling);
        // Handling: no timeout, however long it takes.
        let waited = tokio::time::timeout(Duration::from_millis(200), read_some(&mut server)).await;
        assert!(waited.is_err(), "still waiting, not timed out");
    }

    #[tokio::test]
    async fn a_kept_alive_connection_has_the_idle_timeout_then_the_head_one() {
        let (mut server, mut client) = pair(&limits(60, 150)).await;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        read_some(&mut server).await.unwrap();
        server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        let start = Instant::now();
        // Idle: longer than the head timeout is fine, the idle one ends it.
        assert_eq!(
            read_some(&mut server).await.unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        assert!(start.elapsed() >= Duration::from_millis(140));

        let (mut server, mut client) = pair(&limits(60, 10_000)).await;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        read_some(&mut server).await.unwrap();
        server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        client.write_all(b"GET /next HTTP/1.1\r\n").await.unwrap();
        read_some(&mut server).await.unwrap();
        // A later head that stops half-way has the head timeout from its first byte.
        let start = Instant::now();
        assert!(read_some(&mut server).await.is_err());
        assert!(start.elapsed() < Duration::from_millis(1_000));
    }

    #[tokio::test]
    async fn a_websocket_has_no_timeouts() {
        let (mut server, mut client) = pair(&limits(50, 50)).await;
        client
            .write_all(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
            .await
            .unwrap();
        read_some(&mut server).await.unwrap();
        server
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
            .await
            .unwrap();
        assert!(server.upgraded());
        let waited = tokio::time::timeout(Duration::from_millis(200), read_some(&mut server)).await;
        assert!(waited.is_err(), "a quiet socket stays open");
        client.write_all(b"frame").await.unwrap();
        assert_eq!(read_some(&mut server).await.unwrap(), 5);
    }
}
