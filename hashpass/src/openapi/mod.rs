//! The OpenAPI 3.1 document of the HTTP API, generated from the endpoint table.
//!
//! [`document`] walks [`crate::adapter::ENDPOINTS`]: each row carries its own operation (what it
//! takes and answers), so a new endpoint is documented in the row that routes it. The failures
//! every operation of a kind shares (authentication, the User-Agent filter, the body limit) are
//! added here, from the endpoint's class. The two WebSockets are added as `GET` operations
//! answering `101`. `docs/openapi.json` is a checked-in copy, kept current by
//! `tests/tests/openapi.rs`.

pub(crate) mod operation;
pub(crate) mod schemas;

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::endpoint::{ADMIN_WS_PATH, ENDPOINTS, Endpoint, PLAYER_WS_PATH};
use operation::{Auth, Content, ERROR, Failure, Operation, Param, Tag, UA_REFUSED};
use schemas::{r, schemas};

/// The OpenAPI 3.1 document of every HTTP endpoint in [`crate::adapter::ENDPOINTS`] and of the two
/// WebSockets ([`crate::adapter::PLAYER_WS_PATH`], [`crate::adapter::ADMIN_WS_PATH`]). Paths are
/// relative to where HashPass is mounted. Keys come in a fixed order, so the serialised
/// document is reproducible.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "HashPass",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "An embeddable invite-code race: browsers solve an Argon2d puzzle; the first valid solution wins an invite code.",
            "description": info_description(),
            "license": { "name": env!("CARGO_PKG_LICENSE"), "identifier": env!("CARGO_PKG_LICENSE") },
        },
        "tags": Tag::ALL.iter().map(|t| json!({ "name": t.name(), "description": t.description() })).collect::<Vec<_>>(),
        "paths": paths(),
        "components": {
            "schemas": schemas(),
            "securitySchemes": security_schemes(),
        },
    })
}

/// Every route's operation under its path and method, then the two sockets'.
fn paths() -> Map<String, Value> {
    let mut paths = Map::new();
    let mut ids: HashMap<Endpoint, usize> = HashMap::new();
    for route in ENDPOINTS {
        let op = (route.doc)();
        // An endpoint served at several paths (the trace) needs one operationId per path.
        let seen = ids.entry(route.endpoint).or_insert(0);
        let id = if *seen == 0 {
            op.id.to_string()
        } else {
            format!("{}{}", op.id, camel(route.path))
        };
        *seen += 1;
        let mut failures = common_failures(route.endpoint, op.auth);
        failures.extend(op.failures.iter().cloned());
        insert_operation(
            &mut paths,
            route.path,
            route.method.as_str(),
            render(&op, &id, &failures),
        );
    }
    for (path, op) in [
        (PLAYER_WS_PATH, player_socket()),
        (ADMIN_WS_PATH, admin_socket()),
    ] {
        insert_operation(&mut paths, path, "GET", render(&op, op.id, &op.failures));
    }
    paths
}

fn security_schemes() -> Value {
    json!({
        "adminToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <ADMIN_TOKEN>`. Unset `ADMIN_TOKEN` disables the admin API (401). Wrong tokens are counted per client IP: repeated failures lock the IP out (429) for a while.",
        },
        "sessionToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <session token>`: the token the player WebSocket sends in its `SESSION_TOKEN` message. It is bound to the client IP it was issued to and dies when revoked (kick, clear-sessions) or some time after its socket closed.",
        },
    })
}

fn info_description() -> String {
    format!(
        "The HTTP API of HashPass. Every path is relative to where the host application mounts HashPass (at the root, `/api/health` is `/api/health`; under `/invite`, it is `/invite/api/health`), so the document names no server.\n\nErrors are JSON: usually `{{\"detail\": \"...\"}}` (`Error`); the invite gate's refusals add a machine-readable `code`; field errors of the player endpoints are a `422` whose `detail` lists every problem (`ValidationError`). Scripted clients (no `Mozilla/5.0` User-Agent, or a known tool's) are refused with `404 {{\"error\": \"Not found\"}}` on the public player endpoints unless `HASHPASS_UA_FILTER` is off. Every request body is limited to `HASHPASS_MAX_BODY_BYTES`.\n\nThe two WebSockets (`{PLAYER_WS_PATH}` for players, `{ADMIN_WS_PATH}` for the admin console) are listed as `GET` operations answering `101 Switching Protocols`; their messages, and everything else on the wire, are described in `docs/protocol.md`."
    )
}

/// The failures every operation of its kind can answer, derived from the endpoint's class in
/// the endpoint table and its authentication.
fn common_failures(endpoint: Endpoint, auth: Auth) -> Vec<Failure> {
    let mut out = match auth {
        Auth::None => Vec::new(),
        Auth::Session => session_failures(),
        Auth::Admin => admin_failures(""),
        Auth::AdminUnlessPublic => admin_failures(" (unless `HASHPASS_METRICS_PUBLIC`)"),
    };
    if endpoint.ua_filtered() {
        out.push(Failure::new(
            404,
            UA_REFUSED,
            "Refused by the User-Agent filter (a scripted client), unless `HASHPASS_UA_FILTER` is off.",
        ));
    }
    out.push(Failure::new(
        413,
        ERROR,
        format!(
            "The request body is larger than `HASHPASS_MAX_BODY_BYTES` ({} bytes by default).",
            Config::default().limits.max_body_bytes
        ),
    ));
    out.push(Failure::new(
        408,
        ERROR,
        "The request body did not arrive within `HASHPASS_BODY_READ_TIMEOUT` (10 s by default); the connection is closed.",
    ));
    out
}

/// What an operation behind the session token can answer before it runs.
fn session_failures() -> Vec<Failure> {
    vec![
        Failure::new(
            401,
            ERROR,
            "The `Authorization` header is missing or not `Bearer <token>`, or the session token is unknown, revoked or expired.",
        ),
        Failure::new(
            403,
            ERROR,
            "The client IP is banned, or the session token is bound to another IP.",
        ),
        Failure::new(
            503,
            ERROR,
            "The session store, ban list or puzzle state is unavailable: retry.",
        ),
    ]
}

/// What an operation behind the admin token can answer before it runs; `unless` qualifies
/// when the token is asked for.
fn admin_failures(unless: &str) -> Vec<Failure> {
    vec![
        Failure::new(
            401,
            ERROR,
            format!(
                "`ADMIN_TOKEN` is not configured, or the `Authorization` header is missing or not `Bearer <token>`{unless}."
            ),
        ),
        Failure::new(
            403,
            ERROR,
            format!(
                "Wrong admin token{unless}; counted per client IP, the {}th failure in a row locks the IP out.",
                Config::default().admin.max_failures
            ),
        ),
        Failure::new(
            429,
            ERROR,
            "The client IP is locked out, or this wrong token was the last one allowed in a row (the lockout starts).",
        ),
        Failure::new(503, ERROR, "A shared-state backend is unavailable: retry."),
    ]
}

/// The player WebSocket, documented as the `GET` that upgrades.
fn player_socket() -> Operation {
    Operation::new(
        "playerSocket",
        Tag::Player,
        Auth::None,
        "Player WebSocket",
        "Upgrades to the player socket. A new player connects with a Turnstile token and receives a `SESSION_TOKEN`; a player reconnects with its live session token. The socket then carries the race (`PUZZLE_RESET`, `NETWORK_HASHRATE`, `TIMEOUT_INVITE_CODE`, hashrate reports, pings). Messages: see `docs/protocol.md#player-websocket`.",
    )
    .query(Param {
        name: "token",
        description: "A Turnstile token (new session) or a live session token (reconnect).",
        required: true,
        schema: json!({ "type": "string", "minLength": 1 }),
    })
    .switching_protocols()
    .fail(400, ERROR, NOT_UPGRADE)
    .fail(
        403,
        ERROR,
        "Refused by the User-Agent filter, the token is missing, the IP is banned, the session is bound to another IP, the IP already has `HASHPASS_MAX_CONNECTIONS_PER_IP` sockets, or the captcha refused the token.",
    )
    .fail(
        503,
        ERROR,
        "The ban list or session store is unavailable: retry.",
    )
}

/// The admin WebSocket, documented as the `GET` that upgrades.
fn admin_socket() -> Operation {
    Operation::new(
        "adminSocket",
        Tag::Admin,
        Auth::None,
        "Admin WebSocket",
        "Upgrades to the admin console's socket, which receives `STATUS_UPDATE` snapshots. The admin token travels in the query (counted toward the lockout like the HTTP API's). Messages: see `docs/protocol.md#admin-websocket`.",
    )
    .query(Param {
        name: "token",
        description: "The `ADMIN_TOKEN`.",
        required: true,
        schema: json!({ "type": "string" }),
    })
    .switching_protocols()
    .fail(400, ERROR, NOT_UPGRADE)
    .fail(
        403,
        ERROR,
        "The token is missing or wrong, or `ADMIN_TOKEN` is not configured.",
    )
    .fail(
        429,
        ERROR,
        "The client IP is locked out, or this wrong token was the last one allowed in a row (the lockout starts).",
    )
    .fail(503, ERROR, "A shared-state backend is unavailable: retry.")
}

const NOT_UPGRADE: &str = "Not a WebSocket upgrade request.";

/// Adds `operation` under `path` and `method`.
fn insert_operation(paths: &mut Map<String, Value>, path: &str, method: &str, operation: Value) {
    let item = paths
        .entry(path.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(item) = item {
        item.insert(method.to_ascii_lowercase(), operation);
    }
}

/// `/cdn-cgi/trace` → `CdnCgiTrace`.
fn camel(path: &str) -> String {
    path.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// One operation of the document: `op` under `id`, answering its success and `failures`.
fn render(op: &Operation, id: &str, failures: &[Failure]) -> Value {
    let mut out = Map::new();
    out.insert("tags".into(), json!([op.tag.name()]));
    out.insert("summary".into(), json!(op.summary));
    out.insert("description".into(), json!(op.description));
    out.insert("operationId".into(), json!(id));
    let security = match op.auth {
        Auth::None => None,
        Auth::Session => Some(json!([{ "sessionToken": [] }])),
        Auth::Admin => Some(json!([{ "adminToken": [] }])),
        Auth::AdminUnlessPublic => Some(json!([{ "adminToken": [] }, {}])),
    };
    if let Some(security) = security {
        out.insert("security".into(), security);
    }
    if !op.query.is_empty() {
        let params = op.query.iter().map(render_param).collect();
        out.insert("parameters".into(), Value::Array(params));
    }
    if let Some((schema, required)) = &op.body {
        out.insert(
            "requestBody".into(),
            json!({ "required": required, "content": { "application/json": { "schema": schema } } }),
        );
    }
    let mut responses = Map::new();
    let (status, description, content) = &op.success;
    responses.insert(status.to_string(), render_success(description, content));
    render_failures(&mut responses, failures);
    out.insert("responses".into(), Value::Object(responses));
    Value::Object(out)
}

fn render_param(p: &Param) -> Value {
    json!({
        "name": p.name,
        "in": "query",
        "description": p.description,
        "required": p.required,
        "schema": p.schema,
    })
}

fn render_success(description: &str, content: &Content) -> Value {
    let mut success = Map::new();
    success.insert("description".into(), json!(description));
    match content {
        Content::Json(schema) => {
            success.insert(
                "content".into(),
                json!({ "application/json": { "schema": schema } }),
            );
        }
        Content::Text(example) => {
            success.insert(
                "content".into(),
                json!({ "text/plain": { "schema": { "type": "string" }, "example": example } }),
            );
        }
        Content::Empty => {}
    }
    Value::Object(success)
}

/// One response per status: descriptions joined, schemas `oneOf` when they differ.
fn render_failures(responses: &mut Map<String, Value>, failures: &[Failure]) {
    let mut by_status: BTreeMap<u16, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
    for failure in failures {
        let (descriptions, schemas) = by_status.entry(failure.status).or_default();
        descriptions.push(&failure.description);
        if !schemas.contains(&failure.schema) {
            schemas.push(failure.schema);
        }
    }
    for (status, (descriptions, schemas)) in by_status {
        let schema = match schemas.as_slice() {
            [one] => r(one),
            many => json!({ "oneOf": many.iter().map(|s| r(s)).collect::<Vec<_>>() }),
        };
        responses.insert(
            status.to_string(),
            json!({
                "description": descriptions.join(" "),
                "content": { "application/json": { "schema": schema } },
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_endpoint_is_under_its_path_and_method() {
        let doc = document();
        for route in ENDPOINTS {
            let (method, path, endpoint) = (&route.method, route.path, &route.endpoint);
            let op = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{method} {path} ({endpoint:?}) is missing");
            assert!(op["responses"]["200"].is_object(), "{path}: no 200");
            assert!(op["responses"]["413"].is_object(), "{path}: no 413");
            let secured = op["security"].to_string();
            assert_eq!(
                endpoint.is_admin(),
                secured == r#"[{"adminToken":[]}]"#,
                "{path}: admin security"
            );
            assert_eq!(
                endpoint.ua_filtered(),
                op["responses"]["404"]["content"]["application/json"]["schema"]["$ref"]
                    == "#/components/schemas/UserAgentRefused",
                "{path}: UA filter"
            );
        }
        for path in [PLAYER_WS_PATH, ADMIN_WS_PATH] {
            assert!(doc["paths"][path]["get"]["responses"]["101"].is_object());
        }
        let operations: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(operations, ENDPOINTS.len() + 2);
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document();
        let mut ids = std::collections::HashSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
            }
        }
        assert!(ids.contains("devTrace") && ids.contains("devTraceCdnCgiTrace"));
    }

    #[test]
    fn every_ref_resolves_and_every_schema_is_used() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for target in &found {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{target} is not a component schema"));
            assert!(schemas.contains_key(name), "{target} does not resolve");
        }
        for name in schemas.keys() {
            let target = format!("#/components/schemas/{name}");
            assert!(found.contains(&target.as_str()), "{name} is never used");
        }
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                for requirement in op["security"].as_array().into_iter().flatten() {
                    for scheme in requirement.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(scheme), "unknown scheme {scheme}");
                    }
                }
            }
        }
    }

    #[test]
    fn paths_take_no_path_parameters() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            assert!(path.starts_with('/') && !path.contains('{'), "{path}");
            for op in item.as_object().unwrap().values() {
                for param in op["parameters"].as_array().into_iter().flatten() {
                    assert_eq!(param["in"], "query", "{path}");
                }
            }
        }
    }

    #[test]
    fn the_document_serialises_reproducibly() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        let text = serde_json::to_string_pretty(&doc).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), doc);
        assert_eq!(serde_json::to_string_pretty(&document()).unwrap(), text);
    }

    #[test]
    fn tags_are_declared() {
        let doc = document();
        let declared: Vec<&str> = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let tag = op["tags"][0].as_str().unwrap();
                assert!(declared.contains(&tag), "undeclared tag {tag}");
            }
        }
    }
}
