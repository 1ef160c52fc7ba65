//! The endpoint table: every HTTP route HashPass serves — its method, its path relative to the
//! mount point, the [`Endpoint`] that names it, and what the OpenAPI document says about it —
//! in one row each. Adapters route the rows, `api` dispatches on the [`Endpoint`] with
//! exhaustive matches (no catch-all arm, so a new variant without a handler does not compile),
//! and [`crate::openapi::document`] renders the rows' documentation.

use http::Method;
use serde_json::json;

use crate::openapi::operation::{
    Auth as A, Content, ERROR, Operation, Param, Tag, file_param, page_param, per_page_param,
    search_param,
};
use crate::openapi::schemas::{code_states, r};

/// Every HTTP endpoint (the two WebSockets are admitted separately, see [`crate::HashPass::admit_player`]):
/// public, or behind the admin token. Both levels are matched exhaustively, so a new endpoint
/// without a handler does not compile; its row in [`ENDPOINTS`] documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Open to miners (the User-Agent filter applies to most).
    Public(PublicEndpoint),
    /// Behind the admin token (`/api/admin/...`).
    Admin(AdminEndpoint),
}

/// The public endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum PublicEndpoint {
    Health,
    Live,
    Ready,
    TurnstileConfig,
    DevTrace,
    Puzzle,
    Verify,
    Submit,
    Metrics,
    OpenApi,
}

/// The admin endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum AdminEndpoint {
    Status,
    Miners,
    Sessions,
    Logs,
    LogStats,
    AppLogs,
    Difficulty,
    TargetTime,
    Argon2,
    WorkerCount,
    MaxNonceSpeed,
    ResetPuzzle,
    KickAll,
    Kick,
    Unban,
    Blacklist,
    Invites,
    InviteStatus,
    InviteRevoke,
    InviteMaxUses,
    ClearSessions,
    RegenerateHmac,
    Webhooks,
    WebhooksRetry,
}

/// Path of the player WebSocket.
pub const PLAYER_WS_PATH: &str = "/api/ws";
/// Path of the admin WebSocket.
pub const ADMIN_WS_PATH: &str = "/api/admin/ws";

/// One HTTP route: method, path (relative to where HashPass is mounted), the endpoint it
/// serves and its OpenAPI operation.
#[derive(Clone)]
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path, relative to the mount point.
    pub path: &'static str,
    /// What the route serves.
    pub endpoint: Endpoint,
    /// What the OpenAPI document says about it.
    pub(crate) doc: fn() -> Operation,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// The refusal of a redemption change on an instance whose redemptions live in memory only.
const VOLATILE_REDEMPTIONS: &str = "The instance keeps redemptions in memory only (no data directory, Redis or SQL store), so a restart would undo the change; `detail` says what to configure.";

/// Every HTTP route, one row each.
pub const ENDPOINTS: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/api/health",
        endpoint: Endpoint::Public(PublicEndpoint::Health),
        doc: || {
            Operation::new(
                "health",
                Tag::Public,
                A::None,
                "Liveness",
                "Answers while the puzzle state can be read, with a preview of the current seed.",
            )
            .ok("The service is up.", "Health")
            .fail(503, ERROR, "The puzzle state is unavailable.")
        },
    },
    Route {
        method: Method::GET,
        path: "/api/health/live",
        endpoint: Endpoint::Public(PublicEndpoint::Live),
        doc: || {
            Operation::new(
                "live",
                Tag::Public,
                A::None,
                "Liveness probe",
                "Answers 200 whenever the process serves HTTP, whatever its stores say: restart the instance only when this fails.",
            )
            .ok("The process serves.", "Live")
        },
    },
    Route {
        method: Method::GET,
        path: "/api/health/ready",
        endpoint: Endpoint::Public(PublicEndpoint::Ready),
        doc: || {
            Operation::new(
                "ready",
                Tag::Public,
                A::None,
                "Readiness probe",
                "Answers 200 when the instance should get traffic: its stores (the puzzle state and the sessions) answer and it is not shutting down. Otherwise 503: route visitors elsewhere, but do not restart it.",
            )
            .ok("The instance is ready.", "Ready")
            .fail(503, ERROR, "A store does not answer, or the instance is shutting down.")
        },
    },
    Route {
        method: Method::GET,
        path: "/api/turnstile/config",
        endpoint: Endpoint::Public(PublicEndpoint::TurnstileConfig),
        doc: || {
            Operation::new(
                "turnstileConfig",
                Tag::Public,
                A::None,
                "Captcha configuration",
                "The Cloudflare Turnstile site key the page renders the widget with, and whether the captcha runs in test mode (offline: any token passes).",
            )
            .ok("The captcha configuration.", "TurnstileConfig")
        },
    },
    Route {
        method: Method::GET,
        path: "/api/dev/trace",
        endpoint: Endpoint::Public(PublicEndpoint::DevTrace),
        doc: dev_trace,
    },
    // Cloudflare answers this path at its edge; offline, we answer it, so the browser's first
    // try succeeds instead of logging a 404 before its fallback.
    Route {
        method: Method::GET,
        path: "/cdn-cgi/trace",
        endpoint: Endpoint::Public(PublicEndpoint::DevTrace),
        doc: dev_trace,
    },
    Route {
        method: Method::POST,
        path: "/api/puzzle",
        endpoint: Endpoint::Public(PublicEndpoint::Puzzle),
        doc: || {
            Operation::new(
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
            )
        },
    },
    Route {
        method: Method::POST,
        path: "/api/verify",
        endpoint: Endpoint::Public(PublicEndpoint::Verify),
        doc: || {
            Operation::new(
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
            .fail(409, ERROR, "The seed is no longer current: someone else solved it first.")
            .solution_checks()
        },
    },
    Route {
        method: Method::POST,
        path: "/api/submit",
        endpoint: Endpoint::Public(PublicEndpoint::Submit),
        doc: || {
            Operation::new(
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
            .fail(409, ERROR, "No collection window is open, or the seed is not the timed-out puzzle's.")
            .solution_checks()
        },
    },
    Route {
        method: Method::GET,
        path: "/api/metrics",
        endpoint: Endpoint::Public(PublicEndpoint::Metrics),
        doc: || {
            Operation::new(
                "metrics",
                Tag::Monitoring,
                A::AdminUnlessPublic,
                "Prometheus metrics",
                "This instance's metrics in the Prometheus text exposition format. Guarded by the admin token unless `HASHPASS_METRICS_PUBLIC` is set.",
            )
            .ok_with(
                "Prometheus text (`text/plain; charset=utf-8`).",
                Content::Text("# HELP hashpass_puzzles_solved_total Puzzles won by a valid solution.\n# TYPE hashpass_puzzles_solved_total counter\nhashpass_puzzles_solved_total 12\n# HELP hashpass_sessions Stored session tokens.\n# TYPE hashpass_sessions gauge\nhashpass_sessions 3\n"),
            )
        },
    },
    Route {
        method: Method::GET,
        path: "/api/openapi.json",
        endpoint: Endpoint::Public(PublicEndpoint::OpenApi),
        doc: || {
            Operation::new(
                "openApi",
                Tag::Public,
                A::None,
                "This document",
                "The OpenAPI 3.1 document of the HTTP API, generated from the endpoint table.",
            )
            .ok_with(
                "The OpenAPI document.",
                Content::Json(
                    json!({ "type": "object", "description": "An OpenAPI 3.1 document." }),
                ),
            )
        },
    },
    Route {
        method: Method::GET,
        path: "/api/admin/status",
        endpoint: Endpoint::Admin(AdminEndpoint::Status),
        doc: || {
            Operation::new(
                "adminStatus",
                Tag::Admin,
                A::Admin,
                "Status snapshot",
                "The puzzle, its settings, the players and the charts: what the admin socket's `STATUS_UPDATE` carries (without `total_hashrate`).",
            )
            .ok("The snapshot.", "AdminStatus")
        },
    },
    Route {
        method: Method::GET,
        path: "/api/admin/miners",
        endpoint: Endpoint::Admin(AdminEndpoint::Miners),
        doc: || {
            Operation::new(
                "adminMiners",
                Tag::Admin,
                A::Admin,
                "Active miners",
                "Miners with a fresh hashrate report, fastest first.",
            )
            .ok_with(
                "The miners.",
                Content::Json(json!({ "type": "array", "items": r("Miner") })),
            )
        },
    },
    Route {
        method: Method::GET,
        path: "/api/admin/sessions",
        endpoint: Endpoint::Admin(AdminEndpoint::Sessions),
        doc: || {
            Operation::new(
                "adminSessions",
                Tag::Admin,
                A::Admin,
                "Sessions",
                "Every session in the store, newest first; tokens are shown as previews only.",
            )
            .ok_with(
                "The sessions.",
                Content::Json(json!({ "type": "array", "items": r("Session") })),
            )
        },
    },
    Route {
        method: Method::GET,
        path: "/api/admin/logs",
        endpoint: Endpoint::Admin(AdminEndpoint::Logs),
        doc: || {
            Operation::new(
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
            .paged()
        },
    },
    Route {
        method: Method::GET,
        path: "/api/admin/logs/stats",
        endpoint: Endpoint::Admin(AdminEndpoint::LogStats),
        doc: || {
            Operation::new(
                "adminLogStats",
                Tag::Logs,
                A::Admin,
                "Audit log statistics",
                "Totals over every audit file.",
            )
            .ok("The statistics.", "LogStats")
        },
    },
    Route {
        method: Method::GET,
        path: "/api/admin/applogs",
        endpoint: Endpoint::Admin(AdminEndpoint::AppLogs),
        doc: || {
            Operation::new(
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
            .fail(503, ERROR, "The log directory cannot be read.")
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/difficulty",
        endpoint: Endpoint::Admin(AdminEndpoint::Difficulty),
        doc: || {
            Operation::new(
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
            )
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/target-time",
        endpoint: Endpoint::Admin(AdminEndpoint::TargetTime),
        doc: || {
            Operation::new(
                "adminSetTargetTime",
                Tag::Admin,
                A::Admin,
                "Set the target solve time and the timeout",
                "Changes the given fields (an empty body changes nothing) and resets the puzzle, which every socket hears.",
            )
            .body("TargetTimeChange", false)
            .ok("The new settings.", "TargetTimeChanged")
            .admin_body("A value is below 1, or `target_timeout` is not greater than `target_time`.")
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/argon2",
        endpoint: Endpoint::Admin(AdminEndpoint::Argon2),
        doc: || {
            Operation::new(
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
            )
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/worker-count",
        endpoint: Endpoint::Admin(AdminEndpoint::WorkerCount),
        doc: || {
            Operation::new(
                "adminSetWorkerCount",
                Tag::Admin,
                A::Admin,
                "Set the browsers' worker count",
                "How many Web Workers each browser mines with; resets the puzzle, which every socket hears.",
            )
            .body("WorkerCountChange", true)
            .ok("The new setting.", "WorkerCountChanged")
            .admin_body("`worker_count` is missing or outside 1..=32.")
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/max-nonce-speed",
        endpoint: Endpoint::Admin(AdminEndpoint::MaxNonceSpeed),
        doc: || {
            Operation::new(
                "adminSetMaxNonceSpeed",
                Tag::Admin,
                A::Admin,
                "Set the speed limit",
                "Solutions found faster than this many nonces per second are flagged in the log (never refused); 0 disables the check. Does not reset the puzzle.",
            )
            .body("MaxNonceSpeedChange", true)
            .ok("The new setting.", "MaxNonceSpeedChanged")
            .admin_body("`max_nonce_speed` is missing, negative or not finite.")
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/reset-puzzle",
        endpoint: Endpoint::Admin(AdminEndpoint::ResetPuzzle),
        doc: || {
            Operation::new(
                "adminResetPuzzle",
                Tag::Admin,
                A::Admin,
                "Reset the puzzle",
                "A new seed at the same settings, which every socket hears; an open timeout collection window is cancelled.",
            )
            .ok("The puzzle was reset.", "PuzzleReset")
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/kick-all",
        endpoint: Endpoint::Admin(AdminEndpoint::KickAll),
        doc: || {
            Operation::new(
                "adminKickAll",
                Tag::Admin,
                A::Admin,
                "Kick everyone",
                "Revokes every session, closes every player socket, forgets the hashrates and resets the puzzle without a broadcast.",
            )
            .ok("Everyone was kicked.", "PuzzleReset")
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/kick",
        endpoint: Endpoint::Admin(AdminEndpoint::Kick),
        doc: || {
            Operation::new(
                "adminKick",
                Tag::Admin,
                A::Admin,
                "Ban and kick an IP",
                "Bans the IP, revokes its sessions and closes its sockets.",
            )
            .body("IpRequest", true)
            .ok("The IP was banned.", "Message")
            .admin_body("`ip` is missing or not an IPv4 or IPv6 address.")
            .fail(503, ERROR, "The ban list cannot be updated.")
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/unban",
        endpoint: Endpoint::Admin(AdminEndpoint::Unban),
        doc: || {
            Operation::new(
                "adminUnban",
                Tag::Admin,
                A::Admin,
                "Unban an IP",
                "Removes the IP from the blacklist; says so if it was not on it.",
            )
            .body("IpRequest", true)
            .ok("The IP is not banned.", "Message")
            .admin_body("`ip` is missing or not an IPv4 or IPv6 address.")
            .fail(503, ERROR, "The ban list cannot be updated.")
        },
    },
    Route {
        method: Method::GET,
        path: "/api/admin/invites",
        endpoint: Endpoint::Admin(AdminEndpoint::Invites),
        doc: || {
            Operation::new(
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
            .fail(503, ERROR, "The redemption store is unavailable.")
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/invites/status",
        endpoint: Endpoint::Admin(AdminEndpoint::InviteStatus),
        doc: || {
            Operation::new(
                "adminInviteStatus",
                Tag::Invites,
                A::Admin,
                "Where a code stands",
                "Its uses (who, when), how many it allows, whether it was withdrawn.",
            )
            .body("InviteRequest", true)
            .ok("The code's state.", "InviteStatus")
            .admin_body("`invite_code` is missing.")
            .gate()
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/invites/revoke",
        endpoint: Endpoint::Admin(AdminEndpoint::InviteRevoke),
        doc: || {
            Operation::new(
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
            .fail(409, ERROR, "The code is already used up or withdrawn.")
            .fail(409, ERROR, VOLATILE_REDEMPTIONS)
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/invites/max-uses",
        endpoint: Endpoint::Admin(AdminEndpoint::InviteMaxUses),
        doc: || {
            Operation::new(
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
            .gate()
            .fail(409, ERROR, VOLATILE_REDEMPTIONS)
        },
    },
    Route {
        method: Method::GET,
        path: "/api/admin/blacklist",
        endpoint: Endpoint::Admin(AdminEndpoint::Blacklist),
        doc: || {
            Operation::new(
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
            .fail(503, ERROR, "The ban list cannot be read.")
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/clear-sessions",
        endpoint: Endpoint::Admin(AdminEndpoint::ClearSessions),
        doc: || {
            Operation::new(
                "adminClearSessions",
                Tag::Admin,
                A::Admin,
                "Revoke every session",
                "Revokes every session token and closes the player sockets; players reconnect with a new captcha.",
            )
            .ok("The sessions were cleared.", "Message")
        },
    },
    Route {
        method: Method::GET,
        path: "/api/admin/webhooks",
        endpoint: Endpoint::Admin(AdminEndpoint::Webhooks),
        doc: || {
            Operation::new(
                "adminWebhooks",
                Tag::Admin,
                A::Admin,
                "The webhook outbox",
                "How many deliveries wait and how many were given up, with up to `limit` of each: pending ones soonest due first, failed ones oldest first.",
            )
            .query(Param {
                name: "limit",
                description: "Deliveries listed of each kind.",
                required: false,
                schema: json!({ "type": "integer", "minimum": 0, "maximum": 1000, "default": 100 }),
            })
            .ok("The outbox.", "WebhookOutbox")
            .fail(422, ERROR, "`limit` is not an integer in its range.")
            .fail(503, ERROR, "The outbox's store is unavailable.")
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/webhooks/retry",
        endpoint: Endpoint::Admin(AdminEndpoint::WebhooksRetry),
        doc: || {
            Operation::new(
                "adminWebhooksRetry",
                Tag::Admin,
                A::Admin,
                "Retry the failed webhook deliveries",
                "Moves every given-up delivery back to pending, due at once (the receiver is fixed).",
            )
            .ok("How many were requeued.", "Message")
            .fail(503, ERROR, "The outbox's store is unavailable.")
        },
    },
    Route {
        method: Method::POST,
        path: "/api/admin/regenerate-hmac",
        endpoint: Endpoint::Admin(AdminEndpoint::RegenerateHmac),
        doc: || {
            Operation::new(
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
            )
            .fail(
                409,
                ERROR,
                "The instance keeps its invite keys in memory only (no data directory, no Redis), so a restart would bring the old key back; `detail` says what to configure.",
            )
        },
    },
];

/// The trace, served at two paths.
fn dev_trace() -> Operation {
    Operation::new(
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
        )
}

impl Endpoint {
    /// Whether the User-Agent filter applies (docs/protocol.md#user-agent-filter: public `/api/*` except health and trace).
    pub fn ua_filtered(self) -> bool {
        use PublicEndpoint as P;
        match self {
            Endpoint::Admin(_)
            | Endpoint::Public(
                P::Health | P::Live | P::Ready | P::DevTrace | P::Metrics | P::OpenApi,
            ) => false,
            Endpoint::Public(P::TurnstileConfig | P::Puzzle | P::Verify | P::Submit) => true,
        }
    }

    /// Whether the admin token guards it.
    pub fn is_admin(self) -> bool {
        matches!(self, Endpoint::Admin(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_classes() {
        assert!(Endpoint::Public(PublicEndpoint::Puzzle).ua_filtered());
        assert!(!Endpoint::Public(PublicEndpoint::Health).ua_filtered());
        assert!(!Endpoint::Admin(AdminEndpoint::Kick).ua_filtered());
        assert!(Endpoint::Admin(AdminEndpoint::Kick).is_admin());
        assert!(!Endpoint::Public(PublicEndpoint::Metrics).is_admin());
        for Route { path, endpoint, .. } in ENDPOINTS {
            assert_eq!(
                endpoint.is_admin(),
                path.starts_with("/api/admin/"),
                "{path}: the admin token guards exactly the admin paths"
            );
        }
    }
}
