//! The WebSocket messages of docs/protocol.md#messages-from-the-server, serialised exactly as the original does:
//! `SESSION_TOKEN` and `STATUS_UPDATE` compactly, `PONG`, `PUZZLE_RESET`, `NETWORK_HASHRATE`
//! (and our `TIMEOUT_INVITE_CODE`, `ERROR`) with Python's default `", "` / `": "` separators.

use std::io;

use serde::Serialize;
use serde_json::json;
use serde_json::ser::Formatter;

use crate::util::round_dp;

/// Close code: policy violation (replaced by a newer socket, too slow).
pub(crate) const CLOSE_POLICY: u16 = 1008;
/// Close reason of a socket whose session was revoked because its address opened more
/// sessions than it may (docs/protocol.md#session-budget).
pub(crate) const TOO_MANY_SESSIONS: &str = "Too many sessions from your address";
/// Close code: going away (this instance shuts down, or lost its liveness lease): the page
/// reconnects, to another instance behind a balancer (docs/protocol.md#graceful-shutdown).
pub(crate) const CLOSE_GOING_AWAY: u16 = 1001;
/// Close reason of a graceful shutdown.
pub(crate) const SHUTTING_DOWN: &str = "Server shutting down, reconnect";
/// Close reason of an instance whose liveness lease had lapsed.
pub(crate) const RECONNECT: &str = "Reconnect";
/// Close code: message too big.
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;

/// serde_json formatter reproducing Python's `json.dumps` default separators.
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// Serialises with Python's default separators.
pub(crate) fn to_python_json(value: &impl Serialize) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value
        .serialize(&mut ser)
        .expect("serialising a JSON value into memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// `{"type":"SESSION_TOKEN","token":...}` (compact).
pub(crate) fn session_token(token: &str) -> String {
    json!({ "type": "SESSION_TOKEN", "token": token }).to_string()
}

/// `{"type": "PONG", "online": n}`.
pub(crate) fn pong(online: usize) -> String {
    to_python_json(&json!({ "type": "PONG", "online": online }))
}

/// `{"type": "PUZZLE_RESET", ...}`.
pub(crate) fn puzzle_reset(
    seed: &str,
    difficulty: u32,
    solve_time: Option<f64>,
    average_solve_time: Option<f64>,
    puzzle_start_time: f64,
    is_timeout: bool,
) -> String {
    to_python_json(&json!({
        "type": "PUZZLE_RESET",
        "seed": seed,
        "difficulty": difficulty,
        "solve_time": solve_time.map(|t| round_dp(t, 2)),
        "average_solve_time": average_solve_time.map(|t| round_dp(t, 2)),
        "puzzle_start_time": puzzle_start_time,
        "is_timeout": is_timeout,
    }))
}

/// `{"type": "NETWORK_HASHRATE", ...}`.
pub(crate) fn network_hashrate(
    total_hashrate: f64,
    active_miners: usize,
    timestamp: f64,
) -> String {
    to_python_json(&json!({
        "type": "NETWORK_HASHRATE",
        "total_hashrate": round_dp(total_hashrate, 2),
        "active_miners": active_miners,
        "timestamp": timestamp,
    }))
}

/// `{"type": "TIMEOUT_INVITE_CODE", "invite_code": ..., "leading_zeros": n}`.
pub(crate) fn timeout_invite_code(invite_code: &str, leading_zeros: u32) -> String {
    to_python_json(&json!({
        "type": "TIMEOUT_INVITE_CODE",
        "invite_code": invite_code,
        "leading_zeros": leading_zeros,
    }))
}

/// `{"type": "ERROR", "detail": ...}`.
pub(crate) fn error(detail: &str) -> String {
    to_python_json(&json!({ "type": "ERROR", "detail": detail }))
}

/// `{"type":"STATUS_UPDATE", <snapshot fields>, "total_hashrate": x}` (compact).
pub(crate) fn status_update(snapshot: &impl serde::Serialize, total_hashrate: f64) -> String {
    #[derive(serde::Serialize)]
    struct StatusUpdate<'a, S> {
        r#type: &'static str,
        #[serde(flatten)]
        snapshot: &'a S,
        total_hashrate: f64,
    }
    let update = StatusUpdate {
        r#type: "STATUS_UPDATE",
        snapshot,
        total_hashrate: round_dp(total_hashrate, 2),
    };
    serde_json::to_string(&update).unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not encode a STATUS_UPDATE");
        String::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn python_separators() {
        assert_eq!(pong(3), r#"{"type": "PONG", "online": 3}"#);
        assert_eq!(
            to_python_json(&json!({"a": [1, 2], "b": {"c": null}})),
            r#"{"a": [1, 2], "b": {"c": null}}"#
        );
        assert_eq!(
            session_token("t"),
            r#"{"type":"SESSION_TOKEN","token":"t"}"#
        );
    }

    #[test]
    fn reset_message_fields() {
        let m: Value =
            serde_json::from_str(&puzzle_reset("ab", 7, Some(1.234), None, 5.5, true)).unwrap();
        assert_eq!(m["type"], "PUZZLE_RESET");
        assert_eq!(m["solve_time"], 1.23);
        assert_eq!(m["average_solve_time"], Value::Null);
        assert_eq!(m["is_timeout"], true);
        assert_eq!(m["difficulty"], 7);
    }

    #[test]
    fn status_update_starts_with_type() {
        let s = status_update(&json!({"difficulty": 3}), 12.345);
        assert_eq!(
            s,
            r#"{"type":"STATUS_UPDATE","difficulty":3,"total_hashrate":12.35}"#
        );
    }
}
