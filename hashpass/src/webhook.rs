//! Telling the host site about every invite (docs/protocol.md#webhook): a JSON POST with an optional
//! bearer token and body signature, retried with back-off, never on the winner's path (the
//! caller spawns it).

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

/// The webhook body: exactly `{"visitor_id", "invite_code"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookEvent {
    /// The winner's device fingerprint.
    pub visitor_id: String,
    /// The invite code in text form.
    pub invite_code: String,
}

/// Every attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("webhook not delivered after {attempts} attempts: {last_error}")]
pub struct WebhookError {
    /// Attempts made.
    pub attempts: usize,
    /// What the last attempt saw.
    pub last_error: String,
}

/// Delivers invite notifications.
#[async_trait]
pub trait WebhookSink: Send + Sync + 'static {
    /// Delivers one event (with retries); the caller spawns it.
    async fn deliver(&self, event: &WebhookEvent) -> Result<(), WebhookError>;
}

/// No webhook configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoWebhook;

#[async_trait]
impl WebhookSink for NoWebhook {
    async fn deliver(&self, _event: &WebhookEvent) -> Result<(), WebhookError> {
        Ok(())
    }
}

/// HTTP POST delivery: any 2xx is success; 3 attempts with 1 s and 2 s back-off, 5 s timeout each.
pub struct HttpWebhook {
    url: String,
    token: Option<String>,
    secret: Option<String>,
    backoff: Vec<Duration>,
    client: reqwest::Client,
    timeout: Duration,
}

impl std::fmt::Debug for HttpWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWebhook")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// The webhook `config` describes: [`HttpWebhook`] to its URL, with its token and signing
/// secret when set, or [`NoWebhook`] when no URL is configured.
pub fn from_config(config: &crate::config::WebhookConfig) -> std::sync::Arc<dyn WebhookSink> {
    let Some(url) = &config.url else {
        return std::sync::Arc::new(NoWebhook);
    };
    let mut hook = HttpWebhook::new(url.expose());
    if let Some(token) = &config.token {
        hook = hook.with_token(token.expose());
    }
    if let Some(secret) = &config.secret {
        hook = hook.with_secret(secret.expose());
    }
    std::sync::Arc::new(hook)
}

impl HttpWebhook {
    /// POSTs to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            secret: None,
            backoff: vec![Duration::from_secs(1), Duration::from_secs(2)],
            client: reqwest::Client::new(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Signs each body: `X-HashPass-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// The waits between attempts (attempts = waits + 1).
    pub fn with_backoff(mut self, backoff: Vec<Duration>) -> Self {
        self.backoff = backoff;
        self
    }

    /// The timeout of each attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn attempt(&self, body: &[u8]) -> Result<(), String> {
        let mut request = self
            .client
            .post(&self.url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(secret) = &self.secret {
            request = request.header("X-HashPass-Signature", signature(secret.as_bytes(), body));
        }
        let response = request
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", response.status().as_u16()))
        }
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[async_trait]
impl WebhookSink for HttpWebhook {
    async fn deliver(&self, event: &WebhookEvent) -> Result<(), WebhookError> {
        let body = serde_json::to_vec(event).expect("a webhook event serialises");
        let attempts = self.backoff.len() + 1;
        let mut last_error = String::new();
        for attempt in 0..attempts {
            match self.attempt(&body).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(attempt = attempt + 1, of = attempts, error = %e, "webhook attempt failed");
                    last_error = e;
                }
            }
            if let Some(wait) = self.backoff.get(attempt) {
                tokio::time::sleep(*wait).await;
            }
        }
        Err(WebhookError {
            attempts,
            last_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_http::{dead_url, stub};

    fn event() -> WebhookEvent {
        WebhookEvent {
            visitor_id: "v1".into(),
            invite_code: "HASHPASS-TEST".into(),
        }
    }

    fn quick(url: &str) -> HttpWebhook {
        HttpWebhook::new(url)
            .with_backoff(vec![Duration::from_millis(10), Duration::from_millis(20)])
    }

    #[tokio::test]
    async fn delivers_body_token_and_signature() {
        let server = stub(vec![(204, "")]).await;
        quick(&server.url)
            .with_token("tok")
            .with_secret("shh")
            .deliver(&event())
            .await
            .unwrap();
        let requests = server.requests.lock().unwrap();
        assert_eq!(requests.len(), 1);
        let r = &requests[0];
        assert_eq!(
            r.body,
            br#"{"visitor_id":"v1","invite_code":"HASHPASS-TEST"}"#
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("authorization"), Some("Bearer tok"));
        assert_eq!(
            r.header("x-hashpass-signature").unwrap(),
            signature(b"shh", &r.body)
        );
    }

    #[tokio::test]
    async fn retries_after_a_failure() {
        let server = stub(vec![(500, "{}"), (200, "{}")]).await;
        quick(&server.url).deliver(&event()).await.unwrap();
        let requests = server.requests.lock().unwrap();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].header("authorization"), None);
        assert_eq!(requests[0].header("x-hashpass-signature"), None);
    }

    #[tokio::test]
    async fn gives_up_after_three_attempts() {
        let server = stub(vec![(503, "{}")]).await;
        let err = quick(&server.url).deliver(&event()).await.unwrap_err();
        assert_eq!((err.attempts, err.last_error.as_str()), (3, "HTTP 503"));
        assert_eq!(server.requests.lock().unwrap().len(), 3);
        let err = quick(&dead_url().await)
            .deliver(&event())
            .await
            .unwrap_err();
        assert_eq!(err.attempts, 3);
    }

    #[test]
    fn signature_is_hex_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(
            !format!(
                "{:?}",
                HttpWebhook::new("http://x")
                    .with_token("tok")
                    .with_secret("shh")
            )
            .contains("shh")
        );
    }
}
