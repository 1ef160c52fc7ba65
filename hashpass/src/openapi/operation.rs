//! What the document says about one operation, and the builder the endpoint table writes it
//! with.

use serde_json::{Value, json};

use super::schemas::r;

/// What a client needs to call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
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
pub(crate) enum Tag {
    Public,
    Player,
    Monitoring,
    Admin,
    Logs,
    Invites,
}

impl Tag {
    pub(crate) const ALL: [Tag; 6] = [
        Tag::Public,
        Tag::Player,
        Tag::Monitoring,
        Tag::Admin,
        Tag::Logs,
        Tag::Invites,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Tag::Public => "public",
            Tag::Player => "player",
            Tag::Monitoring => "monitoring",
            Tag::Admin => "admin",
            Tag::Logs => "logs",
            Tag::Invites => "invites",
        }
    }

    pub(crate) fn description(self) -> &'static str {
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
pub(crate) struct Param {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) required: bool,
    pub(crate) schema: Value,
}

/// What a successful call answers.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// `application/json` with this schema.
    Json(Value),
    /// `text/plain` with this example.
    Text(&'static str),
    /// No body (the WebSocket upgrade).
    Empty,
}

/// An error answer: a status, when it happens, and the component schema of its body.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) status: u16,
    pub(crate) schema: &'static str,
    pub(crate) description: String,
}

impl Failure {
    /// Status `status` with a body of component `schema`, happening as `description` says.
    pub(crate) fn new(status: u16, schema: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            schema,
            description: description.into(),
        }
    }
}

/// Everything the document says about one operation.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub(crate) id: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) description: &'static str,
    pub(crate) tag: Tag,
    pub(crate) auth: Auth,
    pub(crate) query: Vec<Param>,
    /// The request body's schema and whether it is required.
    pub(crate) body: Option<(Value, bool)>,
    pub(crate) success: (u16, &'static str, Content),
    pub(crate) failures: Vec<Failure>,
}

pub(crate) const ERROR: &str = "Error";
pub(crate) const VALIDATION_ERROR: &str = "ValidationError";
pub(crate) const UA_REFUSED: &str = "UserAgentRefused";

impl Operation {
    pub(crate) fn new(
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
    pub(crate) fn ok(self, description: &'static str, schema: &str) -> Self {
        self.ok_with(description, Content::Json(r(schema)))
    }

    pub(crate) fn ok_with(mut self, description: &'static str, content: Content) -> Self {
        self.success = (200, description, content);
        self
    }

    /// 101: the WebSocket upgrade.
    pub(crate) fn switching_protocols(mut self) -> Self {
        self.success = (
            101,
            "Switching Protocols: the socket is open.",
            Content::Empty,
        );
        self
    }

    pub(crate) fn query(mut self, param: Param) -> Self {
        self.query.push(param);
        self
    }

    /// A JSON request body of component `schema`.
    pub(crate) fn body(mut self, schema: &str, required: bool) -> Self {
        self.body = Some((r(schema), required));
        self
    }

    pub(crate) fn fail(
        mut self,
        status: u16,
        schema: &'static str,
        description: impl Into<String>,
    ) -> Self {
        self.failures
            .push(Failure::new(status, schema, description));
        self
    }

    /// The failures of the player bodies (`request::parse_json` and the field checks).
    pub(crate) fn player_body(self) -> Self {
        self.fail(400, ERROR, "The body is nested too deeply to parse.")
            .fail(
                422,
                VALIDATION_ERROR,
                "The body is not valid JSON (checked before authentication), or a field is missing or invalid (checked after it); `detail` lists every problem.",
            )
    }

    /// The failures of checking a solution (verify and submit): identity, rate limit, verifier.
    pub(crate) fn solution_checks(self) -> Self {
        self.fail(
            403,
            ERROR,
            "The trace's `ip=` line is not the client IP, or the device fingerprint is not the session's.",
        )
        .fail(
            429,
            ERROR,
            "Too many verify/submit calls for this session (`HASHPASS_SUBMIT_RATE`).",
        )
        .fail(503, ERROR, "The verifier is busy: retry.")
    }

    /// The failures of an admin body (`request::admin_body`), with what else answers 422.
    pub(crate) fn admin_body(self, invalid: &'static str) -> Self {
        self.fail(400, ERROR, "The body is nested too deeply to parse.")
            .fail(
                422,
                ERROR,
                format!("The body is not a JSON object or a field has the wrong type. {invalid}"),
            )
    }

    /// The failures of a query with `page` and `per_page`.
    pub(crate) fn paged(self) -> Self {
        self.fail(
            422,
            ERROR,
            "`page` or `per_page` is not an integer in its range.",
        )
    }

    /// The invite gate's refusals of a code (`InviteGate::status` and friends).
    pub(crate) fn gate(self) -> Self {
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

pub(crate) fn page_param() -> Param {
    Param {
        name: "page",
        description: "1-based page.",
        required: false,
        schema: json!({ "type": "integer", "minimum": 1, "maximum": u32::MAX, "default": 1 }),
    }
}

pub(crate) fn per_page_param(default: u32, max: u32, description: &'static str) -> Param {
    Param {
        name: "per_page",
        description,
        required: false,
        schema: json!({ "type": "integer", "minimum": 1, "maximum": max, "default": default }),
    }
}

pub(crate) fn search_param(description: &'static str) -> Param {
    Param {
        name: "search",
        description,
        required: false,
        schema: json!({ "type": "string", "default": "" }),
    }
}

pub(crate) fn file_param(default: &str, description: &'static str) -> Param {
    Param {
        name: "file",
        description,
        required: false,
        schema: json!({ "type": "string", "default": default }),
    }
}
