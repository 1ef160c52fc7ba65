//! The invite-only site in axum: HashPass's whole system (the race at `/`, the admin console at
//! `/admin`, the API under `/api`) with the site's own `/join` page and its `/signup`, `/login`
//! and `/me` endpoints beside it.

use std::path::Path;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hashpass::HashPass;
use serde::Serialize;

use super::{JOIN_HTML, JOIN_JS, Site, SiteError, parse_form};

/// The site's app: HashPass and the site's own routes, all under HashPass's security headers.
pub fn app(site: Site, hashpass: HashPass, static_dir: &Path) -> Router {
    let signup = {
        let site = site.clone();
        move |body: Bytes| async move {
            let result = match parse_form(&body) {
                Ok(form) => site.sign_up(form).await,
                Err(e) => Err(e),
            };
            answer(result, StatusCode::CREATED)
        }
    };
    let login = {
        let site = site.clone();
        move |body: Bytes| async move {
            let result = match parse_form(&body) {
                Ok(form) => site.log_in(form).await,
                Err(e) => Err(e),
            };
            answer(result, StatusCode::OK)
        }
    };
    let me = move |headers: HeaderMap| async move {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        answer(site.me(authorization).await, StatusCode::OK)
    };
    let own = Router::new()
        .route("/join", get(|| async { Html(JOIN_HTML) }))
        .route(
            "/join.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], JOIN_JS) }),
        )
        .route("/signup", post(signup))
        .route("/login", post(login))
        .route("/me", get(me));
    let own = hashpass_axum::with_security_headers(hashpass.clone(), own);
    crate::standalone_app(hashpass, static_dir).merge(own)
}

/// `ok` with the value as JSON, or the error's status and JSON body.
fn answer<T: Serialize>(result: Result<T, SiteError>, ok: StatusCode) -> Response {
    match result {
        Ok(value) => (ok, axum::Json(value)).into_response(),
        Err(e) => {
            let mut response = (e.status(), axum::Json(e.body())).into_response();
            if e.wants_bearer() {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            response
        }
    }
}
