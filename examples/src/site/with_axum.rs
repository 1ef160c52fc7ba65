//! The invite-only site in axum: HashPass's whole system (the race at `/`, the admin console at
//! `/admin`, the API under `/api`) with the site's own `/join` page and its `/signup`, `/login`
//! and `/me` endpoints beside it.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hashpass::HashPass;

use super::{Answer, Form, JOIN_CSS, JOIN_HTML, JOIN_JS, Site, SiteError};

/// The site's app: HashPass and the site's own routes, all under HashPass's security headers.
pub fn app(site: Site, hashpass: HashPass) -> Router {
    let form = |form: Form| {
        let site = site.clone();
        move |body: Body| async move {
            respond(match axum::body::to_bytes(body, super::FORM_LIMIT).await {
                Ok(body) => site.post(form, &body).await,
                Err(e) => Err(SiteError::BadForm(format!(
                    "The form could not be read ({e})"
                ))),
            })
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

/// The answer, or the error's status and JSON body (with `WWW-Authenticate` for token errors).
fn respond(result: Result<Answer, SiteError>) -> Response {
    let (status, body) = match &result {
        Ok((status, body)) => (*status, body.clone()),
        Err(e) => (e.status(), e.body()),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if result.as_ref().is_err_and(SiteError::wants_bearer) {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}
