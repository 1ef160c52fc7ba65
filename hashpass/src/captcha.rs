//! The captcha checked when a player first connects (docs/protocol.md#captcha): Cloudflare
//! Turnstile in production (siteverify URL configurable, so tests point it at a local stub),
//! and a fully offline provider for test mode.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

/// Cloudflare's always-pass test site key, published in test mode (docs/protocol.md#captcha-configuration).
pub const TEST_SITE_KEY: &str = "1x00000000000000000000AA";
/// Cloudflare's published Turnstile test site keys (always passes, always fails, invisible
/// pass and fail, forced interactive challenge): the only site keys test mode accepts beside it.
pub const TEST_SITE_KEYS: [&str; 5] = [
    TEST_SITE_KEY,
    "2x00000000000000000000AB",
    "1x00000000000000000000BB",
    "2x00000000000000000000BB",
    "3x00000000000000000000FF",
];
/// Cloudflare's published Turnstile test secret keys (always passes, always fails, "token
/// already spent"): the only secret keys test mode accepts beside it.
pub const TEST_SECRET_KEYS: [&str; 3] = [
    "1x0000000000000000000000000000000AA",
    "2x0000000000000000000000000000000AA",
    "3x0000000000000000000000000000000AA",
];
/// Cloudflare's siteverify endpoint.
pub const TURNSTILE_SITEVERIFY_URL: &str =
    "https://challenges.cloudflare.com/turnstile/v0/siteverify";
/// Where the Turnstile widget script comes from (allowed by the CSP only when Turnstile is on).
pub const TURNSTILE_ORIGIN: &str = "https://challenges.cloudflare.com";

/// A refused captcha; the text is what the original reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CaptchaError(pub String);

/// Checks captcha tokens.
#[async_trait]
pub trait CaptchaProvider: Send + Sync + 'static {
    /// Accepts or refuses `token` from `remote_ip`.
    async fn verify(&self, token: &str, remote_ip: IpAddr) -> Result<(), CaptchaError>;
    /// The public site key the browser widget needs.
    fn site_key(&self) -> &str;
    /// Whether this is the offline test provider.
    fn test_mode(&self) -> bool;
    /// The origin the widget script loads from, for the CSP (`None`: no external script).
    fn script_origin(&self) -> Option<&str>;
}

/// Test mode (docs/protocol.md#captcha): offline, any non-empty token passes.
#[derive(Debug, Default, Clone, Copy)]
pub struct TestCaptcha;

#[async_trait]
impl CaptchaProvider for TestCaptcha {
    async fn verify(&self, token: &str, _remote_ip: IpAddr) -> Result<(), CaptchaError> {
        if token.is_empty() {
            Err(CaptchaError(
                "Turnstile verification failed: missing-input-response".into(),
            ))
        } else {
            Ok(())
        }
    }

    fn site_key(&self) -> &str {
        TEST_SITE_KEY
    }

    fn test_mode(&self) -> bool {
        true
    }

    fn script_origin(&self) -> Option<&str> {
        None
    }
}

/// The captcha `config` describes: Turnstile with its key pair, or the offline [`TestCaptcha`]
/// in test mode or when no key pair is configured (with a warning either way: any token passes).
pub fn from_config(config: &crate::config::CaptchaConfig) -> std::sync::Arc<dyn CaptchaProvider> {
    match (&config.site_key, &config.secret_key) {
        (Some(site), Some(secret)) if !config.test_mode => {
            let mut turnstile = TurnstileCaptcha::new(site.clone(), secret.expose());
            if let Some(url) = &config.siteverify_url {
                turnstile = turnstile.with_siteverify_url(url.clone());
            }
            std::sync::Arc::new(turnstile)
        }
        _ => {
            if config.test_mode {
                tracing::warn!(
                    "TURNSTILE_TEST_MODE is on: the offline test captcha lets any non-empty token pass"
                );
            } else {
                tracing::warn!("no Turnstile keys configured: using the offline test captcha");
            }
            std::sync::Arc::new(TestCaptcha)
        }
    }
}

/// Cloudflare Turnstile over HTTPS (rustls).
pub struct TurnstileCaptcha {
    site_key: String,
    secret_key: String,
    siteverify_url: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for TurnstileCaptcha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnstileCaptcha")
            .field("site_key", &self.site_key)
            .field("siteverify_url", &self.siteverify_url)
            .finish_non_exhaustive()
    }
}

impl TurnstileCaptcha {
    /// Turnstile with these keys, posting to Cloudflare's siteverify with a 10 s timeout.
    pub fn new(site_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            site_key: site_key.into(),
            secret_key: secret_key.into(),
            siteverify_url: TURNSTILE_SITEVERIFY_URL.into(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Posts to another siteverify URL (a local stub in tests).
    pub fn with_siteverify_url(mut self, url: impl Into<String>) -> Self {
        self.siteverify_url = url.into();
        self
    }
}

#[async_trait]
impl CaptchaProvider for TurnstileCaptcha {
    async fn verify(&self, token: &str, remote_ip: IpAddr) -> Result<(), CaptchaError> {
        if token.is_empty() {
            return Err(CaptchaError(
                "Turnstile verification failed: missing-input-response".into(),
            ));
        }
        let body = json!({ "secret": self.secret_key, "response": token, "remoteip": remote_ip.to_string() });
        let response = self
            .client
            .post(&self.siteverify_url)
            .json(&body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| CaptchaError(format!("Turnstile API error: {e}")))?;
        let answer: Value = response
            .json()
            .await
            .map_err(|e| CaptchaError(format!("Turnstile verification error: {e}")))?;
        if answer.get("success") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        let codes: Vec<&str> = answer
            .get("error-codes")
            .and_then(Value::as_array)
            .map(|codes| codes.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        Err(CaptchaError(format!(
            "Turnstile verification failed: {}",
            codes.join(", ")
        )))
    }

    fn site_key(&self) -> &str {
        &self.site_key
    }

    fn test_mode(&self) -> bool {
        false
    }

    fn script_origin(&self) -> Option<&str> {
        Some(TURNSTILE_ORIGIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_http::{dead_url, stub};

    fn ip() -> IpAddr {
        "203.0.113.7".parse().unwrap()
    }

    #[tokio::test]
    async fn test_mode_is_offline() {
        assert!(TestCaptcha.verify("anything", ip()).await.is_ok());
        assert!(TestCaptcha.verify("", ip()).await.is_err());
        assert_eq!(TestCaptcha.site_key(), TEST_SITE_KEY);
        assert!(TestCaptcha.test_mode() && TestCaptcha.script_origin().is_none());
    }

    #[tokio::test]
    async fn turnstile_against_a_local_stub() {
        let server = stub(vec![
            (200, r#"{"success": true}"#),
            (200, r#"{"success": false, "error-codes": ["invalid-input-response", "timeout-or-duplicate"]}"#),
            (200, "not json"),
            (500, r#"{"success": true}"#),
        ])
        .await;
        let t = TurnstileCaptcha::new("site", "s3cret").with_siteverify_url(&server.url);
        assert!(t.verify("tok", ip()).await.is_ok());
        let sent: Value = serde_json::from_slice(&server.requests.lock().unwrap()[0].body).unwrap();
        assert_eq!(
            sent,
            json!({"secret": "s3cret", "response": "tok", "remoteip": "203.0.113.7"})
        );
        assert_eq!(
            t.verify("tok", ip()).await.unwrap_err().0,
            "Turnstile verification failed: invalid-input-response, timeout-or-duplicate"
        );
        assert!(
            t.verify("tok", ip())
                .await
                .unwrap_err()
                .0
                .starts_with("Turnstile verification error: ")
        );
        assert!(
            t.verify("tok", ip())
                .await
                .unwrap_err()
                .0
                .starts_with("Turnstile API error: ")
        );
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(t.script_origin(), Some(TURNSTILE_ORIGIN));
    }

    #[tokio::test]
    async fn unreachable_siteverify_is_an_api_error() {
        let t = TurnstileCaptcha::new("site", "secret").with_siteverify_url(dead_url().await);
        assert!(
            t.verify("tok", ip())
                .await
                .unwrap_err()
                .0
                .starts_with("Turnstile API error: ")
        );
        assert!(t.verify("", ip()).await.is_err());
    }
}
