//! What a web-framework adapter needs and a host site does not: the endpoint table, plain
//! request and response types, the WebSocket frame types and drivers' entry points (methods of
//! [`HashPass`](crate::HashPass): `handle`, `admit_player`, `run_player`, `admit_admin`,
//! `run_admin`, `security_headers`), and the embedded pages ([`ui`], with the `ui` feature).
//!
//! An adapter routes every row of [`ENDPOINTS`] and the two socket paths relative to its mount
//! point, hands request parts to the core and sends back what it answers; `hashpass-axum` and
//! `hashpass-poem` are the two written so far, a few hundred lines each.

pub use crate::api::{ApiBody, ApiRequest, ApiResponse};
pub use crate::endpoint::{
    ADMIN_WS_PATH, AdminEndpoint, ENDPOINTS, Endpoint, PLAYER_WS_PATH, PublicEndpoint, Route,
};
pub use crate::service::PlayerAdmission;
pub use crate::ws::{WsIncoming, WsOutgoing};

#[cfg(feature = "ui")]
pub use crate::ui;

/// The answer when the adapter cannot tell the client's address (the host app was served
/// without it): a 500 whose message says what the host must add, instead of treating every
/// client as one address.
pub fn missing_peer_address(what_to_add: &str) -> ApiResponse {
    missing_setup(&format!(
        "HashPass needs each client's address: {what_to_add}"
    ))
}

/// A 500 for a host app that left out a piece HashPass needs (`what` says what to add), logged
/// as an error: loud, never a silent fallback.
pub fn missing_setup(what: &str) -> ApiResponse {
    tracing::error!("the host app is misconfigured: {what}");
    crate::ApiError::detail(
        http::StatusCode::INTERNAL_SERVER_ERROR,
        format!("The server is misconfigured: {what}"),
    )
    .into()
}
