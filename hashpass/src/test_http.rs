//! A tiny HTTP/1.1 server on 127.0.0.1 for tests of outgoing calls (captcha siteverify,
//! webhooks): it records each request and answers from a script of (status, body) pairs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running stub; it stops with the test's runtime.
pub(crate) struct StubServer {
    pub(crate) url: String,
    pub(crate) requests: Arc<Mutex<Vec<Recorded>>>,
}

/// Starts a stub that answers the n-th request with `script[n]` (the last entry repeats).
pub(crate) async fn stub(script: Vec<(u16, &'static str)>) -> StubServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&requests);
    tokio::spawn(async move {
        let mut served = 0usize;
        while let Ok((stream, _)) = listener.accept().await {
            let (status, body) = script[served.min(script.len() - 1)];
            served += 1;
            let recorded = Arc::clone(&recorded);
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                let mut headers = Vec::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 || line.trim().is_empty()
                    {
                        break;
                    }
                    if let Some((n, v)) = line.trim_end().split_once(':') {
                        headers.push((n.trim().to_string(), v.trim().to_string()));
                    }
                }
                let length = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut request_body = vec![0u8; length];
                let _ = reader.read_exact(&mut request_body).await;
                recorded.lock().unwrap().push(Recorded {
                    headers,
                    body: request_body,
                });
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut stream = reader.into_inner();
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    StubServer {
        url: format!("http://{addr}/"),
        requests,
    }
}

/// A URL on 127.0.0.1 where nothing listens.
pub(crate) async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/")
}
