//! The invite-only site in axum: HashPass's whole system (the race at `/`, the admin console at
//! `/admin`, the API under `/api`) with the site's own `/join` page and its `/signup`, `/login`
//! and `/me` endpoints beside it.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hashpass::HashPass;

use super::{Answer, Form, FormRequest, JOIN_CSS, JOIN_HTML, JOIN_JS, Site, SiteError};

/// The site's app: HashPass and the site's own routes, all under HashPass's security headers.
pub fn app(site: Site, hashpass: HashPass) -> Router {
    let limits = hashpass.config().network.connections.clone();
    let form = |form: Form| {
        let (site, limits) = (site.clone(), limits.clone());
        move |request: Request| async move {
            let peer = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip());
            let (parts, body) = request.into_parts();
            // Read as HashPass reads its own bodies: within the body-read time, an oversized one
            // drained before it is refused, so a proxy in front reads the refusal.
            let body = hashpass::edge::read_body(
                body.into_data_stream(),
                hashpass::edge::content_length(&parts.headers),
                super::FORM_LIMIT,
                limits.body_read_timeout,
            )
            .await
            .map_err(|refusal| refusal.error.message().unwrap_or_default().to_string());
            let request = FormRequest {
                peer,
                headers: &parts.headers,
                body: body.as_deref().map_err(Clone::clone),
            };
            respond(site.post(form, request).await)
        }
    };
    let own = Router::new()
        .route("/join", get(|| async { Html(JOIN_HTML) }))
        .route(
            "/join.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], JOIN_JS) }),
        )
        .route(
            "/join.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], JOIN_CSS) }),
        )
        .route("/signup", post(form(Form::SignUp)))
        .route("/login", post(form(Form::LogIn)))
        .route(
            "/me",
            get(move |headers: HeaderMap| async move {
                let authorization = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                respond(site.get_me(authorization).await)
            }),
        );
    let own = hashpass_axum::with_security_headers(hashpass.clone(), own);
    crate::standalone_app(hashpass).merge(own)
}

/// The answer, or the error's status and JSON body (with `WWW-Authenticate` for token errors,
/// `Retry-After` for the refusals that pass with time).
fn respond(result: Result<Answer, SiteError>) -> Response {
    let (status, body) = match &result {
        Ok((status, body)) => (*status, body.clone()),
        Err(e) => (e.status(), e.body()),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Err(e) = &result {
        response.headers_mut().extend(e.headers());
    }
    response
}
