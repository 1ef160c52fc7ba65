//! The OpenAPI 3.1 document of the HTTP API, generated from the endpoint table.
//!
//! [`document`] walks [`crate::api::ENDPOINTS`], so a new row appears in the document by
//! itself; what each [`Endpoint`] takes and answers comes from one exhaustive `match`
//! (`operation`), so a new variant does not compile until it is documented. The two WebSockets
//! are added as `GET` operations answering `101`. `docs/openapi.json` is a checked-in copy, kept
//! current by `tests/tests/openapi.rs`.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use crate::admin::MAX_INVITE_USES;
use crate::api::{ADMIN_WS_PATH, ENDPOINTS, Endpoint, PLAYER_WS_PATH};
use crate::config::Config;
use crate::gate::InviteRejection;
use crate::invite::InviteError;
use crate::puzzle::{MAX_NONCE, MAX_VISITOR_ID_LEN};
use crate::redemption::CodeState;

/// The OpenAPI 3.1 document of every HTTP endpoint in [`crate::api::ENDPOINTS`] and of the two
/// WebSockets ([`crate::api::PLAYER_WS_PATH`], [`crate::api::ADMIN_WS_PATH`]). Paths are
/// relative to where HashPass is mounted. Keys come in a fixed order, so the serialised
/// document is reproducible.
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut ids: HashMap<Endpoint, usize> = HashMap::new();
    for (method, path, endpoint) in ENDPOINTS {
        let op = operation(*endpoint);
        // An endpoint served at several paths (the trace) needs one operationId per path.
        let seen = ids.entry(*endpoint).or_insert(0);
        let id = if *seen == 0 {
            op.id.to_string()
        } else {
            format!("{}{}", op.id, camel(path))
        };
        *seen += 1;
        let mut failures = common_failures(*endpoint, op.auth);
        failures.extend(op.failures.iter().cloned());
        insert_operation(
            &mut paths,
            path,
            method.as_str(),
            render(&op, &id, &failures),
        );
    }
    for admin in [false, true] {
        let op = socket_operation(admin);
        let path = if admin { ADMIN_WS_PATH } else { PLAYER_WS_PATH };
        insert_operation(&mut paths, path, "GET", render(&op, op.id, &op.failures));
    }
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
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
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
            },
        },
    })
}

fn info_description() -> String {
    format!(
        "The HTTP API of HashPass. Every path is relative to where the host application mounts HashPass (at the root, `/api/health` is `/api/health`; under `/invite`, it is `/invite/api/health`), so the document names no server.\n\nErrors are JSON: usually `{{\"detail\": \"...\"}}` (`Error`); the invite gate's refusals add a machine-readable `code`; field errors of the player endpoints are a `422` whose `detail` lists every problem (`ValidationError`). Scripted clients (no `Mozilla/5.0` User-Agent, or a known tool's) are refused with `404 {{\"error\": \"Not found\"}}` on the public player endpoints unless `HASHPASS_UA_FILTER` is off. Every request body is limited to `HASHPASS_MAX_BODY_BYTES`.\n\nThe two WebSockets (`{PLAYER_WS_PATH}` for players, `{ADMIN_WS_PATH}` for the admin console) are listed as `GET` operations answering `101 Switching Protocols`; their messages, and everything else on the wire, are described in `docs/protocol.md`."
    )
}

/// What a client needs to call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// Nothing.
    None,
    /// The player's session bearer token.
    Session,
    /// The admin bearer token.
    Admin,
    /// The admin bearer token, unless `HASHPASS_METRICS_PUBLIC`.
    AdminUnlessPublic,
}

/// The document's tags, in the order they are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Public,
    Player,
    Monitoring,
    Admin,
    Logs,
    Invites,
}

impl Tag {
    const ALL: [Tag; 6] = [
        Tag::Public,
        Tag::Player,
        Tag::Monitoring,
        Tag::Admin,
        Tag::Logs,
        Tag::Invites,
    ];

    fn name(self) -> &'static str {
        match self {
            Tag::Public => "public",
            Tag::Player => "player",
            Tag::Monitoring => "monitoring",
            Tag::Admin => "admin",
            Tag::Logs => "logs",
            Tag::Invites => "invites",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Tag::Public => {
                "Open to anyone: health, captcha configuration, the trace, this document."
            }
            Tag::Player => {
                "The race: the player WebSocket hands out a session token, which the puzzle, verify and submit calls carry."
            }
            Tag::Monitoring => "Prometheus metrics.",
            Tag::Admin => {
                "The admin console's API (bearer `ADMIN_TOKEN`): status, game settings, players."
            }
            Tag::Logs => "The winners' audit log and the application log (admin).",
            Tag::Invites => "Invite codes' redemption state (admin).",
        }
    }
}

/// A query parameter.
#[derive(Debug, Clone)]
struct Param {
    name: &'static str,
    description: &'static str,
    required: bool,
    schema: Value,
}

/// What a successful call answers.
#[derive(Debug, Clone)]
enum Content {
    /// `application/json` with this schema.
    Json(Value),
    /// `text/plain` with this example.
    Text(&'static str),
    /// No body (the WebSocket upgrade).
    Empty,
}

/// An error answer: a status, when it happens, and the component schema of its body.
#[derive(Debug, Clone)]
struct Failure {
    status: u16,
    schema: &'static str,
    description: String,
}

/// Everything the document says about one operation.
#[derive(Debug, Clone)]
struct Operation {
    id: &'static str,
    summary: &'static str,
    description: &'static str,
    tag: Tag,
    auth: Auth,
    query: Vec<Param>,
    /// The request body's schema and whether it is required.
    body: Option<(Value, bool)>,
    success: (u16, &'static str, Content),
    failures: Vec<Failure>,
}

const ERROR: &str = "Error";
const VALIDATION_ERROR: &str = "ValidationError";
const UA_REFUSED: &str = "UserAgentRefused";

impl Operation {
    fn new(
        id: &'static str,
        tag: Tag,
        auth: Auth,
        summary: &'static str,
        description: &'static str,
    ) -> Self {
        Self {
            id,
            summary,
            description,
            tag,
            auth,
            query: Vec::new(),
            body: None,
            success: (200, "OK", Content::Json(json!({}))),
            failures: Vec::new(),
        }
    }

    /// 200 with a JSON body of component `schema`.
    fn ok(self, description: &'static str, schema: &str) -> Self {
        self.ok_with(description, Content::Json(r(schema)))
    }

    fn ok_with(mut self, description: &'static str, content: Content) -> Self {
        self.success = (200, description, content);
        self
    }

    /// 101: the WebSocket upgrade.
    fn switching_protocols(mut self) -> Self {
        self.success = (
            101,
            "Switching Protocols: the socket is open.",
            Content::Empty,
        );
        self
    }

    fn query(mut self, param: Param) -> Self {
        self.query.push(param);
        self
    }

    /// A JSON request body of component `schema`.
    fn body(mut self, schema: &str, required: bool) -> Self {
        self.body = Some((r(schema), required));
        self
    }

    fn fail(mut self, status: u16, schema: &'static str, description: impl Into<String>) -> Self {
        self.failures.push(Failure {
            status,
            schema,
            description: description.into(),
        });
        self
    }

    /// The failures of the player bodies (`request::parse_json` and the field checks).
    fn player_body(self) -> Self {
        self.fail(400, ERROR, "The body is nested too deeply to parse.")
            .fail(
                422,
                VALIDATION_ERROR,
                "The body is not valid JSON (checked before authentication), or a field is missing or invalid (checked after it); `detail` lists every problem.",
            )
    }

    /// The failures of an admin body (`request::admin_body`), with what else answers 422.
    fn admin_body(self, invalid: &'static str) -> Self {
        self.fail(400, ERROR, "The body is nested too deeply to parse.")
            .fail(
                422,
                ERROR,
                format!("The body is not a JSON object or a field has the wrong type. {invalid}"),
            )
    }

    /// The failures of a query with `page` and `per_page`.
    fn paged(self) -> Self {
        self.fail(
            422,
            ERROR,
            "`page` or `per_page` is not an integer in its range.",
        )
    }

    /// The invite gate's refusals of a code (`InviteGate::status` and friends).
    fn gate(self) -> Self {
        self.fail(
            400,
            ERROR,
            "`code: malformed`: not a HashPass invite code.",
        )
        .fail(
            403,
            ERROR,
            "`code: bad_signature`: the code was altered or not issued by this site.",
        )
        .fail(
            410,
            ERROR,
            "`code: key_rotated` or `expired`: issued under a key rotated away since, or older than `HASHPASS_INVITE_TTL`.",
        )
        .fail(
            503,
            ERROR,
            "`code: unavailable`: the redemption store is unreachable.",
        )
    }
}

/// The failures every operation of its kind can answer, derived from the endpoint's class in
/// `api.rs` and its authentication.
fn common_failures(endpoint: Endpoint, auth: Auth) -> Vec<Failure> {
    let mut out = Vec::new();
    let mut add = |status, schema, description: &str| {
        out.push(Failure {
            status,
            schema,
            description: description.to_string(),
        })
    };
    let unless = if auth == Auth::AdminUnlessPublic {
        " (unless `HASHPASS_METRICS_PUBLIC`)"
    } else {
        ""
    };
    match auth {
        Auth::None => {}
        Auth::Session => {
            add(
                401,
                ERROR,
                "The `Authorization` header is missing or not `Bearer <token>`, or the session token is unknown, revoked or expired.",
            );
            add(
                403,
                ERROR,
                "The client IP is banned, or the session token is bound to another IP.",
            );
            add(
                503,
                ERROR,
                "The session store, ban list or puzzle state is unavailable: retry.",
            );
        }
        Auth::Admin | Auth::AdminUnlessPublic => {
            add(
                401,
                ERROR,
                &format!(
                    "`ADMIN_TOKEN` is not configured, or the `Authorization` header is missing or not `Bearer <token>`{unless}."
                ),
            );
            add(
                403,
                ERROR,
                &format!(
                    "Wrong admin token{unless}; counted per client IP, the {}th failure in a row locks the IP out.",
                    Config::default().admin.max_failures
                ),
            );
            add(
                429,
                ERROR,
                "The client IP is locked out, or this wrong token was the last one allowed in a row (the lockout starts).",
            );
            add(503, ERROR, "A shared-state backend is unavailable: retry.");
        }
    }
    if endpoint.ua_filtered() {
        add(
            404,
            UA_REFUSED,
            "Refused by the User-Agent filter (a scripted client), unless `HASHPASS_UA_FILTER` is off.",
        );
    }
    add(
        413,
        ERROR,
        &format!(
            "The request body is larger than `HASHPASS_MAX_BODY_BYTES` ({} bytes by default).",
            Config::default().limits.max_body_bytes
        ),
    );
    out
}

fn page_param() -> Param {
    Param {
        name: "page",
        description: "1-based page.",
        required: false,
        schema: json!({ "type": "integer", "minimum": 1, "maximum": u32::MAX, "default": 1 }),
    }
}

fn per_page_param(default: u32, max: u32, description: &'static str) -> Param {
    Param {
        name: "per_page",
        description,
        required: false,
        schema: json!({ "type": "integer", "minimum": 1, "maximum": max, "default": default }),
    }
}

fn search_param(description: &'static str) -> Param {
    Param {
        name: "search",
        description,
        required: false,
        schema: json!({ "type": "string", "default": "" }),
    }
}

fn file_param(default: &str, description: &'static str) -> Param {
    Param {
        name: "file",
        description,
        required: false,
        schema: json!({ "type": "string", "default": default }),
    }
}

/// What the document says about `endpoint`. Exhaustive on purpose: a new endpoint is not
/// served without being documented.
fn operation(endpoint: Endpoint) -> Operation {
    use crate::api::{AdminEndpoint as AE, PublicEndpoint as P};
    use Auth as A;
    use Endpoint as E;
    match endpoint {
        E::Public(P::Health) => Operation::new(
            "health",
            Tag::Public,
            A::None,
            "Liveness",
            "Answers while the puzzle state can be read, with a preview of the current seed.",
        )
        .ok("The service is up.", "Health")
        .fail(503, ERROR, "The puzzle state is unavailable."),
        E::Public(P::TurnstileConfig) => Operation::new(
            "turnstileConfig",
            Tag::Public,
            A::None,
            "Captcha configuration",
            "The Cloudflare Turnstile site key the page renders the widget with, and whether the captcha runs in test mode (offline: any token passes).",
        )
        .ok("The captcha configuration.", "TurnstileConfig"),
        E::Public(P::DevTrace) => Operation::new(
            "devTrace",
            Tag::Public,
            A::None,
            "Offline stand-in for Cloudflare's trace",
            "Served at `/api/dev/trace` and at `/cdn-cgi/trace` (which Cloudflare answers at its edge in production) only with the offline test-mode captcha or `HASHPASS_DEV_TRACE`: a Cloudflare-style trace whose `ip=` line is the client IP as HashPass sees it. The browser sends this text as `traceData`.",
        )
        .ok_with(
            "The trace, one `key=value` per line.",
            Content::Text("fl=0f0\nh=localhost\nip=127.0.0.1\nts=1f2e3d4c5b6a7988\nvisit_scheme=http\nuag=Mozilla/5.0\ncolo=DEV\nsliver=none\nhttp=http/1.1\nloc=CN\ntls=off\nsni=off\nwarp=off\ngateway=off\nrbi=off\nkex=none"),
        )
        .fail(
            404,
            ERROR,
            "Not served: the captcha is not the offline one and `HASHPASS_DEV_TRACE` is off.",
        ),
        E::Public(P::Puzzle) => Operation::new(
            "puzzle",
            Tag::Player,
            A::Session,
            "Get the current puzzle",
            "Binds the session to the device fingerprint on the first call (later calls must name the same one) and returns the puzzle the browser mines: find a nonce whose Argon2d hash (salt `<seed>|<visitorId>|<client IP>`) starts with `difficulty` zero bits.",
        )
        .body("PuzzleRequest", true)
        .ok("The current puzzle.", "Puzzle")
        .player_body()
        .fail(
            403,
            ERROR,
            "The session is bound to another device fingerprint.",
        ),
        E::Public(P::Verify) => Operation::new(
            "verify",
            Tag::Player,
            A::Session,
            "Claim the puzzle with a solution",
            "Checks the solution (identity, current seed, difficulty, rate limit), recomputes its Argon2d hash, and lets the first valid solution for the seed win: it gets an invite code and the puzzle resets for everyone.",
        )
        .body("Solution", true)
        .ok("The solution won.", "Verified")
        .player_body()
        .fail(
            400,
            ERROR,
            "The hash does not meet the difficulty, does not match the recomputation, or cannot be recomputed.",
        )
        .fail(
            403,
            ERROR,
            "The trace's `ip=` line is not the client IP, or the device fingerprint is not the session's.",
        )
        .fail(
            409,
            ERROR,
            "The seed is no longer current: someone else solved it first.",
        )
        .fail(
            429,
            ERROR,
            "Too many verify/submit calls for this session (`HASHPASS_SUBMIT_RATE`).",
        )
        .fail(503, ERROR, "The verifier is busy: retry."),
        E::Public(P::Submit) => Operation::new(
            "submit",
            Tag::Player,
            A::Session,
            "Offer a best hash for a timed-out puzzle",
            "After a puzzle times out, miners may submit the best hash they found for the old seed during the collection window; the verified entry with the most leading zero bits wins an invite code, delivered over the player WebSocket (`TIMEOUT_INVITE_CODE`). One entry per IP.",
        )
        .body("Submission", true)
        .ok("The entry was recorded, or this IP already submitted one.", "Submitted")
        .player_body()
        .fail(
            400,
            ERROR,
            "`leadingZeros` is below 1, the hash has fewer leading zero bits than claimed, or it does not match the recomputation.",
        )
        .fail(
            403,
            ERROR,
            "The trace's `ip=` line is not the client IP, or the device fingerprint is not the session's.",
        )
        .fail(
            409,
            ERROR,
            "No collection window is open, or the seed is not the timed-out puzzle's.",
        )
        .fail(
            429,
            ERROR,
            "Too many verify/submit calls for this session (`HASHPASS_SUBMIT_RATE`).",
        )
        .fail(503, ERROR, "The verifier is busy: retry."),
        E::Public(P::Metrics) => Operation::new(
            "metrics",
            Tag::Monitoring,
            A::AdminUnlessPublic,
            "Prometheus metrics",
            "This instance's metrics in the Prometheus text exposition format. Guarded by the admin token unless `HASHPASS_METRICS_PUBLIC` is set.",
        )
        .ok_with(
            "Prometheus text (`text/plain; charset=utf-8`).",
            Content::Text("# HELP hashpass_puzzles_solved_total Puzzles won by a valid solution.\n# TYPE hashpass_puzzles_solved_total counter\nhashpass_puzzles_solved_total 12\n# HELP hashpass_sessions Stored session tokens.\n# TYPE hashpass_sessions gauge\nhashpass_sessions 3\n"),
        ),
        E::Public(P::OpenApi) => Operation::new(
            "openApi",
            Tag::Public,
            A::None,
            "This document",
            "The OpenAPI 3.1 document of the HTTP API, generated from the endpoint table.",
        )
        .ok_with(
            "The OpenAPI document.",
            Content::Json(json!({ "type": "object", "description": "An OpenAPI 3.1 document." })),
        ),
        E::Admin(AE::Status) => Operation::new(
            "adminStatus",
            Tag::Admin,
            A::Admin,
            "Status snapshot",
            "The puzzle, its settings, the players and the charts: what the admin socket's `STATUS_UPDATE` carries (without `total_hashrate`).",
        )
        .ok("The snapshot.", "AdminStatus"),
        E::Admin(AE::Miners) => Operation::new(
            "adminMiners",
            Tag::Admin,
            A::Admin,
            "Active miners",
            "Miners with a fresh hashrate report, fastest first.",
        )
        .ok_with(
            "The miners.",
            Content::Json(json!({ "type": "array", "items": r("Miner") })),
        ),
        E::Admin(AE::Sessions) => Operation::new(
            "adminSessions",
            Tag::Admin,
            A::Admin,
            "Sessions",
            "Every session in the store, newest first; tokens are shown as previews only.",
        )
        .ok_with(
            "The sessions.",
            Content::Json(json!({ "type": "array", "items": r("Session") })),
        ),
        E::Admin(AE::Logs) => Operation::new(
            "adminLogs",
            Tag::Logs,
            A::Admin,
            "Audit log page",
            "A page of one file of the winners' audit log, newest first; each record says whether (and by whom) its code was redeemed.",
        )
        .query(page_param())
        .query(per_page_param(50, 200, "Records per page."))
        .query(search_param(
            "Case-insensitive substring of a record's JSON; empty matches all.",
        ))
        .query(file_param(
            "verify.jsonl",
            "Audit file, from the page's `files` (the current file, then archives).",
        ))
        .ok("The page.", "LogPage")
        .paged(),
        E::Admin(AE::LogStats) => Operation::new(
            "adminLogStats",
            Tag::Logs,
            A::Admin,
            "Audit log statistics",
            "Totals over every audit file.",
        )
        .ok("The statistics.", "LogStats"),
        E::Admin(AE::AppLogs) => Operation::new(
            "adminAppLogs",
            Tag::Logs,
            A::Admin,
            "Application log page",
            "A page of one application log file, newest line first.",
        )
        .query(page_param())
        .query(per_page_param(100, 500, "Lines per page."))
        .query(search_param("Case-insensitive substring; empty matches all."))
        .query(file_param(
            "hashpass.log",
            "Log file, from the page's `files`; an unknown or empty name shows the newest.",
        ))
        .query(Param {
            name: "level",
            description: "Only lines of this level (such as `INFO`, `WARN`, `ERROR`); empty or `ALL` (any case) for every line.",
            required: false,
            schema: json!({ "type": "string", "default": "" }),
        })
        .ok("The page.", "AppLogPage")
        .paged()
        .fail(503, ERROR, "The log directory cannot be read."),
        E::Admin(AE::Difficulty) => Operation::new(
            "adminSetDifficulty",
            Tag::Admin,
            A::Admin,
            "Set the difficulty and its bounds",
            "Changes the given fields (an empty body changes nothing) and resets the puzzle, which every socket hears.",
        )
        .body("DifficultyChange", false)
        .ok("The new settings.", "DifficultyChanged")
        .admin_body(
            "A value is outside 1..=64, `min_difficulty` exceeds `max_difficulty`, or `difficulty` is outside the bounds.",
        ),
        E::Admin(AE::TargetTime) => Operation::new(
            "adminSetTargetTime",
            Tag::Admin,
            A::Admin,
            "Set the target solve time and the timeout",
            "Changes the given fields (an empty body changes nothing) and resets the puzzle, which every socket hears.",
        )
        .body("TargetTimeChange", false)
        .ok("The new settings.", "TargetTimeChanged")
        .admin_body("A value is below 1, or `target_timeout` is not greater than `target_time`."),
        E::Admin(AE::Argon2) => Operation::new(
            "adminSetArgon2",
            Tag::Admin,
            A::Admin,
            "Set the Argon2 parameters",
            "Changes the given fields (an empty body changes nothing) and resets the puzzle, which every socket hears.",
        )
        .body("Argon2Change", false)
        .ok("The new parameters.", "Argon2Changed")
        .admin_body(
            "`time_cost` or `parallelism` is outside 1..=16, or `memory_cost` outside 8 x parallelism..=1048576.",
        ),
        E::Admin(AE::WorkerCount) => Operation::new(
            "adminSetWorkerCount",
            Tag::Admin,
            A::Admin,
            "Set the browsers' worker count",
            "How many Web Workers each browser mines with; resets the puzzle, which every socket hears.",
        )
        .body("WorkerCountChange", true)
        .ok("The new setting.", "WorkerCountChanged")
        .admin_body("`worker_count` is missing or outside 1..=32."),
        E::Admin(AE::MaxNonceSpeed) => Operation::new(
            "adminSetMaxNonceSpeed",
            Tag::Admin,
            A::Admin,
            "Set the speed limit",
            "Solutions found faster than this many nonces per second are flagged in the log (never refused); 0 disables the check. Does not reset the puzzle.",
        )
        .body("MaxNonceSpeedChange", true)
        .ok("The new setting.", "MaxNonceSpeedChanged")
        .admin_body("`max_nonce_speed` is missing, negative or not finite."),
        E::Admin(AE::ResetPuzzle) => Operation::new(
            "adminResetPuzzle",
            Tag::Admin,
            A::Admin,
            "Reset the puzzle",
            "A new seed at the same settings, which every socket hears; an open timeout collection window is cancelled.",
        )
        .ok("The puzzle was reset.", "PuzzleReset"),
        E::Admin(AE::KickAll) => Operation::new(
            "adminKickAll",
            Tag::Admin,
            A::Admin,
            "Kick everyone",
            "Revokes every session, closes every player socket, forgets the hashrates and resets the puzzle without a broadcast.",
        )
        .ok("Everyone was kicked.", "PuzzleReset"),
        E::Admin(AE::Kick) => Operation::new(
            "adminKick",
            Tag::Admin,
            A::Admin,
            "Ban and kick an IP",
            "Bans the IP, revokes its sessions and closes its sockets.",
        )
        .body("IpRequest", true)
        .ok("The IP was banned.", "Message")
        .admin_body("`ip` is missing or not an IPv4 or IPv6 address.")
        .fail(503, ERROR, "The ban list cannot be updated."),
        E::Admin(AE::Unban) => Operation::new(
            "adminUnban",
            Tag::Admin,
            A::Admin,
            "Unban an IP",
            "Removes the IP from the blacklist; says so if it was not on it.",
        )
        .body("IpRequest", true)
        .ok("The IP is not banned.", "Message")
        .admin_body("`ip` is missing or not an IPv4 or IPv6 address.")
        .fail(503, ERROR, "The ban list cannot be updated."),
        E::Admin(AE::Blacklist) => Operation::new(
            "adminBlacklist",
            Tag::Admin,
            A::Admin,
            "Banned IPs",
            "Every banned IP.",
        )
        .ok_with(
            "The banned IPs.",
            Content::Json(json!({ "type": "array", "items": { "type": "string", "description": "An IPv4 or IPv6 address." } })),
        )
        .fail(503, ERROR, "The ban list cannot be read."),
        E::Admin(AE::Invites) => Operation::new(
            "adminInvites",
            Tag::Invites,
            A::Admin,
            "Invite codes with a history",
            "A page of the codes redeemed, withdrawn or changed, most recent first (codes never touched are not listed).",
        )
        .query(page_param())
        .query(per_page_param(50, 200, "Codes per page."))
        .query(Param {
            name: "state",
            description: "Only codes in this state; absent or empty for all.",
            required: false,
            schema: json!({ "type": "string", "enum": code_states() }),
        })
        .ok("The page.", "InvitePage")
        .paged()
        .fail(422, ERROR, "`state` is not one of the states.")
        .fail(503, ERROR, "The redemption store is unavailable."),
        E::Admin(AE::InviteStatus) => Operation::new(
            "adminInviteStatus",
            Tag::Invites,
            A::Admin,
            "Where a code stands",
            "Its uses (who, when), how many it allows, whether it was withdrawn.",
        )
        .body("InviteRequest", true)
        .ok("The code's state.", "InviteStatus")
        .admin_body("`invite_code` is missing.")
        .gate(),
        E::Admin(AE::InviteRevoke) => Operation::new(
            "adminInviteRevoke",
            Tag::Invites,
            A::Admin,
            "Withdraw a code",
            "Withdraws a code that has uses left: it signs up no more accounts.",
        )
        .body("InviteRequest", true)
        .ok("The code was withdrawn.", "InviteRevoked")
        .admin_body("`invite_code` is missing.")
        .gate()
        .fail(409, ERROR, "The code is already used up or withdrawn."),
        E::Admin(AE::InviteMaxUses) => Operation::new(
            "adminInviteMaxUses",
            Tag::Invites,
            A::Admin,
            "Change how many accounts a code may sign up",
            "Sets the code's total number of uses (uses already made count toward it).",
        )
        .body("InviteMaxUsesRequest", true)
        .ok("The code's new state.", "InviteStatus")
        .admin_body(
            "`invite_code` or `max_uses` is missing, `max_uses` is out of range, or below the uses already made.",
        )
        .gate(),
        E::Admin(AE::ClearSessions) => Operation::new(
            "adminClearSessions",
            Tag::Admin,
            A::Admin,
            "Revoke every session",
            "Revokes every session token and closes the player sockets; players reconnect with a new captcha.",
        )
        .ok("The sessions were cleared.", "Message"),
        E::Admin(AE::RegenerateHmac) => Operation::new(
            "adminRegenerateHmac",
            Tag::Invites,
            A::Admin,
            "Rotate the invite key",
            "Sets the key invite codes are signed with, on every instance: the given hex key, or 256 random bits without one. Codes issued under the old key stop working (`key_rotated`).",
        )
        .body("HmacRequest", false)
        .ok("The key was rotated.", "Message")
        .admin_body("The body's `hmac_secret` is not a string.")
        .fail(
            400,
            ERROR,
            "`hmac_secret` is not hexadecimal or shorter than 16 bytes.",
        ),
    }
}

/// The two WebSockets, documented as the `GET` that upgrades.
fn socket_operation(admin: bool) -> Operation {
    let not_upgrade = "Not a WebSocket upgrade request.";
    if admin {
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
        .fail(400, ERROR, not_upgrade)
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
    } else {
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
        .fail(400, ERROR, not_upgrade)
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
}

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
        let params: Vec<Value> = op
            .query
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "in": "query",
                    "description": p.description,
                    "required": p.required,
                    "schema": p.schema,
                })
            })
            .collect();
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
    responses.insert(status.to_string(), Value::Object(success));
    // One response per status: descriptions joined, schemas `oneOf` when they differ.
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
    out.insert("responses".into(), Value::Object(responses));
    Value::Object(out)
}

/// `{"$ref": "#/components/schemas/<name>"}`.
fn r(name: &str) -> Value {
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

fn code_states() -> Vec<&'static str> {
    CodeState::ALL.iter().map(|s| s.as_str()).collect()
}

fn seed_preview() -> Value {
    t(
        "string",
        "The first 8 characters of the new seed, then `...`.",
    )
}

fn schemas() -> Value {
    let mut s = Map::new();
    let mut add = |name: &str, schema: Value| {
        s.insert(name.to_string(), schema);
    };
    let gate_codes: Vec<&str> = [
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
    .collect();

    // Errors.
    add(
        ERROR,
        object(
            "An error answer.",
            &["detail"],
            vec![
                ("detail", t("string", "What went wrong, for a person.")),
                (
                    "code",
                    json!({ "type": "string", "enum": gate_codes, "description": "The invite gate's machine-readable reason (its refusals only)." }),
                ),
            ],
        ),
    );
    add(
        VALIDATION_ERROR,
        object(
            "A player body's field errors (pydantic's shape).",
            &["detail"],
            vec![(
                "detail",
                array(r("ValidationIssue"), "Every problem found."),
            )],
        ),
    );
    add(
        "ValidationIssue",
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
        ),
    );
    add(
        UA_REFUSED,
        record(
            "The User-Agent filter's refusal.",
            vec![("error", json!({ "const": "Not found" }))],
        ),
    );

    // Public.
    add(
        "Health",
        record(
            "The service is up.",
            vec![
                ("status", json!({ "const": "ok" })),
                (
                    "current_seed",
                    t("string", "The first 8 characters of the seed, then `...`."),
                ),
            ],
        ),
    );
    add(
        "TurnstileConfig",
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
        ),
    );

    // Player.
    let visitor_id = json!({
        "type": "string",
        "description": "Device fingerprint.",
        "minLength": 1,
        "maxLength": MAX_VISITOR_ID_LEN,
        "pattern": format!("^[A-Za-z0-9_-]{{1,{MAX_VISITOR_ID_LEN}}}$"),
    });
    add(
        "PuzzleRequest",
        record(
            "Body of `POST /api/puzzle`.",
            vec![("visitorId", visitor_id.clone())],
        ),
    );
    add(
        "Solution",
        record(
            "A solution (body of `POST /api/verify`).",
            vec![
                ("visitorId", visitor_id),
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
        ),
    );
    add(
        "Submission",
        json!({
            "description": "Body of `POST /api/submit`: a solution for the timed-out seed and the leading zero bits its hash has.",
            "allOf": [
                r("Solution"),
                record("The claim.", vec![(
                    "leadingZeros",
                    int("Leading zero bits the hash has (below 1 is a 400).", 0, 256),
                )]),
            ],
        }),
    );
    add(
        "Puzzle",
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
        ),
    );
    add(
        "Verified",
        record(
            "The win.",
            vec![("invite_code", t("string", "The invite code won."))],
        ),
    );
    add(
        "Submitted",
        record(
            "The entry's fate.",
            vec![(
                "status",
                json!({ "type": "string", "enum": ["submitted", "already_submitted"] }),
            )],
        ),
    );

    // Admin.
    let chart = |value: &str, description: &str| {
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
    };
    add(
        "AdminStatus",
        record(
            "The status snapshot.",
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
            ],
        ),
    );
    add(
        "Miner",
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
        ),
    );
    add(
        "Session",
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
        ),
    );
    add(
        "AuditRecord",
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
        ),
    );
    add(
        "LogPage",
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
        ),
    );
    add(
        "LogStats",
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
        ),
    );
    add(
        "AppLogPage",
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
        ),
    );
    let difficulty = || int("Leading zero bits.", 1, 64);
    add(
        "DifficultyChange",
        object(
            "Body of `POST /api/admin/difficulty`: absent fields keep their value.",
            &[],
            vec![
                ("difficulty", difficulty()),
                ("min_difficulty", difficulty()),
                ("max_difficulty", difficulty()),
            ],
        ),
    );
    add(
        "DifficultyChanged",
        record(
            "The new difficulty settings.",
            vec![
                ("difficulty", t("integer", "Difficulty.")),
                ("min_difficulty", t("integer", "Lower bound.")),
                ("max_difficulty", t("integer", "Upper bound.")),
                ("new_seed", seed_preview()),
            ],
        ),
    );
    let seconds = || int("Seconds.", 1, u64::from(u32::MAX));
    add(
        "TargetTimeChange",
        object(
            "Body of `POST /api/admin/target-time`: absent fields keep their value; `target_timeout` must stay greater than `target_time`.",
            &[],
            vec![("target_time", seconds()), ("target_timeout", seconds())],
        ),
    );
    add(
        "TargetTimeChanged",
        record(
            "The new times.",
            vec![
                ("target_time", t("integer", "Target solve time, seconds.")),
                ("target_timeout", t("integer", "Timeout, seconds.")),
                ("new_seed", seed_preview()),
            ],
        ),
    );
    add(
        "Argon2Change",
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
        ),
    );
    add(
        "Argon2Changed",
        record(
            "The new parameters.",
            vec![
                ("time_cost", t("integer", "Passes.")),
                ("memory_cost", t("integer", "Memory, KiB.")),
                ("parallelism", t("integer", "Lanes.")),
                ("new_seed", seed_preview()),
            ],
        ),
    );
    add(
        "WorkerCountChange",
        record(
            "Body of `POST /api/admin/worker-count`.",
            vec![("worker_count", int("Web Workers per browser.", 1, 32))],
        ),
    );
    add(
        "WorkerCountChanged",
        record(
            "The new worker count.",
            vec![
                ("worker_count", t("integer", "Web Workers per browser.")),
                ("new_seed", seed_preview()),
            ],
        ),
    );
    add(
        "MaxNonceSpeedChange",
        record(
            "Body of `POST /api/admin/max-nonce-speed`.",
            vec![(
                "max_nonce_speed",
                json!({ "type": "number", "minimum": 0, "description": "Nonces per second above which a solution is flagged; 0 disables the check." }),
            )],
        ),
    );
    add(
        "MaxNonceSpeedChanged",
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
        ),
    );
    add(
        "PuzzleReset",
        record(
            "The puzzle was reset.",
            vec![
                ("message", t("string", "What was done.")),
                ("new_seed", seed_preview()),
            ],
        ),
    );
    add(
        "Message",
        record(
            "What was done.",
            vec![("message", t("string", "What was done, for a person."))],
        ),
    );
    add(
        "IpRequest",
        record(
            "Body of `POST /api/admin/kick` and `/api/admin/unban`.",
            vec![("ip", t("string", "An IPv4 or IPv6 address."))],
        ),
    );

    // Invites.
    add(
        "InviteRequest",
        record(
            "Names an invite code.",
            vec![(
                "invite_code",
                t("string", "The invite code, as the winner received it."),
            )],
        ),
    );
    add(
        "InviteMaxUsesRequest",
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
        ),
    );
    add(
        "CodeStatus",
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
        ),
    );
    add(
        "CodeUse",
        record(
            "One account signed up with a code.",
            vec![
                ("user_id", t("string", "The host site's account.")),
                ("used_at", t("number", "Unix seconds.")),
            ],
        ),
    );
    add(
        "InvitePage",
        record(
            "A page of invite codes, most recently changed first.",
            vec![
                ("codes", array(r("CodeStatus"), "The codes.")),
                ("total", t("integer", "Matching codes.")),
                ("page", t("integer", "This page.")),
                ("pages", t("integer", "Number of pages, at least 1.")),
            ],
        ),
    );
    add(
        "InviteStatus",
        record("One code's state.", vec![("invite", r("CodeStatus"))]),
    );
    add(
        "InviteRevoked",
        record(
            "The code was withdrawn.",
            vec![
                ("message", t("string", "`Invite code withdrawn`.")),
                ("invite", r("CodeStatus")),
            ],
        ),
    );
    add(
        "HmacRequest",
        object(
            "Body of `POST /api/admin/regenerate-hmac`: without `hmac_secret`, a random 256-bit key.",
            &[],
            vec![(
                "hmac_secret",
                json!({ "type": "string", "pattern": "^\\s*([0-9A-Fa-f]{2}){16,}\\s*$", "description": "The new key, hexadecimal, at least 16 bytes." }),
            )],
        ),
    );
    Value::Object(s)
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
        for (method, path, endpoint) in ENDPOINTS {
            let op = &doc["paths"][*path][method.as_str().to_ascii_lowercase()];
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
