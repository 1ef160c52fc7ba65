#![doc = include_str!("../README.md")]

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, any, get, on};
use futures_util::{SinkExt, StreamExt, future};
use hashpass::adapter::{
    ADMIN_WS_PATH, ApiRequest, ApiResponse, ENDPOINTS, Endpoint, PLAYER_WS_PATH, WsIncoming,
    WsOutgoing,
};
use hashpass::{ApiError, HashPass};
use http::header::{CONTENT_TYPE, HeaderValue};

mod serve;
pub use serve::serve;

/// The core, so a host needs this one dependency: `hashpass_axum::hashpass::{Config, HashPass}`.
pub use hashpass;

/// Largest WebSocket frame read from a client: large enough that the core sees (and answers)
/// an oversize message, small enough to bound memory.
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Initial read buffer per socket (grows for a larger frame): idle sockets stay small.
const READ_BUFFER_BYTES: usize = 256;
/// Unsent bytes a socket may hold before sends fail and the core closes it as too slow.
const MAX_UNSENT_BYTES: usize = 256 * 1024;

/// The per-socket limits every HashPass socket gets.
fn limits(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_UNSENT_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
}

/// Every HashPass route — public and admin endpoints, both WebSockets, the JSON 404 for unknown
/// `/api/...` paths and (with the `ui` feature) the miner page at `/`, the admin console at
/// `/admin` and their files under `/static/` — with the security headers, as a router for any
/// host state `S`: mount it anywhere. `nest_service("/invite", router(hp))` answers `/invite`
/// and `/invite/`; `Router::<AppState>::new().nest("/invite", router(hp))` works too, except that
/// axum's `nest` leaves `/invite/` (the prefix with its slash) to the host's fallback.
pub fn router<S>(hashpass: HashPass) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let unknown = |State(hp): State<HashPass>, peer: Peer, req: Request| async move {
        let (parts, _) = req.into_parts();
        respond(hp.unknown_api_path(api_request(peer.0, &parts, &[])))
    };
    let all = endpoints(None, Router::new()).route("/api/{*rest}", any(unknown));
    with_security_headers(hashpass, pages(all))
}

/// The public routes: health, captcha config, trace, puzzle, verify, submit, metrics, the
/// OpenAPI document and the player WebSocket (no pages).
pub fn public_router<S>(hashpass: HashPass) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    with_security_headers(hashpass, endpoints(Some(false), Router::new()))
}

/// The admin routes (`/api/admin/...`) and the admin WebSocket (no pages).
pub fn admin_router<S>(hashpass: HashPass) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    with_security_headers(hashpass, endpoints(Some(true), Router::new()))
}

/// Adds the HTTP endpoints and the WebSocket of one side (`Some(admin)`) or of both (`None`).
fn endpoints(admin: Option<bool>, mut router: Router<HashPass>) -> Router<HashPass> {
    let wanted = |is_admin: bool| admin.is_none_or(|a| a == is_admin);
    for row in ENDPOINTS
        .iter()
        .filter(|row| wanted(row.endpoint.is_admin()))
    {
        let filter = MethodFilter::try_from(row.method.clone())
            .expect("the endpoint table uses standard methods");
        let endpoint = row.endpoint;
        let answer = move |State(hp): State<HashPass>, peer: Peer, req: Request| {
            handle(hp, endpoint, peer, req)
        };
        let wrong_method = |State(hp): State<HashPass>, peer: Peer, req: Request| async move {
            let (parts, _) = req.into_parts();
            respond(hp.method_not_allowed(api_request(peer.0, &parts, &[])))
        };
        router = router.route(row.path, on(filter, answer).fallback(wrong_method));
    }
    if wanted(false) {
        router = router.route(PLAYER_WS_PATH, get(player_socket));
    }
    if wanted(true) {
        router = router.route(ADMIN_WS_PATH, get(admin_socket));
    }
    router
}

/// The miner page at `/`, the admin console at `/admin` and their files under `/static/`.
#[cfg(feature = "ui")]
fn pages(router: Router<HashPass>) -> Router<HashPass> {
    use axum::extract::{OriginalUri, Path};
    use hashpass::adapter::ui::{self, Page};
    let page = |which: Page| {
        move |uri: OriginalUri, headers: http::HeaderMap| async move {
            ui_response(ui::page(
                which,
                uri.path(),
                headers.get(http::header::IF_NONE_MATCH),
            ))
        }
    };
    let file = |Path(path): Path<String>, headers: http::HeaderMap| async move {
        ui_response(ui::file(&path, headers.get(http::header::IF_NONE_MATCH)))
    };
    router
        .route("/", get(page(Page::Miner)))
        .route("/admin", get(page(Page::Admin)))
        .route("/static/{*path}", get(file))
}

/// Without the `ui` feature: no pages.
#[cfg(not(feature = "ui"))]
fn pages(router: Router<HashPass>) -> Router<HashPass> {
    router
}

#[cfg(feature = "ui")]
fn ui_response(answer: hashpass::adapter::ui::UiResponse) -> Response {
    let body = match answer.body {
        std::borrow::Cow::Borrowed(bytes) => Body::from(bytes),
        std::borrow::Cow::Owned(bytes) => Body::from(bytes),
    };
    let mut response = Response::new(body);
    *response.status_mut() = answer.status;
    response.headers_mut().extend(answer.headers);
    response
}

/// Adds the security headers to every response of `router` and binds its state: for an app
/// that serves its own pages beside HashPass and wants them under the same policy.
pub fn with_security_headers<S>(hashpass: HashPass, router: Router<HashPass>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let headers = hashpass.security_headers();
    router
        .layer(axum::middleware::map_response(
            move |mut response: Response| {
                let headers = headers.clone();
                async move {
                    for (name, value) in headers {
                        response.headers_mut().entry(name).or_insert(value);
                    }
                    response
                }
            },
        ))
        .with_state(hashpass)
}

/// What to add when the client's address is missing.
const ADD_CONNECT_INFO: &str =
    "serve the app with `into_make_service_with_connect_info::<SocketAddr>()`";

/// The TCP peer's IP, from [`ConnectInfo`]. Without it the request is refused with a 500 that
/// says how to serve the app: HashPass never treats every client as one address.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(addr)) => Ok(Peer(addr.ip())),
            None => Err(respond(hashpass::adapter::missing_peer_address(
                ADD_CONNECT_INFO,
            ))),
        }
    }
}

fn api_request<'a>(peer: IpAddr, parts: &'a Parts, body: &'a [u8]) -> ApiRequest<'a> {
    ApiRequest {
        peer,
        headers: &parts.headers,
        query: parts.uri.query(),
        body,
    }
}

async fn handle(hp: HashPass, endpoint: Endpoint, peer: Peer, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let config = hp.config();
    let bytes = match hashpass::edge::read_body(
        body.into_data_stream(),
        hashpass::edge::content_length(&parts.headers),
        config.limits.max_body_bytes,
        config.network.connections.body_read_timeout,
    )
    .await
    {
        Ok(bytes) => bytes,
        Err(refusal) => {
            let close = refusal.header();
            let mut response = respond(refusal.error.into());
            response.headers_mut().extend(close);
            return response;
        }
    };
    respond(
        hp.handle(endpoint, api_request(peer.0, &parts, &bytes))
            .await,
    )
}

fn respond(response: ApiResponse) -> Response {
    let extra = response.extra_headers();
    let (status, content_type, body) = response.into_parts();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.extend(extra.into_iter().map(|(name, value)| (Some(name), value)));
    response
}

fn incoming(message: Message) -> WsIncoming {
    match message {
        Message::Text(text) => WsIncoming::Text(text.to_string()),
        Message::Binary(_) => WsIncoming::Binary,
        Message::Ping(_) | Message::Pong(_) => WsIncoming::Control,
        Message::Close(_) => WsIncoming::Close,
    }
}

fn outgoing(frame: WsOutgoing) -> Message {
    match frame {
        WsOutgoing::Text(text) => Message::Text(text.as_ref().into()),
        WsOutgoing::Close { code, reason } => Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })),
    }
}

/// The socket as the core's frame stream + sink.
fn frames(
    socket: WebSocket,
) -> impl futures_util::Stream<Item = Result<WsIncoming, axum::Error>>
+ futures_util::Sink<WsOutgoing, Error = axum::Error>
+ Unpin
+ Send {
    socket
        .map(|frame| frame.map(incoming))
        .with(|frame| future::ready(Ok::<_, axum::Error>(outgoing(frame))))
}

type Upgrade = Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>;

/// Answers a WebSocket route: 400 if the request is not an upgrade, the core's refusal (403,
/// 429, 503) if `admit` refuses, else the upgrade with `run` driving the socket.
async fn upgrade_if_admitted<A, F, R>(upgrade: Upgrade, admit: A, run: R) -> Response
where
    A: Future<Output = Result<F, ApiError>>,
    F: Send + 'static,
    R: FnOnce(F, WebSocket) -> future::BoxFuture<'static, ()> + Send + 'static,
{
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return respond(
                ApiError::bad_request(format!("WebSocket upgrade expected: {rejection}")).into(),
            );
        }
    };
    match admit.await {
        Ok(admitted) => limits(upgrade)
            .on_upgrade(move |socket| run(admitted, socket))
            .into_response(),
        Err(refusal) => respond(refusal.into()),
    }
}

async fn player_socket(
    State(hp): State<HashPass>,
    peer: Peer,
    parts: Parts,
    upgrade: Upgrade,
) -> Response {
    let admit = hp.admit_player(peer.0, &parts.headers, parts.uri.query());
    let runner = hp.clone();
    let run = move |admission, socket| -> future::BoxFuture<'static, ()> {
        Box::pin(runner.run_player(admission, frames(socket)))
    };
    upgrade_if_admitted(upgrade, admit, run).await
}

async fn admin_socket(
    State(hp): State<HashPass>,
    peer: Peer,
    parts: Parts,
    upgrade: Upgrade,
) -> Response {
    let admit = hp.admit_admin(peer.0, &parts.headers, parts.uri.query());
    let runner = hp.clone();
    let run = move |(), socket| -> future::BoxFuture<'static, ()> {
        Box::pin(runner.run_admin(frames(socket)))
    };
    upgrade_if_admitted(upgrade, admit, run).await
}

/// The header a host site's sign-up form sends the invite code in.
pub const INVITE_HEADER: &str = "x-invite-code";

/// An extractor that admits a request only with a valid, unredeemed invite code in the
/// `X-Invite-Code` header; otherwise it answers the gate's distinct 4xx (malformed 400, bad
/// signature 403, expired/revoked 410, already used 409) as JSON. The app state must provide an
/// [`InviteGate`](hashpass::InviteGate) through `FromRef`. It checks; redeem with the gate once
/// the account exists.
///
/// ```
/// use axum::extract::{FromRef, FromRequestParts, State};
/// use axum::{Json, Router, http::StatusCode, routing::post};
/// use hashpass_axum::ValidInvite;
/// use hashpass_axum::hashpass::{Config, HashPass, InviteGate};
///
/// #[derive(Clone)]
/// struct Site {
///     gate: InviteGate,
/// }
///
/// impl FromRef<Site> for InviteGate {
///     fn from_ref(site: &Site) -> InviteGate {
///         site.gate.clone()
///     }
/// }
///
/// async fn sign_up(State(site): State<Site>, invite: ValidInvite) -> (StatusCode, Json<String>) {
///     let user_id = "new-account-id"; // create the account here
///     match site.gate.redeem(&invite.code, user_id).await {
///         Ok(_) => (StatusCode::CREATED, Json(user_id.to_string())),
///         // Two sign-ups raced for the code: only one wins it.
///         Err(refusal) => (refusal.status(), Json(refusal.to_string())),
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hashpass = HashPass::builder(Config::default().with_turnstile_test_mode(true))
///     .build()
///     .await?;
/// let site = Site { gate: hashpass.gate() };
/// let _app: Router = Router::new()
///     .route("/signup", post(sign_up))
///     .nest("/invite", hashpass_axum::router(hashpass.clone()))
///     .with_state(site.clone());
///
/// // What the extractor does with a request's headers:
/// let code = hashpass.invites().issue().code;
/// let request = |code: &str| {
///     let request = axum::http::Request::builder().header("x-invite-code", code);
///     request.body(()).unwrap().into_parts().0
/// };
/// let admitted = ValidInvite::from_request_parts(&mut request(&code), &site).await;
/// assert_eq!(admitted.unwrap().code, code);
/// let refused = ValidInvite::from_request_parts(&mut request("garbage"), &site).await;
/// assert_eq!(refused.unwrap_err().status(), StatusCode::BAD_REQUEST);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ValidInvite {
    /// The verified code.
    pub invite: hashpass::invite::VerifiedInvite,
    /// The code as sent (to redeem it).
    pub code: String,
}

impl<S> FromRequestParts<S> for ValidInvite
where
    S: Send + Sync,
    hashpass::gate::InviteGate: axum::extract::FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let gate = <hashpass::gate::InviteGate as axum::extract::FromRef<S>>::from_ref(state);
        let code = parts
            .headers
            .get(INVITE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        match gate.check(&code).await {
            Ok(invite) => Ok(ValidInvite { invite, code }),
            Err(rejection) => Err(respond(ApiError::from(rejection).into())),
        }
    }
}
