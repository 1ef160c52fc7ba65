#![doc = include_str!("../README.md")]

use std::net::IpAddr;

use futures_util::{SinkExt, StreamExt, future};
use hashpass::adapter::{
    ADMIN_WS_PATH, ApiRequest, ApiResponse, ENDPOINTS, Endpoint, PLAYER_WS_PATH, WsIncoming,
    WsOutgoing,
};
use hashpass::{ApiError, HashPass};
use poem::endpoint::make;
use poem::http::header::CONTENT_TYPE;
use poem::web::websocket::{Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::{EndpointExt, FromRequest, IntoEndpoint, IntoResponse, Request, Response, Route};

mod serve;
pub use serve::serve;

/// The core, so a host needs this one dependency: `hashpass_poem::hashpass::{Config, HashPass}`.
pub use hashpass;

/// Largest WebSocket frame read from a client (the core answers oversize messages itself).
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Initial read buffer per socket: idle sockets stay small.
const READ_BUFFER_BYTES: usize = 256;
/// Unsent bytes a socket may hold before sends fail and the core closes it as too slow.
const MAX_UNSENT_BYTES: usize = 256 * 1024;

/// Every HashPass route — public and admin endpoints, both WebSockets, the JSON 404 for unknown
/// `/api/...` paths and (with the `ui` feature) the miner page at `/`, the admin console at
/// `/admin` and their files under `/static/` — with the security headers, as one endpoint to nest
/// into any [`Route`]: `Route::new().nest("/invite", hashpass_poem::route(hp))`.
pub fn route(hashpass: HashPass) -> impl poem::Endpoint<Output = Response> {
    with_security_headers(hashpass.clone(), add_routes(&hashpass, Route::new()))
}

/// Adds every HashPass route to `route` (no headers added): for an app that serves its own
/// pages beside HashPass at the same level. Wrap the result with [`with_security_headers`].
pub fn add_routes(hashpass: &HashPass, route: Route) -> Route {
    let hp = hashpass.clone();
    let unknown = make(move |req: Request| {
        let hp = hp.clone();
        async move {
            match api_request(&req, &[]) {
                Ok(api) => respond(hp.unknown_api_path(api)),
                Err(refusal) => respond(refusal),
            }
        }
    });
    pages(endpoints(hashpass, None, route).at("/api/*rest", unknown))
}

/// The public routes: health, captcha config, trace, puzzle, verify, submit, metrics, the
/// OpenAPI document and the player WebSocket (no pages).
pub fn public_route(hashpass: HashPass) -> impl poem::Endpoint<Output = Response> {
    with_security_headers(
        hashpass.clone(),
        endpoints(&hashpass, Some(false), Route::new()),
    )
}

/// The admin routes (`/api/admin/...`) and the admin WebSocket (no pages).
pub fn admin_route(hashpass: HashPass) -> impl poem::Endpoint<Output = Response> {
    with_security_headers(
        hashpass.clone(),
        endpoints(&hashpass, Some(true), Route::new()),
    )
}

/// Adds the HTTP endpoints and WebSockets of one side (`Some(admin)`) or both (`None`).
fn endpoints(hashpass: &HashPass, admin: Option<bool>, mut route: Route) -> Route {
    let wanted = |is_admin: bool| admin.is_none_or(|a| a == is_admin);
    for row in ENDPOINTS
        .iter()
        .filter(|row| wanted(row.endpoint.is_admin()))
    {
        let (hp, method, path, endpoint) =
            (hashpass.clone(), row.method.clone(), row.path, row.endpoint);
        route = route.at(
            path,
            make(move |req: Request| {
                let (hp, method) = (hp.clone(), method.clone());
                async move {
                    if req.method() == method {
                        handle(hp, endpoint, req).await
                    } else {
                        match api_request(&req, &[]) {
                            Ok(api) => respond(hp.method_not_allowed(api)),
                            Err(refusal) => respond(refusal),
                        }
                    }
                }
            }),
        );
    }
    if wanted(false) {
        let hp = hashpass.clone();
        route = route.at(
            PLAYER_WS_PATH,
            make(move |req: Request| player_socket(hp.clone(), req)),
        );
    }
    if wanted(true) {
        let hp = hashpass.clone();
        route = route.at(
            ADMIN_WS_PATH,
            make(move |req: Request| admin_socket(hp.clone(), req)),
        );
    }
    route
}

/// The miner page at `/`, the admin console at `/admin` and their files under `/static/`.
#[cfg(feature = "ui")]
fn pages(route: Route) -> Route {
    use hashpass::adapter::ui::{self, Page};
    let page = |which: Page| {
        make(move |req: Request| async move {
            ui_response(ui::page(
                which,
                req.original_uri().path(),
                req.headers().get(poem::http::header::IF_NONE_MATCH),
            ))
        })
    };
    let file = make(|req: Request| async move {
        let path = req.uri().path().trim_start_matches('/').to_string();
        ui_response(ui::file(
            &path,
            req.headers().get(poem::http::header::IF_NONE_MATCH),
        ))
    });
    route
        .at("/", poem::get(page(Page::Miner)))
        .at("/admin", poem::get(page(Page::Admin)))
        .nest("/static", poem::get(file))
}

/// Without the `ui` feature: no pages.
#[cfg(not(feature = "ui"))]
fn pages(route: Route) -> Route {
    route
}

#[cfg(feature = "ui")]
fn ui_response(answer: hashpass::adapter::ui::UiResponse) -> Response {
    let mut builder = Response::builder().status(answer.status);
    for (name, value) in answer.headers {
        builder = builder.header(name, value);
    }
    match answer.body {
        std::borrow::Cow::Borrowed(bytes) => builder.body(bytes),
        std::borrow::Cow::Owned(bytes) => builder.body(bytes),
    }
}

/// Adds the security headers to every response of `route`.
pub fn with_security_headers(
    hashpass: HashPass,
    route: Route,
) -> impl poem::Endpoint<Output = Response> {
    let headers = hashpass.security_headers();
    route
        .after(move |result| {
            let headers = headers.clone();
            async move {
                let mut response = match result {
                    Ok(response) => response,
                    Err(error) => error.into_response(),
                };
                for (name, value) in headers {
                    response.headers_mut().entry(name).or_insert(value);
                }
                Ok(response)
            }
        })
        .map_to_response()
        .into_endpoint()
}

/// The TCP peer's IP, or the 500 that says what to change when the listener gives none (a
/// Unix socket, say): HashPass never treats every client as one address.
fn peer(req: &Request) -> Result<IpAddr, ApiResponse> {
    match req.remote_addr().as_socket_addr() {
        Some(addr) => Ok(addr.ip()),
        None => Err(hashpass::adapter::missing_peer_address(
            "serve the app on a TCP listener, or behind a trusted proxy that connects over TCP",
        )),
    }
}

fn api_request<'a>(req: &'a Request, body: &'a [u8]) -> Result<ApiRequest<'a>, ApiResponse> {
    Ok(ApiRequest {
        peer: peer(req)?,
        headers: req.headers(),
        query: req.uri().query(),
        body,
    })
}

async fn handle(hp: HashPass, endpoint: Endpoint, mut req: Request) -> Response {
    let config = hp.config();
    let announced = hashpass::edge::content_length(req.headers());
    let body = match hashpass::edge::read_body(
        req.take_body().into_bytes_stream(),
        announced,
        config.limits.max_body_bytes,
        config.network.connections.body_read_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(refusal) => {
            let close = refusal.header();
            let mut response = respond(refusal.error.into());
            response.headers_mut().extend(close);
            return response;
        }
    };
    match api_request(&req, &body) {
        Ok(api) => respond(hp.handle(endpoint, api).await),
        Err(refusal) => respond(refusal),
    }
}

fn respond(response: ApiResponse) -> Response {
    let extra = response.extra_headers();
    let (status, content_type, body) = response.into_parts();
    let mut response = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .body(body);
    response.headers_mut().extend(extra);
    response
}

fn incoming(message: Message) -> WsIncoming {
    match message {
        Message::Text(text) => WsIncoming::Text(text),
        Message::Binary(_) => WsIncoming::Binary,
        Message::Ping(_) | Message::Pong(_) => WsIncoming::Control,
        Message::Close(_) => WsIncoming::Close,
    }
}

fn outgoing(frame: WsOutgoing) -> Message {
    match frame {
        WsOutgoing::Text(text) => Message::Text(text.to_string()),
        WsOutgoing::Close { code, reason } => Message::Close(Some((code.into(), reason))),
    }
}

/// The socket as the core's frame stream + sink.
fn frames(
    socket: WebSocketStream,
) -> impl futures_util::Stream<Item = Result<WsIncoming, std::io::Error>>
+ futures_util::Sink<WsOutgoing, Error = std::io::Error>
+ Unpin
+ Send {
    socket
        .map(|frame| frame.map(incoming))
        .with(|frame| future::ready(Ok::<_, std::io::Error>(outgoing(frame))))
}

fn limits() -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = READ_BUFFER_BYTES;
    config.write_buffer_size = 0;
    config.max_write_buffer_size = MAX_UNSENT_BYTES;
    config.max_message_size = Some(MAX_FRAME_BYTES);
    config.max_frame_size = Some(MAX_FRAME_BYTES);
    config
}

fn not_an_upgrade(rejection: impl std::fmt::Display) -> Response {
    respond(ApiError::bad_request(format!("WebSocket upgrade expected: {rejection}")).into())
}

async fn player_socket(hp: HashPass, req: Request) -> Response {
    let peer = match peer(&req) {
        Ok(peer) => peer,
        Err(refusal) => return respond(refusal),
    };
    let upgrade = match WebSocket::from_request_without_body(&req).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return not_an_upgrade(rejection),
    };
    match hp
        .admit_player(peer, req.headers(), req.uri().query())
        .await
    {
        Ok(admission) => upgrade
            .config(limits())
            .on_upgrade(move |socket| hp.run_player(admission, frames(socket)))
            .into_response(),
        Err(refusal) => respond(refusal.into()),
    }
}

async fn admin_socket(hp: HashPass, req: Request) -> Response {
    let peer = match peer(&req) {
        Ok(peer) => peer,
        Err(refusal) => return respond(refusal),
    };
    let upgrade = match WebSocket::from_request_without_body(&req).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return not_an_upgrade(rejection),
    };
    match hp.admit_admin(peer, req.headers(), req.uri().query()).await {
        Ok(()) => upgrade
            .config(limits())
            .on_upgrade(move |socket| hp.run_admin(frames(socket)))
            .into_response(),
        Err(refusal) => respond(refusal.into()),
    }
}

/// The header a host site's sign-up form sends the invite code in.
pub const INVITE_HEADER: &str = "x-invite-code";

/// An extractor that admits a request only with a valid, unredeemed invite code in the
/// `X-Invite-Code` header; otherwise it answers the gate's distinct 4xx as JSON. Add the
/// [`InviteGate`](hashpass::InviteGate) to the route with `.data(gate)`; without it the
/// extractor answers 500 saying so.
///
/// ```
/// use hashpass_poem::ValidInvite;
/// use hashpass_poem::hashpass::{Config, HashPass, InviteGate};
/// use poem::http::StatusCode;
/// use poem::web::{Data, Json};
/// use poem::{EndpointExt, FromRequest, Request, Route, handler, post};
///
/// #[handler]
/// async fn sign_up(gate: Data<&InviteGate>, invite: ValidInvite) -> (StatusCode, Json<String>) {
///     let user_id = "new-account-id"; // create the account here
///     match gate.redeem(&invite.code, user_id).await {
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
/// let _app = Route::new()
///     .at("/signup", post(sign_up))
///     .nest("/invite", hashpass_poem::route(hashpass.clone()))
///     .data(hashpass.gate());
///
/// // What the extractor does with a request's headers:
/// let code = hashpass.invites().issue().code;
/// let request = |code: &str| {
///     Request::builder().header("x-invite-code", code).finish()
/// };
/// let mut with_gate = request(&code);
/// with_gate.extensions_mut().insert(hashpass.gate());
/// let (with_gate, mut body) = with_gate.split();
/// let admitted = ValidInvite::from_request(&with_gate, &mut body).await;
/// assert_eq!(admitted.unwrap().code, code);
/// let mut garbage = request("garbage");
/// garbage.extensions_mut().insert(hashpass.gate());
/// let (garbage, mut body) = garbage.split();
/// let refused = ValidInvite::from_request(&garbage, &mut body).await;
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

impl<'a> FromRequest<'a> for ValidInvite {
    async fn from_request(req: &'a Request, _body: &mut poem::RequestBody) -> poem::Result<Self> {
        let Some(gate) = req.data::<hashpass::gate::InviteGate>() else {
            return Err(poem::Error::from_response(respond(
                hashpass::adapter::missing_setup(
                    "ValidInvite needs the InviteGate: add `.data(hashpass.gate())` to the route",
                ),
            )));
        };
        let code = req
            .headers()
            .get(INVITE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        match gate.check(&code).await {
            Ok(invite) => Ok(ValidInvite { invite, code }),
            Err(rejection) => Err(poem::Error::from_response(respond(
                ApiError::from(rejection).into(),
            ))),
        }
    }
}
