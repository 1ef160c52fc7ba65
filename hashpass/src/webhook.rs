//! Telling the host site about every invite (docs/protocol.md#webhook): one JSON POST per
//! attempt, with the invite code as idempotency key, an optional bearer token and signatures
//! (one of them timestamped, so a receiver can refuse replays). Retries are the
//! [outbox](crate::outbox)'s, never on the winner's path.

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::outbox::Delivery;

/// The webhook body: exactly `{"visitor_id", "invite_code"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WebhookEvent {
    /// The winner's device fingerprint.
    pub visitor_id: String,
    /// The invite code in text form.
    pub invite_code: String,
}

/// One attempt failed: what it saw (a status, a network error, a timeout).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WebhookError(pub String);

/// Delivers invite notices, one attempt per call; the [outbox](crate::outbox) retries.
#[async_trait]
pub trait WebhookSink: Send + Sync + 'static {
    /// Makes one attempt at `delivery` (its `attempts` counts this one).
    async fn deliver(&self, delivery: &Delivery) -> Result<(), WebhookError>;
}

/// HTTP POST delivery: any 2xx is success; 5 s timeout per attempt (docs/protocol.md#webhook).
pub struct HttpWebhook {
    url: String,
    token: Option<String>,
    secret: Option<String>,
    client: reqwest::Client,
    timeout: Duration,
}

impl std::fmt::Debug for HttpWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWebhook")
            .field("url", &crate::config::redact_url(&self.url))
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The webhook `config` describes: [`HttpWebhook`] to its URL, with its token and signing
/// secret when set, or `None` when no URL is configured.
pub fn from_config(
    config: &crate::config::WebhookConfig,
) -> Option<std::sync::Arc<dyn WebhookSink>> {
    let url = config.url.as_ref()?;
    let mut hook = HttpWebhook::new(url.expose());
    if let Some(token) = &config.token {
        hook = hook.with_token(token.expose());
    }
    if let Some(secret) = &config.secret {
        hook = hook.with_secret(secret.expose());
    }
    Some(std::sync::Arc::new(hook))
}

/// The header carrying the idempotency key (the invite code).
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// The header numbering the attempt (1 for the first).
pub const ATTEMPT_HEADER: &str = "X-HashPass-Delivery-Attempt";
/// The header of the body's signature, [`signature`] (no timestamp: kept for the original's
/// receivers).
pub const SIGNATURE_HEADER: &str = "X-HashPass-Signature";
/// The header of the timestamped signature, [`timestamped_signature`].
pub const TIMESTAMPED_SIGNATURE_HEADER: &str = "X-HashPass-Timestamped-Signature";

impl HttpWebhook {
    /// POSTs to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            secret: None,
            client: reqwest::Client::new(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Signs each body with `secret` ([`SIGNATURE_HEADER`], [`TIMESTAMPED_SIGNATURE_HEADER`]).
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// The timeout of each attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret, &[body])))
}

/// `t=<timestamp>,sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`: the signature
/// covers when it was made, so a receiver can refuse a replayed delivery.
pub fn timestamped_signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let mac = mac(secret, &[t.as_bytes(), b".", body]);
    format!("t={t},sha256={}", hex::encode(mac))
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Why a receiver refuses a delivery's [`TIMESTAMPED_SIGNATURE_HEADER`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `t=<digits>,sha256=<64 hex digits>`.
    #[error("malformed signature header")]
    Malformed,
    /// The HMAC does not match the body and timestamp.
    #[error("signature does not match")]
    Mismatch,
    /// Signed more than the tolerance away from now: a replay, or a clock far off.
    #[error("signed {age} s from now, more than the {tolerance} s allowed")]
    Stale {
        /// Seconds between the timestamp and now.
        age: u64,
        /// Seconds allowed.
        tolerance: u64,
    },
}

/// What a receiver checks (docs/protocol.md#webhook): `header` is a valid timestamped signature
/// of `body` under `secret`, made within `tolerance` seconds of `now` (unix seconds). Returns
/// the timestamp.
pub fn verify_timestamped_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: u64,
    tolerance: u64,
) -> Result<u64, SignatureError> {
    let (t, hex_mac) = header
        .trim()
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",sha256="))
        .ok_or(SignatureError::Malformed)?;
    let timestamp: u64 = t.parse().map_err(|_| SignatureError::Malformed)?;
    let claimed = hex::decode(hex_mac).map_err(|_| SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&claimed)
        .map_err(|_| SignatureError::Mismatch)?;
    let age = now.abs_diff(timestamp);
    if age > tolerance {
        return Err(SignatureError::Stale { age, tolerance });
    }
    Ok(timestamp)
}

#[async_trait]
impl WebhookSink for HttpWebhook {
    async fn deliver(&self, delivery: &Delivery) -> Result<(), WebhookError> {
        let body = serde_json::to_vec(&delivery.event).expect("a webhook event serialises");
        let mut request = self
            .client
            .post(&self.url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_KEY, delivery.key())
            .header(ATTEMPT_HEADER, delivery.attempts.max(1).to_string());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(secret) = &self.secret {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            request = request
                .header(SIGNATURE_HEADER, signature(secret.as_bytes(), &body))
                .header(
                    TIMESTAMPED_SIGNATURE_HEADER,
                    timestamped_signature(secret.as_bytes(), now, &body),
                );
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| WebhookError(e.without_url().to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(WebhookError(format!("HTTP {}", response.status().as_u16())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_http::{dead_url, stub};

    fn delivery() -> Delivery {
        let mut delivery = Delivery::new(
            WebhookEvent {
                visitor_id: "v1".into(),
                invite_code: "HASHPASS-TEST".into(),
            },
            0.0,
        );
        delivery.attempts = 2;
        delivery
    }

    #[tokio::test]
    async fn delivers_body_token_key_and_signatures() {
        let server = stub(vec![(204, "")]).await;
        HttpWebhook::new(&server.url)
            .with_token("tok")
            .with_secret("shh")
            .deliver(&delivery())
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
        assert_eq!(r.header("idempotency-key"), Some("HASHPASS-TEST"));
        assert_eq!(r.header("x-hashpass-delivery-attempt"), Some("2"));
        assert_eq!(
            r.header("x-hashpass-signature").unwrap(),
            signature(b"shh", &r.body)
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = r.header("x-hashpass-timestamped-signature").unwrap();
        let t = verify_timestamped_signature(b"shh", header, &r.body, now, 60).unwrap();
        assert!(now.abs_diff(t) <= 5);
    }

    #[tokio::test]
    async fn a_failed_attempt_says_what_it_saw() {
        let server = stub(vec![(503, "{}")]).await;
        let err = HttpWebhook::new(&server.url)
            .deliver(&delivery())
            .await
            .unwrap_err();
        assert_eq!(err, WebhookError("HTTP 503".into()));
        {
            let requests = server.requests.lock().unwrap();
            assert_eq!(requests[0].header("authorization"), None);
            assert_eq!(requests[0].header("x-hashpass-signature"), None);
        }
        assert!(
            HttpWebhook::new(dead_url().await)
                .deliver(&delivery())
                .await
                .is_err()
        );
    }

    #[test]
    fn signatures_are_hex_hmacs() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // HMAC-SHA256("Jefe", "0.what do ya want for nothing?"), computed independently.
        assert_eq!(
            timestamped_signature(b"Jefe", 0, b"what do ya want for nothing?"),
            "t=0,sha256=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
        );
        let debug = format!(
            "{:?}",
            HttpWebhook::new("http://x/secret-path")
                .with_token("tok")
                .with_secret("shh")
        );
        assert!(
            !debug.contains("shh") && !debug.contains("secret-path") && !debug.contains("tok\"")
        );
    }

    #[test]
    fn a_replayed_or_forged_delivery_is_refused() {
        let body = br#"{"visitor_id":"v","invite_code":"C"}"#;
        let header = timestamped_signature(b"key", 1_000, body);
        assert_eq!(
            verify_timestamped_signature(b"key", &header, body, 1_100, 300),
            Ok(1_000)
        );
        assert_eq!(
            verify_timestamped_signature(b"key", &header, body, 2_000, 300),
            Err(SignatureError::Stale {
                age: 1_000,
                tolerance: 300
            })
        );
        assert_eq!(
            verify_timestamped_signature(b"other", &header, body, 1_000, 300),
            Err(SignatureError::Mismatch)
        );
        let moved = header.replace("t=1000", "t=1900");
        assert_eq!(
            verify_timestamped_signature(b"key", &moved, body, 1_900, 300),
            Err(SignatureError::Mismatch)
        );
        for bad in ["", "sha256=00", "t=x,sha256=00", "t=1,sha256=zz"] {
            assert_eq!(
                verify_timestamped_signature(b"key", bad, body, 1, 300),
                Err(SignatureError::Malformed)
            );
        }
    }
}
