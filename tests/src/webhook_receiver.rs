//! A local webhook receiver: a real HTTP server on 127.0.0.1 that records every delivery and
//! answers with the status the test sets; it can go down (its port refuses connections) and
//! come back on the same port.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Headers, names lowercase.
    pub headers: HashMap<String, String>,
    /// The raw body.
    pub body: String,
    /// What the receiver answered.
    pub status: u16,
}

impl Delivery {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body's invite code.
    pub fn invite_code(&self) -> String {
        let body: serde_json::Value = serde_json::from_str(&self.body).expect("a JSON body");
        body["invite_code"]
            .as_str()
            .expect("invite_code")
            .to_string()
    }
}

#[derive(Debug, Clone, Default)]
struct Shared {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    status: Arc<AtomicU16>,
}

/// The receiver; stops when dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    addr: SocketAddr,
    shared: Shared,
    task: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl WebhookReceiver {
    /// Starts on a free port, answering 204.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let shared = Shared::default();
        shared.status.store(204, Ordering::SeqCst);
        let mut receiver = Self {
            addr: listener.local_addr().expect("addr"),
            shared,
            task: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(self.shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        self.task = Some((stop, task));
    }

    /// The URL to configure as `WEBHOOK_URL`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers every later delivery with `status`.
    pub fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Goes down: its connections close and the port refuses new ones until
    /// [`WebhookReceiver::come_back`].
    pub async fn go_down(&mut self) {
        if let Some((stop, task)) = self.task.take() {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Listens on the same port again.
    pub async fn come_back(&mut self) {
        for _ in 0..100 {
            if let Ok(listener) = tokio::net::TcpListener::bind(self.addr).await {
                self.serve(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("could not listen on {} again", self.addr);
    }

    /// Every delivery so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap().clone()
    }

    /// The invite codes of the deliveries it accepted (2xx), each once.
    pub fn accepted_codes(&self) -> std::collections::BTreeSet<String> {
        self.deliveries()
            .iter()
            .filter(|d| (200..300).contains(&d.status))
            .map(Delivery::invite_code)
            .collect()
    }

    /// Waits up to `wait` until `done` holds for the deliveries; whether it did.
    pub async fn wait_until(&self, wait: Duration, done: impl Fn(&[Delivery]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if done(&self.deliveries()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some((_, task)) = self.task.take() {
            task.abort();
        }
    }
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = shared.status.load(Ordering::SeqCst);
    shared.deliveries.lock().unwrap().push(Delivery {
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
