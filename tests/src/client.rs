//! Clients for the tests: HTTP from a chosen 127.x.y.z source address, and a player that also
//! holds a WebSocket from that address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hashpass::puzzle::Argon2Params;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A browser-like User-Agent that passes the filter.
pub const BROWSER_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";

/// A WebSocket client stream.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The `n`-th distinct client address: 127.0.x.y (never 127.0.0.1).
pub fn client_ip(n: u32) -> IpAddr {
    let n = n + 2;
    IpAddr::from([127, 0, (n / 250) as u8, (n % 250 + 2) as u8])
}

/// An HTTP response, parsed.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body text.
    pub text: String,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The `detail` text of an error body.
    pub fn detail(&self) -> String {
        self.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A server the clients can reach: an in-process [`crate::server::TestServer`], or a server
/// process ([`crate::process::ServerProcess`]).
pub trait Reachable {
    /// Where it listens.
    fn addr(&self) -> SocketAddr;
}

/// A server known only by its address (nginx in front, a process started by hand).
impl Reachable for SocketAddr {
    fn addr(&self) -> SocketAddr {
        *self
    }
}

impl Reachable for crate::server::TestServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// HTTP from one source address.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
    /// The source address.
    pub ip: IpAddr,
}

impl Http {
    /// A client of `server` bound to `ip`, giving up on an answer after 30 s.
    pub fn new(server: &impl Reachable, ip: IpAddr) -> Self {
        Self::with_timeout(server, ip, Duration::from_secs(30))
    }

    /// A client of `server` bound to `ip`, giving up on an answer after `timeout`.
    pub fn with_timeout(server: &impl Reachable, ip: IpAddr, timeout: Duration) -> Self {
        Self {
            client: reqwest::Client::builder()
                .local_address(ip)
                .user_agent(BROWSER_UA)
                .timeout(timeout)
                .build()
                .expect("client"),
            base: format!("http://{}", server.addr()),
            ip,
        }
    }

    /// Sends a request with extra headers and a raw body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        self.try_send(method, path, headers, body)
            .await
            .expect("request reaches the server")
    }

    /// [`Http::send`], or the error when the server cannot be reached (it was killed).
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Result<Answer, reqwest::Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        Ok(Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await?,
        })
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], Vec::new()).await
    }

    /// POST a JSON body with an optional bearer token.
    pub async fn post(&self, path: &str, body: &Value, bearer: Option<&str>) -> Answer {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        self.send("POST", path, &headers, body.to_string()).await
    }

    /// GET an admin endpoint with the test admin token.
    pub async fn admin_get(&self, path: &str) -> Answer {
        let auth = format!("Bearer {}", crate::server::ADMIN_TOKEN);
        self.send("GET", path, &[("authorization", &auth)], Vec::new())
            .await
    }

    /// POST an admin endpoint with the test admin token.
    pub async fn admin_post(&self, path: &str, body: &Value) -> Answer {
        self.post(path, body, Some(crate::server::ADMIN_TOKEN))
            .await
    }
}

/// Opens a WebSocket to `path` (with query) from `ip`. `Err(status)` when the handshake is refused.
pub async fn open_ws(server: &impl Reachable, ip: IpAddr, path_and_query: &str) -> Result<Ws, u16> {
    open_ws_with(server, ip, path_and_query, None).await
}

/// [`open_ws`] with a chosen TCP receive buffer (a small one makes a slow reader).
pub async fn open_ws_with(
    server: &impl Reachable,
    ip: IpAddr,
    path_and_query: &str,
    receive_buffer: Option<u32>,
) -> Result<Ws, u16> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size).expect("receive buffer");
    }
    socket
        .bind(SocketAddr::new(ip, 0))
        .expect("bind client address");
    let stream = socket.connect(server.addr()).await.expect("connect");
    let mut request = format!("ws://{}{path_and_query}", server.addr())
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("user-agent", BROWSER_UA.parse().expect("header"));
    match tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("WebSocket handshake failed: {e}"),
    }
}

/// What a socket saw next.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A JSON text message.
    Json(Value),
    /// A close frame with code and reason.
    Closed(u16, String),
    /// Nothing within the timeout.
    Silent,
}

/// Reads the next text or close frame (pings skipped).
pub async fn next_frame(ws: &mut Ws, wait: Duration) -> Frame {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Frame::Silent,
            Ok(None) | Ok(Some(Err(_))) => return Frame::Closed(1006, String::new()),
            Ok(Some(Ok(Message::Text(text)))) => {
                return Frame::Json(
                    serde_json::from_str(&text).unwrap_or(Value::String(text.to_string())),
                );
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return match frame {
                    Some(f) => Frame::Closed(f.code.into(), f.reason.to_string()),
                    None => Frame::Closed(1005, String::new()),
                };
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Reads messages until one of type `ty` (others skipped); panics after `wait`.
pub async fn expect_type(ws: &mut Ws, ty: &str, wait: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_frame(ws, left).await {
            Frame::Json(v) if v["type"] == ty => return v,
            Frame::Json(_) => continue,
            other => panic!("expected {ty}, got {other:?}"),
        }
    }
}

/// Reads until the socket closes; returns the close code and reason.
pub async fn expect_close(ws: &mut Ws, wait: Duration) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_frame(ws, left).await {
            Frame::Json(_) => continue,
            Frame::Closed(code, reason) => return (code, reason),
            Frame::Silent => panic!("socket still open after {wait:?}"),
        }
    }
}

/// The smallest nonce whose hash has `zeros` leading zero bits, and the hash in hex.
pub fn solve_for(
    params: Argon2Params,
    seed: &str,
    visitor: &str,
    ip: IpAddr,
    zeros: u32,
) -> (u64, String) {
    let (nonce, hash) = hashpass::verify::solve(params, seed, visitor, &ip.to_string(), zeros, 0)
        .expect("a solution");
    (nonce, hex::encode(hash))
}

/// A browser: HTTP and a player socket from one address, with its session.
#[derive(Debug)]
pub struct Player {
    /// HTTP from the player's address.
    pub http: Http,
    /// The player socket.
    pub ws: Ws,
    /// The session token.
    pub token: String,
    /// The device fingerprint.
    pub visitor: String,
}

impl Player {
    /// Connects with a fresh captcha token (test mode accepts any) and reads SESSION_TOKEN.
    pub async fn connect(server: &impl Reachable, ip: IpAddr) -> Self {
        let mut ws = open_ws(server, ip, "/api/ws?token=captcha-token-of-a-browser")
            .await
            .expect("handshake accepted");
        let token = expect_type(&mut ws, "SESSION_TOKEN", Duration::from_secs(5)).await["token"]
            .as_str()
            .expect("token")
            .to_string();
        Self {
            http: Http::new(server, ip),
            ws,
            token,
            visitor: format!("visitor_{}", ip.to_string().replace('.', "_")),
        }
    }

    /// `POST /api/puzzle`.
    pub async fn puzzle(&self) -> Answer {
        self.http
            .post(
                "/api/puzzle",
                &json!({ "visitorId": self.visitor }),
                Some(&self.token),
            )
            .await
    }

    /// `GET /api/dev/trace`.
    pub async fn trace(&self) -> String {
        self.http.get("/api/dev/trace").await.text
    }

    /// A verify body for `puzzle` solved by this player (difficulty of the puzzle).
    pub async fn solution(&self, puzzle: &Value) -> Value {
        let params = Argon2Params::new(
            puzzle["time_cost"].as_u64().unwrap() as u32,
            puzzle["memory_cost"].as_u64().unwrap() as u32,
            puzzle["parallelism"].as_u64().unwrap() as u32,
        );
        let seed = puzzle["seed"].as_str().unwrap();
        let (nonce, hash) = solve_for(
            params,
            seed,
            &self.visitor,
            self.http.ip,
            puzzle["difficulty"].as_u64().unwrap() as u32,
        );
        json!({
            "visitorId": self.visitor,
            "nonce": nonce,
            "submittedSeed": seed,
            "traceData": self.trace().await,
            "hash": hash,
        })
    }

    /// `POST /api/verify`.
    pub async fn verify(&self, body: &Value) -> Answer {
        self.http.post("/api/verify", body, Some(&self.token)).await
    }

    /// Sends a text frame.
    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }
}
