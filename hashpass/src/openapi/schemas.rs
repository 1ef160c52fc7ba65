//! The component schemas of the document, one row each.

use serde_json::{Map, Value, json};

use super::operation::{ERROR, UA_REFUSED, VALIDATION_ERROR};
use crate::admin::MAX_INVITE_USES;
use crate::gate::InviteRejection;
use crate::invite::InviteError;
use crate::puzzle::{MAX_NONCE, MAX_VISITOR_ID_LEN};
use crate::redemption::CodeState;

/// Every component schema by name, in the order the document lists them.
pub(super) fn schemas() -> Value {
    let schemas: Map<String, Value> = SCHEMAS
        .iter()
        .map(|(name, schema)| ((*name).to_string(), schema()))
        .collect();
    Value::Object(schemas)
}

/// `{"$ref": "#/components/schemas/<name>"}`.
pub(crate) fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn t(kind: &str, description: &str) -> Value {
    json!({ "type": kind, "description": description })
}

/// `kind` or `null`.
fn nullable(kind: &str, description: &str) -> Value {
    json!({ "type": [kind, "null"], "description": description })
}

fn int(description: &str, minimum: u64, maximum: u64) -> Value {
    json!({ "type": "integer", "description": description, "minimum": minimum, "maximum": maximum })
}

fn array(items: Value, description: &str) -> Value {
    json!({ "type": "array", "description": description, "items": items })
}

/// An object with these properties, of which `required` are always present.
fn object(description: &str, required: &[&str], properties: Vec<(&str, Value)>) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    out.insert("description".into(), json!(description));
    if !required.is_empty() {
        out.insert("required".into(), json!(required));
    }
    let properties: Map<String, Value> = properties
        .into_iter()
        .map(|(name, schema)| (name.to_string(), schema))
        .collect();
    out.insert("properties".into(), Value::Object(properties));
    Value::Object(out)
}

/// An object whose properties are all always present.
fn record(description: &str, properties: Vec<(&str, Value)>) -> Value {
    let required: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
    object(description, &required, properties)
}

pub(crate) fn code_states() -> Vec<&'static str> {
    CodeState::ALL.iter().map(|s| s.as_str()).collect()
}

fn seed_preview() -> Value {
    t(
        "string",
        "The first 8 characters of the new seed, then `...`.",
    )
}

/// The invite gate's machine-readable refusal codes.
fn gate_codes() -> Vec<&'static str> {
    [
        InviteRejection::Invalid(InviteError::Malformed),
        InviteRejection::Invalid(InviteError::BadSignature),
        InviteRejection::Invalid(InviteError::KeyRotated),
        InviteRejection::Invalid(InviteError::Expired),
        InviteRejection::Revoked,
        InviteRejection::AlreadyUsed,
        InviteRejection::Unavailable,
    ]
    .iter()
    .map(InviteRejection::code)
    .collect()
}

/// A device fingerprint.
fn visitor_id() -> Value {
    json!({
        "type": "string",
        "description": "Device fingerprint.",
        "minLength": 1,
        "maxLength": MAX_VISITOR_ID_LEN,
        "pattern": format!("^[A-Za-z0-9_-]{{1,{MAX_VISITOR_ID_LEN}}}$"),
    })
}

/// A chart's samples of `value`.
fn chart(value: &str, description: &str) -> Value {
    array(
        record(
            "A sample.",
            vec![
                ("timestamp", t("number", "Unix seconds.")),
                (value, t("number", description)),
            ],
        ),
        "Recent samples, oldest first.",
    )
}

/// A difficulty setting.
fn difficulty() -> Value {
    int("Leading zero bits.", 1, 64)
}

/// A time setting.
fn seconds() -> Value {
    int("Seconds.", 1, u64::from(u32::MAX))
}

/// The admin status snapshot.
fn admin_status() -> Value {
    let mut properties = puzzle_status();
    properties.extend(activity_status());
    record("The status snapshot.", properties)
}

/// The snapshot's puzzle: difficulty, timing, seed.
fn puzzle_status() -> Vec<(&'static str, Value)> {
    vec![
        ("difficulty", t("integer", "Current difficulty, bits.")),
        (
            "difficulty_float",
            t("number", "The adjustment's fractional difficulty."),
        ),
        ("min_difficulty", t("integer", "Lower bound.")),
        ("max_difficulty", t("integer", "Upper bound.")),
        ("target_time", t("integer", "Target solve time, seconds.")),
        ("target_timeout", t("integer", "Timeout, seconds.")),
        (
            "ema_solve_time",
            nullable("number", "Moving average of solve times, seconds."),
        ),
        ("current_seed", t("string", "The current seed.")),
        (
            "puzzle_start_time",
            t("number", "When the puzzle started, Unix seconds."),
        ),
        (
            "mining_time",
            t("number", "Seconds the puzzle has been mined."),
        ),
        (
            "is_mining_active",
            t("boolean", "Whether anyone is mining."),
        ),
    ]
}

/// The snapshot's activity and settings: solves, miners, Argon2, charts.
fn activity_status() -> Vec<(&'static str, Value)> {
    vec![
        (
            "last_solve_time",
            nullable("number", "The last solve time, seconds."),
        ),
        (
            "solve_history",
            array(json!({ "type": "number" }), "Recent solve times, seconds."),
        ),
        (
            "average_solve_time",
            nullable("number", "Average of `solve_history`."),
        ),
        (
            "active_miners",
            t("integer", "Miners reporting a hashrate."),
        ),
        (
            "active_connections",
            t("integer", "Player sockets on this instance."),
        ),
        ("session_count", t("integer", "Sessions in the store.")),
        ("argon2_time_cost", t("integer", "Argon2 passes.")),
        ("argon2_memory_cost", t("integer", "Argon2 memory, KiB.")),
        ("argon2_parallelism", t("integer", "Argon2 lanes.")),
        ("worker_count", t("integer", "Web Workers per browser.")),
        (
            "max_nonce_speed",
            t("number", "Speed limit, nonces/s (0 = off)."),
        ),
        ("banned_ips_count", t("integer", "Banned IPs.")),
        (
            "hashrate_chart_history",
            chart("hashrate", "Network hashrate, H/s."),
        ),
        (
            "solve_time_chart_history",
            chart("solve_time", "Solve time, seconds."),
        ),
        ("webhook", r("WebhookStatus")),
        (
            "wins_not_recorded",
            t(
                "integer",
                "Wins this instance could not put on record (no code given out).",
            ),
        ),
    ]
}

/// The outbox's counts, in the status snapshot and its own listing alike.
fn outbox_counts() -> Vec<(&'static str, Value)> {
    vec![
        ("pending", t("integer", "Deliveries waiting.")),
        ("failed", t("integer", "Deliveries given up.")),
        (
            "oldest_pending_at",
            nullable(
                "number",
                "When the oldest waiting delivery was recorded, Unix seconds.",
            ),
        ),
    ]
}

/// A component schema: its name and how to write it.
type Schema = (&'static str, fn() -> Value);

/// Every component schema, in the order the document lists them.
const SCHEMAS: &[Schema] = &[
    (ERROR, || {
        object(
            "An error answer.",
            &["detail"],
            vec![
                ("detail", t("string", "What went wrong, for a person.")),
                (
                    "code",
                    json!({ "type": "string", "enum": gate_codes(), "description": "The invite gate's machine-readable reason (its refusals only)." }),
                ),
            ],
        )
    }),
    (VALIDATION_ERROR, || {
        object(
            "A player body's field errors (pydantic's shape).",
            &["detail"],
            vec![(
                "detail",
                array(r("ValidationIssue"), "Every problem found."),
            )],
        )
    }),
    ("ValidationIssue", || {
        object(
            "One field error.",
            &["type", "loc", "msg", "input"],
            vec![
                (
                    "type",
                    json!({ "type": "string", "description": "The kind of error.", "examples": ["missing", "json_invalid", "string_type", "string_too_long", "int_parsing", "int_type", "int_from_float", "greater_than_equal", "less_than_equal", "value_error", "model_attributes_type"] }),
                ),
                (
                    "loc",
                    json!({ "type": "array", "description": "Where: `[\"body\"]`, `[\"body\", <field>]`, or `[\"body\", <column>]` for a JSON syntax error.", "items": { "type": ["string", "integer"] } }),
                ),
                ("msg", t("string", "What is wrong, for a person.")),
                (
                    "input",
                    json!({ "description": "The offending value (the whole object for a missing field)." }),
                ),
                (
                    "ctx",
                    t(
                        "object",
                        "Limits involved (`max_length`, `ge`, `le`) or the parser's error.",
                    ),
                ),
            ],
        )
    }),
    (UA_REFUSED, || {
        record(
            "The User-Agent filter's refusal.",
            vec![("error", json!({ "const": "Not found" }))],
        )
    }),
    ("Health", || {
        record(
            "The service is up.",
            vec![
                ("status", json!({ "const": "ok" })),
                (
                    "current_seed",
                    t("string", "The first 8 characters of the seed, then `...`."),
                ),
            ],
        )
    }),
    ("Live", || {
        record(
            "The process serves HTTP.",
            vec![("status", json!({ "const": "alive" }))],
        )
    }),
    ("Ready", || {
        record(
            "The instance's stores answer and it is not shutting down.",
            vec![("status", json!({ "const": "ready" }))],
        )
    }),
    ("TurnstileConfig", || {
        record(
            "The captcha configuration.",
            vec![
                ("siteKey", t("string", "Turnstile site key.")),
                (
                    "testMode",
                    t(
                        "boolean",
                        "Whether the captcha runs offline, passing any token.",
                    ),
                ),
            ],
        )
    }),
    ("PuzzleRequest", || {
        record(
            "Body of `POST /api/puzzle`.",
            vec![("visitorId", visitor_id())],
        )
    }),
    ("Solution", || {
        record(
            "A solution (body of `POST /api/verify`).",
            vec![
                ("visitorId", visitor_id()),
                (
                    "nonce",
                    int(
                        "The nonce (a decimal string or a float without fraction is accepted too).",
                        0,
                        MAX_NONCE,
                    ),
                ),
                (
                    "submittedSeed",
                    json!({ "type": "string", "maxLength": 128, "description": "The seed that was mined." }),
                ),
                (
                    "traceData",
                    json!({ "type": "string", "maxLength": 2048, "description": "The Cloudflare trace text; its `ip=` line must be the client IP." }),
                ),
                (
                    "hash",
                    json!({ "type": "string", "maxLength": 256, "pattern": "^\\s*[0-9A-Fa-f]{64}\\s*$", "description": "The Argon2d hash found, 64 hexadecimal characters." }),
                ),
            ],
        )
    }),
    ("Submission", || {
        json!({
            "description": "Body of `POST /api/submit`: a solution for the timed-out seed and the leading zero bits its hash has.",
            "allOf": [
                r("Solution"),
                record("The claim.", vec![(
                    "leadingZeros",
                    int("Leading zero bits the hash has (below 1 is a 400).", 0, 256),
                )]),
            ],
        })
    }),
    ("Puzzle", || {
        record(
            "The current puzzle.",
            vec![
                ("seed", t("string", "32 hexadecimal characters.")),
                (
                    "difficulty",
                    t("integer", "Leading zero bits a hash needs."),
                ),
                ("memory_cost", t("integer", "Argon2 memory, KiB.")),
                ("time_cost", t("integer", "Argon2 passes.")),
                ("parallelism", t("integer", "Argon2 lanes.")),
                ("worker_count", t("integer", "Web Workers to mine with.")),
                (
                    "puzzle_start_time",
                    t("number", "When the puzzle started, Unix seconds."),
                ),
                (
                    "last_solve_time",
                    nullable("number", "The last puzzle's solve time, seconds."),
                ),
                (
                    "average_solve_time",
                    nullable("number", "Average of recent solve times, seconds."),
                ),
            ],
        )
    }),
    ("Verified", || {
        record(
            "The win.",
            vec![("invite_code", t("string", "The invite code won."))],
        )
    }),
    ("Submitted", || {
        record(
            "The entry's fate.",
            vec![(
                "status",
                json!({ "type": "string", "enum": ["submitted", "already_submitted"] }),
            )],
        )
    }),
    ("AdminStatus", admin_status),
    ("WebhookOutbox", || {
        let mut properties = outbox_counts();
        properties.extend([
            (
                "pending_deliveries",
                array(r("WebhookDelivery"), "Waiting, soonest due first."),
            ),
            (
                "failed_deliveries",
                array(r("WebhookDelivery"), "Given up, oldest first."),
            ),
        ]);
        record("The webhook outbox.", properties)
    }),
    ("WebhookDelivery", || {
        record(
            "One webhook delivery; its `event.invite_code` is the idempotency key.",
            vec![
                (
                    "event",
                    object(
                        "The body POSTed.",
                        &["visitor_id", "invite_code"],
                        vec![
                            (
                                "visitor_id",
                                t("string", "The winner's device fingerprint."),
                            ),
                            ("invite_code", t("string", "The invite code.")),
                        ],
                    ),
                ),
                (
                    "created_at",
                    t("number", "When it was recorded, Unix seconds."),
                ),
                ("attempts", t("integer", "Attempts made.")),
                (
                    "next_attempt_at",
                    t("number", "When the next attempt is due, Unix seconds."),
                ),
                (
                    "last_error",
                    nullable("string", "What the last failed attempt saw."),
                ),
            ],
        )
    }),
    ("WebhookStatus", || {
        let mut properties = vec![(
            "configured",
            t("boolean", "Whether a webhook is configured."),
        )];
        properties.extend(outbox_counts());
        record("The webhook outbox in the status snapshot.", properties)
    }),
    ("Miner", || {
        record(
            "A miner with a fresh hashrate report.",
            vec![
                ("ip", t("string", "Client IP.")),
                ("hashrate", t("number", "Reported hashrate, H/s.")),
                ("last_seen", t("number", "Seconds since the last report.")),
                (
                    "connected_since",
                    t("integer", "Seconds since the first report."),
                ),
                (
                    "overspeed",
                    t(
                        "boolean",
                        "Whether it reported more than `max_nonce_speed`.",
                    ),
                ),
            ],
        )
    }),
    ("Session", || {
        record(
            "A session.",
            vec![
                (
                    "token_preview",
                    t("string", "The token's first 8 characters, then `...`."),
                ),
                ("ip", t("string", "The IP it is bound to.")),
                ("created_at", t("number", "Unix seconds.")),
                ("is_connected", t("boolean", "Whether a socket holds it.")),
                (
                    "disconnected_at",
                    nullable("number", "When its socket closed, Unix seconds."),
                ),
                ("revoked", t("boolean", "Whether an admin revoked it.")),
                (
                    "visitor_id",
                    nullable("string", "The device fingerprint bound to it."),
                ),
            ],
        )
    }),
    ("AuditRecord", || {
        object(
            "One invite handed out (records of older versions may lack fields).",
            &[],
            vec![
                (
                    "timestamp",
                    t("string", "Local time, ISO 8601 without zone."),
                ),
                ("invite_code", t("string", "The invite code.")),
                ("visitor_id", t("string", "The winner's fingerprint.")),
                ("nonce", t("integer", "The winning nonce.")),
                ("hash", t("string", "The winning hash, hexadecimal.")),
                ("seed", t("string", "The puzzle's seed.")),
                ("real_ip", t("string", "The winner's IP.")),
                ("trace_data", t("string", "The winner's trace.")),
                ("difficulty", t("integer", "The puzzle's difficulty.")),
                (
                    "solve_time",
                    nullable("number", "Seconds; `null` for a timeout reward."),
                ),
                (
                    "new_difficulty",
                    t("integer", "Difficulty after the adjustment."),
                ),
                (
                    "adjustment_reason",
                    t(
                        "string",
                        "Why the difficulty changed (`timeout_reward` for rewards).",
                    ),
                ),
                ("redemption", r("CodeStatus")),
            ],
        )
    }),
    ("LogPage", || {
        record(
            "A page of audit records, newest first.",
            vec![
                ("records", array(r("AuditRecord"), "The records.")),
                ("total", t("integer", "Matching records in the file.")),
                ("page", t("integer", "This page.")),
                (
                    "pages",
                    t(
                        "integer",
                        "Number of pages: at least 1, or 0 for an unknown file.",
                    ),
                ),
                (
                    "files",
                    array(
                        json!({ "type": "string" }),
                        "Every audit file, current first, then archives newest first.",
                    ),
                ),
            ],
        )
    }),
    ("LogStats", || {
        record(
            "Statistics over every audit file.",
            vec![
                ("total_codes", t("integer", "Records.")),
                ("unique_visitors", t("integer", "Distinct visitor ids.")),
                (
                    "avg_solve_time",
                    nullable("number", "Mean solve time, seconds."),
                ),
                (
                    "median_solve_time",
                    nullable("number", "Upper median solve time, seconds."),
                ),
                (
                    "difficulty_distribution",
                    json!({ "type": "object", "description": "Records per difficulty (keys are difficulties).", "additionalProperties": { "type": "integer" } }),
                ),
            ],
        )
    }),
    ("AppLogPage", || {
        record(
            "A page of log lines, newest first.",
            vec![
                ("lines", array(json!({ "type": "string" }), "The lines.")),
                ("total", t("integer", "Matching lines in the file.")),
                ("page", t("integer", "This page.")),
                (
                    "pages",
                    t(
                        "integer",
                        "Number of pages: at least 1, or 0 without a log file.",
                    ),
                ),
                (
                    "files",
                    array(json!({ "type": "string" }), "Log files, name-descending."),
                ),
            ],
        )
    }),
    ("DifficultyChange", || {
        object(
            "Body of `POST /api/admin/difficulty`: absent fields keep their value.",
            &[],
            vec![
                ("difficulty", difficulty()),
                ("min_difficulty", difficulty()),
                ("max_difficulty", difficulty()),
            ],
        )
    }),
    ("DifficultyChanged", || {
        record(
            "The new difficulty settings.",
            vec![
                ("difficulty", t("integer", "Difficulty.")),
                ("min_difficulty", t("integer", "Lower bound.")),
                ("max_difficulty", t("integer", "Upper bound.")),
                ("new_seed", seed_preview()),
            ],
        )
    }),
    ("TargetTimeChange", || {
        object(
            "Body of `POST /api/admin/target-time`: absent fields keep their value; `target_timeout` must stay greater than `target_time`.",
            &[],
            vec![("target_time", seconds()), ("target_timeout", seconds())],
        )
    }),
    ("TargetTimeChanged", || {
        record(
            "The new times.",
            vec![
                ("target_time", t("integer", "Target solve time, seconds.")),
                ("target_timeout", t("integer", "Timeout, seconds.")),
                ("new_seed", seed_preview()),
            ],
        )
    }),
    ("Argon2Change", || {
        object(
            "Body of `POST /api/admin/argon2`: absent fields keep their value.",
            &[],
            vec![
                ("time_cost", int("Passes.", 1, 16)),
                (
                    "memory_cost",
                    int("Memory, KiB (at least 8 x parallelism).", 8, 1_048_576),
                ),
                ("parallelism", int("Lanes.", 1, 16)),
            ],
        )
    }),
    ("Argon2Changed", || {
        record(
            "The new parameters.",
            vec![
                ("time_cost", t("integer", "Passes.")),
                ("memory_cost", t("integer", "Memory, KiB.")),
                ("parallelism", t("integer", "Lanes.")),
                ("new_seed", seed_preview()),
            ],
        )
    }),
    ("WorkerCountChange", || {
        record(
            "Body of `POST /api/admin/worker-count`.",
            vec![("worker_count", int("Web Workers per browser.", 1, 32))],
        )
    }),
    ("WorkerCountChanged", || {
        record(
            "The new worker count.",
            vec![
                ("worker_count", t("integer", "Web Workers per browser.")),
                ("new_seed", seed_preview()),
            ],
        )
    }),
    ("MaxNonceSpeedChange", || {
        record(
            "Body of `POST /api/admin/max-nonce-speed`.",
            vec![(
                "max_nonce_speed",
                json!({ "type": "number", "minimum": 0, "description": "Nonces per second above which a solution is flagged; 0 disables the check." }),
            )],
        )
    }),
    ("MaxNonceSpeedChanged", || {
        object(
            "The new speed limit.",
            &["max_nonce_speed"],
            vec![
                (
                    "max_nonce_speed",
                    t("number", "Nonces per second; 0 = off."),
                ),
                (
                    "message",
                    t("string", "`Speed limit disabled` when set to 0."),
                ),
            ],
        )
    }),
    ("PuzzleReset", || {
        record(
            "The puzzle was reset.",
            vec![
                ("message", t("string", "What was done.")),
                ("new_seed", seed_preview()),
            ],
        )
    }),
    ("Message", || {
        record(
            "What was done.",
            vec![("message", t("string", "What was done, for a person."))],
        )
    }),
    ("IpRequest", || {
        record(
            "Body of `POST /api/admin/kick` and `/api/admin/unban`.",
            vec![("ip", t("string", "An IPv4 or IPv6 address."))],
        )
    }),
    ("InviteRequest", || {
        record(
            "Names an invite code.",
            vec![(
                "invite_code",
                t("string", "The invite code, as the winner received it."),
            )],
        )
    }),
    ("InviteMaxUsesRequest", || {
        record(
            "Body of `POST /api/admin/invites/max-uses`.",
            vec![
                (
                    "invite_code",
                    t("string", "The invite code, as the winner received it."),
                ),
                (
                    "max_uses",
                    int(
                        "Accounts the code may sign up in all; not below the uses already made.",
                        1,
                        u64::from(MAX_INVITE_USES),
                    ),
                ),
            ],
        )
    }),
    ("CodeStatus", || {
        record(
            "Where an invite code stands.",
            vec![
                ("code_id", t("string", "The code's id.")),
                ("state", json!({ "type": "string", "enum": code_states() })),
                ("max_uses", t("integer", "Accounts it may sign up in all.")),
                ("remaining", t("integer", "Uses left (0 once withdrawn).")),
                ("uses", array(r("CodeUse"), "Its uses, oldest first.")),
                (
                    "revoked_at",
                    nullable("number", "When an admin withdrew it, Unix seconds."),
                ),
                (
                    "updated_at",
                    t(
                        "number",
                        "When it last changed, Unix seconds (0 for a code never seen).",
                    ),
                ),
            ],
        )
    }),
    ("CodeUse", || {
        record(
            "One account signed up with a code.",
            vec![
                ("user_id", t("string", "The host site's account.")),
                ("used_at", t("number", "Unix seconds.")),
            ],
        )
    }),
    ("InvitePage", || {
        record(
            "A page of invite codes, most recently changed first.",
            vec![
                ("codes", array(r("CodeStatus"), "The codes.")),
                ("total", t("integer", "Matching codes.")),
                ("page", t("integer", "This page.")),
                ("pages", t("integer", "Number of pages, at least 1.")),
            ],
        )
    }),
    ("InviteStatus", || {
        record("One code's state.", vec![("invite", r("CodeStatus"))])
    }),
    ("InviteRevoked", || {
        record(
            "The code was withdrawn.",
            vec![
                ("message", t("string", "`Invite code withdrawn`.")),
                ("invite", r("CodeStatus")),
            ],
        )
    }),
    ("HmacRequest", || {
        object(
            "Body of `POST /api/admin/regenerate-hmac`: without `hmac_secret`, a random 256-bit key.",
            &[],
            vec![(
                "hmac_secret",
                json!({ "type": "string", "pattern": "^\\s*([0-9A-Fa-f]{2}){16,}\\s*$", "description": "The new key, hexadecimal, at least 16 bytes." }),
            )],
        )
    }),
];
