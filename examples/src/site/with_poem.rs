//! The invite-only site in poem: the twin of [`super::with_axum`], route for route.

use std::path::Path;

use hashpass::HashPass;
use poem::http::{StatusCode, header};
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler, post};
use serde::Serialize;

use super::{JOIN_HTML, JOIN_JS, Site, SiteError, parse_form};

/// The largest form body read.
const FORM_LIMIT: usize = 64 * 1024;

#[handler]
fn join() -> Html<&'static str> {
    Html(JOIN_HTML)
}

#[handler]
fn join_js() -> Response {
    Response::builder()
        .content_type("text/javascript")
        .body(JOIN_JS)
}

/// The site's app: HashPass and the site's own routes, all under HashPass's security headers.
pub fn app(
    site: Site,
    hashpass: HashPass,
    static_dir: &Path,
) -> impl Endpoint<Output = Response> + use<> {
    let own = Route::new()
        .at("/join", get(join))
        .at("/join.js", get(join_js))
        .at(
            "/signup",
            post(poem::endpoint::make({
                let site = site.clone();
                move |request: Request| {
                    let site = site.clone();
                    async move {
                        let result = match read_form(request).await {
                            Ok(form) => site.sign_up(form).await,
                            Err(e) => Err(e),
                        };
                        answer(result, StatusCode::CREATED)
                    }
                }
            })),
        )
        .at(
            "/login",
            post(poem::endpoint::make({
                let site = site.clone();
                move |request: Request| {
                    let site = site.clone();
                    async move {
                        let result = match read_form(request).await {
                            Ok(form) => site.log_in(form).await,
                            Err(e) => Err(e),
                        };
                        answer(result, StatusCode::OK)
                    }
                }
            })),
        )
        .at(
            "/me",
            get(poem::endpoint::make(move |request: Request| {
                let site = site.clone();
                async move {
                    let authorization = request
                        .headers()
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    answer(site.me(authorization).await, StatusCode::OK)
                }
            })),
        );
    crate::standalone_poem_with(hashpass, static_dir, own).map_to_response()
}

async fn read_form<T: serde::de::DeserializeOwned>(request: Request) -> Result<T, SiteError> {
    let body = request
        .into_body()
        .into_bytes_limit(FORM_LIMIT)
        .await
        .map_err(|e| SiteError::BadForm(format!("The form could not be read ({e})")))?;
    parse_form(&body)
}

/// `ok` with the value as JSON, or the error's status and JSON body.
fn answer<T: Serialize + Send>(result: Result<T, SiteError>, ok: StatusCode) -> Response {
    match result {
        Ok(value) => poem::web::Json(value).with_status(ok).into_response(),
        Err(e) => {
            let mut response = poem::web::Json(e.body())
                .with_status(e.status())
                .into_response();
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
