//! The HTTP API without a web framework: one entry point, [`HashPass::handle`], taking an
//! [`Endpoint`] of the endpoint table ([`crate::endpoint`]) and plain request parts and returning
//! a status with a JSON (or text) body. It is the one place typed results and errors of the
//! services become statuses and JSON. Client-IP resolution (docs/protocol.md#client-ip), the User-Agent filter (docs/protocol.md#user-agent-filter), the body limit and the security
//! headers (docs/protocol.md#security-headers) live here too, so adapters only translate types.

use std::net::IpAddr;
use std::sync::Arc;

use http::header::{AUTHORIZATION, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::HashPass;
use crate::admin::{AdminError, AdminErrorKind};
use crate::applog::AppLogQuery;
use crate::audit::LogQuery;
use crate::config::canonical_ip;
use crate::endpoint::{AdminEndpoint, Endpoint, PublicEndpoint};
use crate::error::ApiError;
use crate::request;
use crate::service::{GameError, GameErrorKind};
use crate::util::random_bytes;

/// The parts of an HTTP request the API reads.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    /// The TCP peer.
    pub peer: IpAddr,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The body bytes.
    pub body: &'a [u8],
}

/// A response body.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiBody {
    /// `application/json`.
    Json(Value),
    /// `text/plain; charset=utf-8` (the trace) or Prometheus text.
    Text(String),
}

/// An API response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    /// Status code.
    pub status: StatusCode,
    /// Body.
    pub body: ApiBody,
    /// Seconds after which a retry may succeed, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiResponse {
    /// 200 with a JSON body.
    pub fn ok(value: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: ApiBody::Json(value),
            retry_after: None,
        }
    }

    /// 200 with a text body.
    pub fn text(text: String) -> Self {
        Self {
            status: StatusCode::OK,
            body: ApiBody::Text(text),
            retry_after: None,
        }
    }

    /// The headers the answer carries besides its content type (`Retry-After`).
    pub fn extra_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        self.retry_after
            .map(|seconds| (http::header::RETRY_AFTER, HeaderValue::from(seconds)))
            .into_iter()
            .collect()
    }

    /// The body as bytes and its content type.
    pub fn into_parts(self) -> (StatusCode, &'static str, Vec<u8>) {
        match self.body {
            ApiBody::Json(v) => (self.status, "application/json", v.to_string().into_bytes()),
            ApiBody::Text(t) => (self.status, "text/plain; charset=utf-8", t.into_bytes()),
        }
    }
}

impl From<ApiError> for ApiResponse {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status,
            body: ApiBody::Json(e.body),
            retry_after: e.retry_after,
        }
    }
}

/// Substrings (case-insensitive) that mark a scripted client (docs/protocol.md#user-agent-filter).
const BLOCKED_AGENTS: &[&str] = &[
    "curl",
    "wget",
    "python-requests",
    "python-httpx",
    "python-urllib",
    "httpx",
    "go-http-client",
    "java/",
    "apache-httpclient",
    "postmanruntime",
    "insomnia",
    "httpie",
    "node-fetch",
    "axios",
    "undici",
    "got/",
    "superagent",
    "scrapy",
    "mechanize",
    "aiohttp",
    "bot",
    "crawler",
    "spider",
    "headless",
];

/// docs/protocol.md#user-agent-filter's verdict on a User-Agent header: present, not a known script, starting with `Mozilla/5.0`.
pub(crate) fn user_agent_allowed(user_agent: Option<&HeaderValue>) -> bool {
    let Some(ua) = user_agent
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return false;
    };
    let lower = ua.to_ascii_lowercase();
    ua.starts_with("Mozilla/5.0") && !BLOCKED_AGENTS.iter().any(|bad| lower.contains(bad))
}

/// The query string as decoded pairs.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn query_param<'q>(pairs: &'q [(String, String)], name: &str) -> Option<&'q str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn query_number(
    pairs: &[(String, String)],
    name: &str,
    default: u32,
    lo: u32,
    hi: u32,
) -> Result<u32, ApiError> {
    match query_param(pairs, name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| {
                ApiError::unprocessable(format!("{name} must be an integer between {lo} and {hi}"))
            }),
    }
}

/// Body of `kick` / `unban`.
#[derive(Debug, Default, serde::Deserialize)]
struct IpBody {
    ip: Option<String>,
}

/// Body of the admin's invite endpoints.
#[derive(Debug, Default, serde::Deserialize)]
struct InviteBody {
    invite_code: Option<String>,
    max_uses: Option<i64>,
}

/// The required `invite_code` and the optional `max_uses` of an invite endpoint's body.
fn parse_invite(body: &[u8]) -> Result<(String, Option<i64>), ApiError> {
    let body: InviteBody = request::admin_body(body)?;
    let code = body
        .invite_code
        .ok_or_else(|| ApiError::unprocessable("invite_code is required"))?;
    Ok((code, body.max_uses))
}

fn parse_ip(body: &[u8]) -> Result<IpAddr, ApiError> {
    let body: IpBody = request::admin_body(body)?;
    let text = body
        .ip
        .ok_or_else(|| ApiError::unprocessable("ip is required"))?;
    text.trim()
        .parse::<IpAddr>()
        .map(canonical_ip)
        .map_err(|_| {
            ApiError::unprocessable(format!("{text:?} is not a valid IPv4 or IPv6 address"))
        })
}

/// A required field of an admin body: 422 `<name> is required` without it.
fn required<T>(name: &str, value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::unprocessable(format!("{name} is required")))
}

/// The required `worker_count` of `worker-count`'s body.
fn worker_count(body: &[u8]) -> Result<i64, ApiError> {
    #[derive(Default, serde::Deserialize)]
    struct Body {
        worker_count: Option<i64>,
    }
    let body: Body = request::admin_body(body)?;
    required("worker_count", body.worker_count)
}

/// The required `max_nonce_speed` of `max-nonce-speed`'s body.
fn nonce_speed(body: &[u8]) -> Result<f64, ApiError> {
    #[derive(Default, serde::Deserialize)]
    struct Body {
        max_nonce_speed: Option<f64>,
    }
    let body: Body = request::admin_body(body)?;
    required("max_nonce_speed", body.max_nonce_speed)
}

/// The optional `hmac_secret` of `regenerate-hmac`'s body.
fn hmac_secret(body: &[u8]) -> Result<Option<String>, ApiError> {
    #[derive(Default, serde::Deserialize)]
    struct Body {
        hmac_secret: Option<String>,
    }
    let body: Body = request::admin_body(body)?;
    Ok(body.hmac_secret)
}

/// The query of `GET /api/admin/logs`.
fn log_query(pairs: &[(String, String)]) -> Result<LogQuery, ApiError> {
    let text = |name: &str, default: &str| query_param(pairs, name).unwrap_or(default).to_string();
    Ok(LogQuery {
        page: query_number(pairs, "page", 1, 1, u32::MAX)?,
        per_page: query_number(pairs, "per_page", 50, 1, 200)?,
        search: text("search", ""),
        file: text("file", "verify.jsonl"),
    })
}

/// The query of `GET /api/admin/applogs`.
fn app_log_query(pairs: &[(String, String)]) -> Result<AppLogQuery, ApiError> {
    let text = |name: &str, default: &str| query_param(pairs, name).unwrap_or(default).to_string();
    Ok(AppLogQuery {
        page: query_number(pairs, "page", 1, 1, u32::MAX)?,
        per_page: query_number(pairs, "per_page", 100, 1, 500)?,
        search: text("search", ""),
        file: text("file", "hashpass.log"),
        level: text("level", ""),
    })
}

/// A typed answer as its JSON body (a logged 500 in the case serde could not encode it).
fn json_body(value: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| {
        tracing::error!(error = %e, "could not encode an answer");
        ApiError::detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Could not encode the answer",
        )
    })
}

/// An admin operation's typed answer as its JSON body, or its error as the HTTP answer.
fn answer<T: serde::Serialize>(result: Result<T, AdminError>) -> Result<Value, ApiError> {
    json_body(&result?)
}

/// The one place a [`GameError`] becomes an HTTP answer: its kind's status with
/// `{"detail": ...}`.
impl From<GameError> for ApiError {
    fn from(error: GameError) -> Self {
        let status = match error.kind() {
            GameErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            GameErrorKind::Forbidden => StatusCode::FORBIDDEN,
            GameErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            GameErrorKind::Invalid => StatusCode::BAD_REQUEST,
            GameErrorKind::Conflict => StatusCode::CONFLICT,
            GameErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::detail(status, error.to_string()).with_retry_after(error.retry_after())
    }
}

/// The one place an [`AdminError`] becomes an HTTP answer: its kind's status with
/// `{"detail": ...}`, or the answer a carried invite rejection or service error already has.
impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        let status = match error.kind() {
            AdminErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            AdminErrorKind::Forbidden => StatusCode::FORBIDDEN,
            AdminErrorKind::LockedOut => StatusCode::TOO_MANY_REQUESTS,
            AdminErrorKind::Malformed => StatusCode::BAD_REQUEST,
            AdminErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            // A change the instance's configuration could not keep across a restart conflicts
            // with that configuration, not with the request.
            AdminErrorKind::Conflict | AdminErrorKind::NotDurable => StatusCode::CONFLICT,
            AdminErrorKind::Unavailable => {
                let cause = std::error::Error::source(&error).map(ToString::to_string);
                tracing::error!(error = %error, cause = cause.as_deref().unwrap_or_default(), "admin operation failed: a backend is unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            AdminErrorKind::Invite(rejection) => return rejection.clone().into(),
            AdminErrorKind::Game(error) => return error.clone().into(),
        };
        ApiError::detail(status, error.detail()).with_retry_after(error.retry_after())
    }
}

impl HashPass {
    /// Answers one HTTP request to `endpoint`. Never panics on client input; every refusal is
    /// a 4xx (or a 503 when a backend is down) with a JSON body.
    pub async fn handle(&self, endpoint: Endpoint, req: ApiRequest<'_>) -> ApiResponse {
        match self.dispatch(endpoint, req).await {
            Ok(response) => response,
            Err(error) => error.into(),
        }
    }

    /// The answer for an `/api/...` path that matches no endpoint: the UA filter's 404 first
    /// (it runs before routing, docs/protocol.md#user-agent-filter), else 404 `Not Found`.
    pub fn unknown_api_path(&self, req: ApiRequest<'_>) -> ApiResponse {
        if self.service.config.network.ua_filter && !user_agent_allowed(req.headers.get(USER_AGENT))
        {
            return ApiError::ua_refused().into();
        }
        ApiError::not_found("Not Found").into()
    }

    /// The answer for a known path with the wrong method (the UA filter first, as above).
    pub fn method_not_allowed(&self, req: ApiRequest<'_>) -> ApiResponse {
        if self.service.config.network.ua_filter && !user_agent_allowed(req.headers.get(USER_AGENT))
        {
            return ApiError::ua_refused().into();
        }
        ApiError::detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into()
    }

    async fn dispatch(
        &self,
        endpoint: Endpoint,
        req: ApiRequest<'_>,
    ) -> Result<ApiResponse, ApiError> {
        let config = &self.service.config;
        if endpoint.ua_filtered()
            && config.network.ua_filter
            && !user_agent_allowed(req.headers.get(USER_AGENT))
        {
            crate::client_log::client_warn!(peer = %req.peer, ?endpoint, "request refused by the User-Agent filter");
            return Err(ApiError::ua_refused());
        }
        if req.body.len() > config.limits.max_body_bytes {
            return Err(ApiError::payload_too_large(config.limits.max_body_bytes));
        }
        let ip = config.network.client_ip(req.peer, req.headers);
        let authorization = req.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
        match endpoint {
            Endpoint::Admin(admin) => {
                self.admin.authenticate(ip, authorization).await?;
                self.admin_endpoint(admin, ip, req)
                    .await
                    .map(ApiResponse::ok)
            }
            Endpoint::Public(public) => self.public_endpoint(public, ip, authorization, req).await,
        }
    }

    async fn public_endpoint(
        &self,
        endpoint: PublicEndpoint,
        ip: IpAddr,
        authorization: Option<&[u8]>,
        req: ApiRequest<'_>,
    ) -> Result<ApiResponse, ApiError> {
        let service = &self.service;
        let text = ApiResponse::text;
        let response = match endpoint {
            PublicEndpoint::Health => {
                let state = service.state().await?;
                json!({ "status": "ok", "current_seed": format!("{}...", &state.seed[..8]) })
            }
            PublicEndpoint::Live => json!({ "status": "alive" }),
            PublicEndpoint::Ready => {
                if service.is_draining() {
                    return Err(ApiError::unavailable(
                        "The instance is shutting down: send new visitors elsewhere",
                    ));
                }
                service.state().await?;
                service.seams.sessions.count().await?;
                json!({ "status": "ready" })
            }
            PublicEndpoint::TurnstileConfig => {
                let captcha = &service.seams.captcha;
                json!({ "siteKey": captcha.site_key(), "testMode": captcha.test_mode() })
            }
            PublicEndpoint::DevTrace => return self.dev_trace(ip).map(text),
            PublicEndpoint::Metrics => {
                if !service.config.admin.metrics_public {
                    self.admin.authenticate(ip, authorization).await?;
                }
                return Ok(text(self.admin.metrics_text().await?));
            }
            PublicEndpoint::OpenApi => crate::openapi::document(),
            PublicEndpoint::Puzzle => {
                let (session, body) = self.player_request(ip, authorization, req.body).await?;
                let answer = service
                    .puzzle(&session, &request::puzzle_request(body.as_ref())?)
                    .await?;
                json_body(&answer)?
            }
            PublicEndpoint::Verify => {
                let (session, body) = self.player_request(ip, authorization, req.body).await?;
                let solution = request::solution(body.as_ref())?;
                json!({ "invite_code": service.verify(ip, &session, &solution).await?.invite_code })
            }
            PublicEndpoint::Submit => {
                let (session, body) = self.player_request(ip, authorization, req.body).await?;
                let (solution, zeros) = request::submission(body.as_ref())?;
                json!({ "status": service.submit(ip, &session, &solution, zeros).await? })
            }
        };
        Ok(ApiResponse::ok(response))
    }

    /// A player endpoint's JSON body and session: a syntax error is reported before
    /// authentication, field errors (by the caller) after it.
    async fn player_request(
        &self,
        ip: IpAddr,
        authorization: Option<&[u8]>,
        body: &[u8],
    ) -> Result<(crate::session::Session, Option<Value>), ApiError> {
        let body = request::parse_json(body)?;
        let session = self.service.authenticate(ip, authorization).await?;
        Ok((session, body))
    }

    /// `/api/dev/trace`: served only with the offline captcha or `HASHPASS_DEV_TRACE` (docs/protocol.md#client-ip); reports
    /// the effective IP.
    fn dev_trace(&self, ip: IpAddr) -> Result<String, ApiError> {
        let config = &self.service.config;
        if !(config.captcha.offline() || config.network.dev_trace) {
            return Err(ApiError::not_found("Not Found"));
        }
        Ok(format!(
            "fl=0f0\nh=localhost\nip={ip}\nts={}\nvisit_scheme=http\nuag=Mozilla/5.0\ncolo=DEV\nsliver=none\nhttp=http/1.1\nloc=CN\ntls=off\nsni=off\nwarp=off\ngateway=off\nrbi=off\nkex=none",
            hex::encode(random_bytes::<8>())
        ))
    }

    /// The invite admin endpoints (docs/protocol.md#admin-api): the codes with a history, one
    /// code's state, withdrawing it and changing its uses.
    async fn invite_endpoint(
        &self,
        endpoint: AdminEndpoint,
        pairs: &[(String, String)],
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let admin = &self.admin;
        match endpoint {
            AdminEndpoint::Invites => {
                let page = query_number(pairs, "page", 1, 1, u32::MAX)?;
                let per_page = query_number(pairs, "per_page", 50, 1, 200)?;
                let state = query_param(pairs, "state").unwrap_or("");
                answer(admin.invites(page, per_page, state).await)
            }
            AdminEndpoint::InviteStatus => {
                answer(admin.invite_status(&parse_invite(body)?.0).await)
            }
            AdminEndpoint::InviteRevoke => {
                answer(admin.revoke_invite(&parse_invite(body)?.0).await)
            }
            AdminEndpoint::InviteMaxUses => {
                let (code, max_uses) = parse_invite(body)?;
                let max_uses = required("max_uses", max_uses)?;
                answer(admin.set_invite_max_uses(&code, max_uses).await)
            }
            // Only the four invite endpoints are routed here.
            _ => Err(ApiError::not_found("Not Found")),
        }
    }

    async fn admin_endpoint(
        &self,
        endpoint: AdminEndpoint,
        ip: IpAddr,
        req: ApiRequest<'_>,
    ) -> Result<Value, ApiError> {
        let admin = &self.admin;
        let pairs = query_pairs(req.query);
        let body = req.body;
        tracing::debug!(%ip, ?endpoint, "admin request");
        match endpoint {
            AdminEndpoint::Status => answer(admin.status().await),
            AdminEndpoint::Miners => answer(admin.miners().await),
            AdminEndpoint::Sessions => answer(admin.sessions().await),
            AdminEndpoint::Logs => answer(admin.logs(&log_query(&pairs)?).await),
            AdminEndpoint::LogStats => answer(admin.log_stats().await),
            AdminEndpoint::AppLogs => answer(admin.app_logs(&app_log_query(&pairs)?).await),
            AdminEndpoint::Difficulty => {
                answer(admin.set_difficulty(&request::admin_body(body)?).await)
            }
            AdminEndpoint::TargetTime => {
                answer(admin.set_target_time(&request::admin_body(body)?).await)
            }
            AdminEndpoint::Argon2 => answer(admin.set_argon2(&request::admin_body(body)?).await),
            AdminEndpoint::WorkerCount => answer(admin.set_worker_count(worker_count(body)?).await),
            AdminEndpoint::MaxNonceSpeed => {
                answer(admin.set_max_nonce_speed(nonce_speed(body)?).await)
            }
            AdminEndpoint::ResetPuzzle => answer(admin.reset_puzzle().await),
            AdminEndpoint::KickAll => answer(admin.kick_all().await),
            AdminEndpoint::Kick => answer(admin.kick(parse_ip(body)?).await),
            AdminEndpoint::Unban => answer(admin.unban(parse_ip(body)?).await),
            AdminEndpoint::Blacklist => answer(admin.blacklist().await),
            AdminEndpoint::Invites
            | AdminEndpoint::InviteStatus
            | AdminEndpoint::InviteRevoke
            | AdminEndpoint::InviteMaxUses => self.invite_endpoint(endpoint, &pairs, body).await,
            AdminEndpoint::ClearSessions => answer(admin.clear_sessions().await),
            AdminEndpoint::RegenerateHmac => {
                answer(admin.regenerate_hmac(hmac_secret(body)?.as_deref()).await)
            }
            AdminEndpoint::Webhooks => {
                let limit = query_number(&pairs, "limit", 100, 0, 1000)?;
                answer(admin.webhooks(limit as usize).await)
            }
            AdminEndpoint::WebhooksRetry => answer(admin.retry_webhooks().await),
        }
    }

    /// Admits a player WebSocket before the upgrade (docs/protocol.md#player-socket-admission): `Err` is an HTTP 403 (or 503) to
    /// answer instead of upgrading.
    pub async fn admit_player(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<crate::service::PlayerAdmission, ApiError> {
        let config = &self.service.config;
        let ip = config.network.client_ip(peer, headers);
        let ua_ok = !config.network.ua_filter || user_agent_allowed(headers.get(USER_AGENT));
        let pairs = query_pairs(query);
        self.service
            .admit_player(ip, query_param(&pairs, "token"), ua_ok)
            .await
            .map_err(ApiError::from)
    }

    /// Runs an admitted player socket to its end: messages, events, close codes, slow-client
    /// handling and clean-up (docs/protocol.md#player-websocket). The future owns what it needs
    /// (spawn or box it as it is: wrapping it in another `async` block would store the socket
    /// twice in every connection's state).
    pub fn run_player<S, E>(
        &self,
        admission: crate::service::PlayerAdmission,
        socket: S,
    ) -> impl std::future::Future<Output = ()> + Send + 'static + use<S, E>
    where
        S: futures_util::Stream<Item = Result<crate::ws::WsIncoming, E>>
            + futures_util::Sink<crate::ws::WsOutgoing>
            + Unpin
            + Send
            + 'static,
        E: Send + 'static,
    {
        crate::ws::run_player(Arc::clone(&self.service), admission, socket)
    }

    /// Checks the admin WebSocket's `?token=` before the upgrade (docs/protocol.md#admin-websocket with docs/protocol.md#admin-api's counting).
    pub async fn admit_admin(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(), ApiError> {
        let ip = self.service.config.network.client_ip(peer, headers);
        let pairs = query_pairs(query);
        self.admin
            .authenticate_socket(ip, query_param(&pairs, "token"))
            .await
            .map_err(ApiError::from)
    }

    /// Runs an admitted admin socket to its end (docs/protocol.md#admin-websocket); the future
    /// owns what it needs.
    pub fn run_admin<S, E>(
        &self,
        socket: S,
    ) -> impl std::future::Future<Output = ()> + Send + 'static + use<S, E>
    where
        S: futures_util::Stream<Item = Result<crate::ws::WsIncoming, E>>
            + futures_util::Sink<crate::ws::WsOutgoing>
            + Unpin
            + Send
            + 'static,
        E: Send + 'static,
    {
        crate::ws::run_admin(Arc::clone(&self.service), Arc::clone(&self.admin), socket)
    }

    /// Headers every HTTP response carries (docs/protocol.md#security-headers, with its strict CSP; Turnstile's origin is
    /// allowed only when the captcha provider names one).
    pub fn security_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let extra = self
            .service
            .seams
            .captcha
            .script_origin()
            .map(|o| format!(" {o}"))
            .unwrap_or_default();
        let csp = format!(
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{extra}; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; worker-src 'self'; frame-src 'self'{extra}; frame-ancestors 'none'; object-src 'none'; \
             base-uri 'self'; form-action 'self'"
        );
        [
            ("content-security-policy", csp),
            ("x-content-type-options", "nosniff".into()),
            ("x-frame-options", "DENY".into()),
            ("referrer-policy", "strict-origin-when-cross-origin".into()),
            (
                "permissions-policy",
                "camera=(), microphone=(), geolocation=(), payment=()".into(),
            ),
            ("cross-origin-opener-policy", "same-origin".into()),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            Some((
                HeaderName::from_static(name),
                HeaderValue::from_str(&value).ok()?,
            ))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn ua_filter() {
        let ok = |s: &str| user_agent_allowed(Some(&HeaderValue::from_str(s).unwrap()));
        assert!(ok(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120"
        ));
        assert!(!ok("curl/8.0"));
        assert!(!ok("Mozilla/5.0 (compatible; Googlebot/2.1)"));
        assert!(!ok("Mozilla/5.0 HeadlessChrome/120"));
        assert!(!ok("Opera/9.80"));
        assert!(!ok("   "));
        assert!(!user_agent_allowed(None));
        assert!(!user_agent_allowed(Some(
            &HeaderValue::from_bytes(b"Mozilla/5.0 \xff").unwrap()
        )));
    }

    #[test]
    fn client_ip_trusts_only_configured_proxies() {
        let mut config = Config::default();
        let mut headers = HeaderMap::new();
        headers.insert("cf-connecting-ip", HeaderValue::from_static("9.9.9.9"));
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(config.network.client_ip(peer, &headers), peer);
        config.network.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        assert_eq!(
            config.network.client_ip(peer, &headers).to_string(),
            "9.9.9.9"
        );
        headers.insert("cf-connecting-ip", HeaderValue::from_static("junk"));
        assert_eq!(config.network.client_ip(peer, &headers), peer);
        config.network.client_ip_header = "X-Forwarded-For".into();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 2.2.2.2, 127.0.0.5"),
        );
        assert_eq!(
            config.network.client_ip(peer, &headers).to_string(),
            "2.2.2.2"
        );
    }

    #[test]
    fn a_list_header_sent_twice_is_one_list_in_order() {
        let mut config = Config::default();
        config.network.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        config.network.client_ip_header = "X-Forwarded-For".into();
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let resolve = |lines: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for line in lines {
                headers.append("x-forwarded-for", HeaderValue::from_static(line));
            }
            config.network.client_ip(peer, &headers).to_string()
        };
        // The client wrote the first line; the proxy appended the second.
        assert_eq!(resolve(&["6.6.6.6", "203.0.113.9"]), "203.0.113.9");
        assert_eq!(
            resolve(&["6.6.6.6, 203.0.113.9", "127.0.0.7"]),
            "203.0.113.9"
        );
        // A garbled hop stops the walk at the nearest trusted one, never skipping left.
        assert_eq!(resolve(&["6.6.6.6, junk", "127.0.0.7"]), "127.0.0.7");
        assert_eq!(resolve(&["6.6.6.6, junk"]), "127.0.0.1");
        // A proxy that writes the port; a client's non-UTF-8 bytes in its own element only.
        assert_eq!(resolve(&["6.6.6.6", "203.0.113.9:4711"]), "203.0.113.9");
        assert_eq!(resolve(&["[2001:db8::9]:443"]), "2001:db8::9");
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"6.6.6.\xff, 203.0.113.9").unwrap(),
        );
        assert_eq!(
            config.network.client_ip(peer, &headers).to_string(),
            "203.0.113.9"
        );
        // Every hop trusted: the left-most.
        assert_eq!(resolve(&["127.0.0.9, 127.0.0.8"]), "127.0.0.9");
        // A single-value header sent twice is believed in neither line.
        config.network.client_ip_header = "CF-Connecting-IP".into();
        let mut headers = HeaderMap::new();
        headers.append("cf-connecting-ip", HeaderValue::from_static("6.6.6.6"));
        headers.append("cf-connecting-ip", HeaderValue::from_static("9.9.9.9"));
        assert_eq!(config.network.client_ip(peer, &headers), peer);
    }
}
