//! The invite-only site in poem: the twin of [`super::with_axum`], route for route.

use hashpass::HashPass;
use poem::http::header;
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler, post};

use super::{Answer, Form, FormRequest, JOIN_CSS, JOIN_HTML, JOIN_JS, Site, SiteError};

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
    let limits = hashpass.config().network.connections.clone();
    let form = |form: Form| {
        let (site, limits) = (site.clone(), limits.clone());
        poem::endpoint::make(move |request: Request| {
            let (site, limits) = (site.clone(), limits.clone());
            async move {
                let peer = request.remote_addr().as_socket_addr().map(|addr| addr.ip());
                let (parts, body) = request.into_parts();
                // Read as HashPass reads its own bodies: within the body-read time, an oversized one
                // drained before it is refused, so a proxy in front reads the refusal.
                let body = hashpass::edge::read_body(
                    body.into_bytes_stream(),
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

/// The answer, or the error's status and JSON body (with `WWW-Authenticate` for token errors,
/// `Retry-After` for the refusals that pass with time).
fn respond(result: Result<Answer, SiteError>) -> Response {
    let (status, body) = match &result {
        Ok((status, body)) => (*status, body.clone()),
        Err(e) => (e.status(), e.body()),
    };
    let mut response = poem::web::Json(body).with_status(status).into_response();
    if let Err(e) = &result {
        response.headers_mut().extend(e.headers());
    }
    response
}
