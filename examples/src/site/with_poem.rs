//! The invite-only site in poem: the twin of [`super::with_axum`], route for route.

use hashpass::HashPass;
use poem::http::header;
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler, post};

use super::{Answer, Form, JOIN_CSS, JOIN_HTML, JOIN_JS, Site, SiteError};

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

#[handler]
fn join_css() -> Response {
    Response::builder().content_type("text/css").body(JOIN_CSS)
}

/// The site's app: HashPass and the site's own routes, all under HashPass's security headers.
pub fn app(site: Site, hashpass: HashPass) -> impl Endpoint<Output = Response> + use<> {
    let form = |form: Form| {
        let site = site.clone();
        poem::endpoint::make(move |request: Request| {
            let site = site.clone();
            async move {
                let body = request
                    .into_body()
                    .into_bytes_limit(super::FORM_LIMIT)
                    .await;
                respond(match body {
                    Ok(body) => site.post(form, &body).await,
                    Err(e) => Err(SiteError::BadForm(format!(
                        "The form could not be read ({e})"
                    ))),
                })
            }
        })
    };
    let own = Route::new()
        .at("/join", get(join))
        .at("/join.js", get(join_js))
        .at("/join.css", get(join_css))
        .at("/signup", post(form(Form::SignUp)))
        .at("/login", post(form(Form::LogIn)))
        .at(
            "/me",
            get(poem::endpoint::make(move |request: Request| {
                let site = site.clone();
                async move {
                    let authorization = request
                        .headers()
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    respond(site.get_me(authorization).await)
                }
            })),
        );
    crate::standalone_poem_with(hashpass, own).map_to_response()
}

/// The answer, or the error's status and JSON body (with `WWW-Authenticate` for token errors).
fn respond(result: Result<Answer, SiteError>) -> Response {
    let (status, body) = match &result {
        Ok((status, body)) => (*status, body.clone()),
        Err(e) => (e.status(), e.body()),
    };
    let mut response = poem::web::Json(body).with_status(status).into_response();
    if result.as_ref().is_err_and(SiteError::wants_bearer) {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}
