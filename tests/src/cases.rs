//! The conformance cases. Each starts its own server with the adapter under test and checks one
//! part of docs/protocol.md#overview over real HTTP and WebSocket on 127.0.0.1.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{
    Frame, Http, Player, client_ip, expect_close, expect_type, next_frame, open_ws,
};
use crate::server::{ADMIN_TOKEN, Serve, TestServer};

const WAIT: Duration = Duration::from_secs(5);

async fn healthy(server: &TestServer) {
    let health = Http::new(server, client_ip(999)).get("/api/health").await;
    assert_eq!(health.status, 200, "server unhealthy: {}", health.text);
}

/// Captcha → SESSION_TOKEN → puzzle → solve → invite code → PUZZLE_RESET everywhere → 409 late.
pub async fn full_round(serve: Serve) {
    let server = TestServer::with(serve, "full-round", |c| c).await;
    let mut winner = Player::connect(&server, client_ip(1)).await;
    let mut late = Player::connect(&server, client_ip(2)).await;
    let mut watcher = Player::connect(&server, client_ip(3)).await;
    for p in [&winner, &late] {
        let puzzle = p.puzzle().await;
        assert_eq!(puzzle.status, 200, "{}", puzzle.text);
    }
    let puzzle = winner.puzzle().await.json();
    for field in [
        "seed",
        "difficulty",
        "memory_cost",
        "time_cost",
        "parallelism",
        "worker_count",
        "puzzle_start_time",
    ] {
        assert!(!puzzle[field].is_null(), "puzzle lacks {field}: {puzzle}");
    }
    assert!(puzzle.get("last_solve_time").is_some() && puzzle.get("average_solve_time").is_some());
    let trace = winner.trace().await;
    assert!(
        trace.lines().any(|l| l == format!("ip={}", client_ip(1))),
        "{trace}"
    );

    let win_body = winner.solution(&puzzle).await;
    let late_body = late.solution(&puzzle).await;
    let won = winner.verify(&win_body).await;
    assert_eq!(won.status, 200, "{}", won.text);
    let code = won.json()["invite_code"].as_str().unwrap().to_string();
    assert!(server.hashpass.invites().verify(&code).is_ok());

    for p in [&mut winner, &mut late, &mut watcher] {
        let reset = expect_type(&mut p.ws, "PUZZLE_RESET", WAIT).await;
        assert_ne!(reset["seed"], puzzle["seed"]);
        assert_eq!(reset["is_timeout"], false);
        assert!(reset["solve_time"].as_f64().unwrap() > 0.0);
    }
    let lost = late.verify(&late_body).await;
    assert_eq!(
        (lost.status, lost.detail().as_str()),
        (409, "Puzzle already solved by someone else")
    );
    let again = winner.verify(&win_body).await;
    assert_eq!(again.status, 409);
    // Ping → PONG with the online count.
    watcher.send("ping").await;
    let pong = expect_type(&mut watcher.ws, "PONG", WAIT).await;
    assert_eq!(pong["online"], 3);
}

/// Many solvers on distinct IPs, several rounds: exactly one winner each.
pub async fn concurrent_solvers_one_winner_per_round(serve: Serve) {
    let server = TestServer::with(serve, "concurrent", |c| c).await;
    let mut players = Vec::new();
    for i in 0..12 {
        players.push(Player::connect(&server, client_ip(10 + i)).await);
    }
    for round in 0..5 {
        let puzzle = players[0].puzzle().await.json();
        let mut bodies = Vec::new();
        for p in &players {
            assert_eq!(p.puzzle().await.status, 200);
            bodies.push(p.solution(&puzzle).await);
        }
        let answers =
            futures_util::future::join_all(players.iter().zip(&bodies).map(|(p, b)| p.verify(b)))
                .await;
        let winners = answers.iter().filter(|a| a.status == 200).count();
        assert_eq!(
            winners,
            1,
            "round {round}: {:?}",
            answers.iter().map(|a| a.status).collect::<Vec<_>>()
        );
        assert!(answers.iter().all(|a| a.status == 200 || a.status == 409));
        for p in &mut players {
            expect_type(&mut p.ws, "PUZZLE_RESET", WAIT).await;
        }
    }
}

/// A dropped socket reconnects with its session token within the grace period (no new token),
/// a reconnect replaces the session's old socket, and another IP cannot use the token.
pub async fn reconnect_within_grace(serve: Serve) {
    let server = TestServer::with(serve, "reconnect", |c| c).await;
    let ip = client_ip(1);
    let mut player = Player::connect(&server, ip).await;
    player.ws.close(None).await.ok();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.clock.advance_secs(299.0);
    assert_eq!(
        player.puzzle().await.status,
        200,
        "usable while disconnected within grace"
    );
    let mut again = open_ws(&server, ip, &format!("/api/ws?token={}", player.token))
        .await
        .expect("reconnect accepted");
    again.send(Message::Text("ping".into())).await.unwrap();
    // No new SESSION_TOKEN: the first message is the PONG.
    assert_eq!(expect_type(&mut again, "PONG", WAIT).await["type"], "PONG");
    // A second reconnect replaces this socket.
    let mut third = open_ws(&server, ip, &format!("/api/ws?token={}", player.token))
        .await
        .expect("accepted");
    assert_eq!(
        expect_close(&mut again, WAIT).await,
        (1008, "Replaced by new connection".into())
    );
    // The token from another IP: refused, not revoked.
    assert_eq!(
        open_ws(
            &server,
            client_ip(2),
            &format!("/api/ws?token={}", player.token)
        )
        .await
        .err(),
        Some(403)
    );
    third
        .send(Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    expect_type(&mut third, "PONG", WAIT).await;
    // After the grace period a disconnected token is dead.
    third.close(None).await.ok();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.clock.advance_secs(301.0);
    let gone = player.puzzle().await;
    assert_eq!(
        (gone.status, gone.detail().as_str()),
        (401, "Invalid or expired session token")
    );
}

/// docs/protocol.md#session-token-check with docs/protocol.md#client-ip: every rung of the ladder.
pub async fn session_ladder(serve: Serve) {
    let server = TestServer::with(serve, "ladder", |c| c).await;
    let player = Player::connect(&server, client_ip(1)).await;
    let http = &player.http;
    let body = json!({ "visitorId": player.visitor });
    let cases = [
        (None, 401, "Missing Authorization header"),
        (
            Some("Token abc"),
            401,
            "Invalid Authorization header format (expected 'Bearer <token>')",
        ),
        (Some("Bearer nope"), 401, "Invalid or expired session token"),
    ];
    for path in ["/api/puzzle", "/api/verify", "/api/submit"] {
        for (authorization, status, detail) in cases {
            let mut h = vec![("content-type", "application/json")];
            if let Some(value) = authorization {
                h.push(("authorization", value));
            }
            let a = http.send("POST", path, &h, body.to_string()).await;
            assert_eq!((a.status, a.detail().as_str()), (status, detail), "{path}");
        }
    }
    let other = Http::new(&server, client_ip(2));
    let a = other.post("/api/puzzle", &body, Some(&player.token)).await;
    assert_eq!(
        (a.status, a.detail().as_str()),
        (403, "Session token is bound to another IP")
    );
    assert_eq!(
        player.puzzle().await.status,
        200,
        "not revoked by the foreign use"
    );
    let a = http
        .post(
            "/api/puzzle",
            &json!({ "visitorId": "someone_else" }),
            Some(&player.token),
        )
        .await;
    assert_eq!(
        (a.status, a.detail().as_str()),
        (403, "Device fingerprint mismatch")
    );
    let admin = Http::new(&server, client_ip(50));
    assert_eq!(
        admin
            .admin_post(
                "/api/admin/kick",
                &json!({ "ip": client_ip(1).to_string() })
            )
            .await
            .status,
        200
    );
    let a = player.puzzle().await;
    assert_eq!((a.status, a.detail().as_str()), (403, "Access denied"));
    assert_eq!(
        admin
            .admin_post(
                "/api/admin/unban",
                &json!({ "ip": client_ip(1).to_string() })
            )
            .await
            .status,
        200
    );
    let a = player.puzzle().await;
    assert_eq!(
        (a.status, a.detail().as_str()),
        (401, "Invalid or expired session token"),
        "kick revoked it"
    );
}

/// docs/protocol.md#public-http-endpoints: the statuses and details of verify and submit, and method/path errors.
pub async fn public_errors(serve: Serve) {
    let server = TestServer::with(serve, "errors", |c| {
        c.with_max_difficulty(64u32).with_difficulty(2u32)
    })
    .await;
    let player = Player::connect(&server, client_ip(1)).await;
    let puzzle = player.puzzle().await.json();
    let good = player.solution(&puzzle).await;
    let with = |field: &str, value: Value| {
        let mut b = good.clone();
        b[field] = value;
        b
    };
    let a = player
        .verify(&with("traceData", json!("ip=10.9.9.9")))
        .await;
    assert_eq!(
        (a.status, a.detail().as_str()),
        (
            403,
            "Identity mismatch: TraceData IP doesn't match request IP"
        )
    );
    let a = player.verify(&with("visitorId", json!("intruder"))).await;
    assert_eq!(
        (a.status, a.detail().as_str()),
        (403, "Device fingerprint mismatch")
    );
    let a = player
        .verify(&with(
            "submittedSeed",
            json!("ffffffffffffffffffffffffffffffff"),
        ))
        .await;
    assert_eq!(
        (a.status, a.detail().as_str()),
        (409, "Puzzle already solved by someone else")
    );
    let a = player.verify(&with("hash", json!("f".repeat(64)))).await;
    assert_eq!(a.status, 400);
    assert!(
        a.detail().starts_with(
            "Hash does not meet difficulty requirement (2 leading zero bits, found 0)"
        ),
        "{}",
        a.text
    );
    let mut wrong = good["hash"].as_str().unwrap().to_string();
    wrong.replace_range(63..64, if wrong.ends_with('0') { "1" } else { "0" });
    let a = player.verify(&with("hash", json!(wrong))).await;
    assert_eq!((a.status, a.detail().as_str()), (400, "Hash mismatch"));
    // Submit outside a timeout window.
    let mut submit = good.clone();
    submit["leadingZeros"] = json!(2);
    let a = player
        .http
        .post("/api/submit", &submit, Some(&player.token))
        .await;
    assert_eq!(
        (a.status, a.detail().as_str()),
        (409, "No active timeout collection window")
    );
    submit["leadingZeros"] = json!(0);
    let a = player
        .http
        .post("/api/submit", &submit, Some(&player.token))
        .await;
    assert_eq!(
        (a.status, a.detail().as_str()),
        (400, "Leading zeros must be >= 1")
    );
    // Method and path.
    let a = player.http.get("/api/puzzle").await;
    assert_eq!((a.status, a.detail().as_str()), (405, "Method Not Allowed"));
    let a = player.http.get("/api/nothing-here").await;
    assert_eq!((a.status, a.detail().as_str()), (404, "Not Found"));
    // The turnstile config in test mode.
    let config = player.http.get("/api/turnstile/config").await.json();
    assert_eq!(
        config,
        json!({ "siteKey": "1x00000000000000000000AA", "testMode": true })
    );
    // The health check.
    let health = player.http.get("/api/health").await.json();
    assert_eq!(health["status"], "ok");
    assert!(health["current_seed"].as_str().unwrap().ends_with("..."));
    // The correct solution still wins after all that.
    assert_eq!(player.verify(&good).await.status, 200);
}

/// Malformed, mistyped, oversize and junk bodies: 4xx JSON, never 5xx; the server stays healthy.
pub async fn bad_input_never_5xx(serve: Serve) {
    let server = TestServer::with(serve, "bad-input", |c| c).await;
    let player = Player::connect(&server, client_ip(1)).await;
    let auth = format!("Bearer {}", player.token);
    let deep = "[".repeat(10_000);
    // Over the 16 KiB limit, small enough to sit in socket buffers (no reset race).
    let huge = format!("{{\"visitorId\": \"{}\"}}", "a".repeat(20_000));
    let bodies: Vec<(String, u16)> = vec![
        ("{not json".into(), 422),
        ("".into(), 422),
        ("[]".into(), 422),
        ("null".into(), 422),
        ("\"text\"".into(), 422),
        (r#"{"visitorId": 5}"#.into(), 422),
        (r#"{"visitorId": "a|b"}"#.into(), 422),
        (r#"{"visitorId": "\u0000\ud800"}"#.into(), 422),
        ("\u{feff}{}".into(), 422),
        (deep, 400),
        (huge, 413),
    ];
    for (body, expected) in &bodies {
        let a = player
            .http
            .send(
                "POST",
                "/api/puzzle",
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                body.clone(),
            )
            .await;
        assert_eq!(
            a.status,
            *expected,
            "{} → {}",
            &body[..body.len().min(40)],
            a.text
        );
        assert!(a.json().is_object(), "JSON error body: {}", a.text);
    }
    let junk_verify = [
        json!({ "visitorId": player.visitor, "nonce": -1, "submittedSeed": "a", "traceData": "", "hash": "" }),
        json!({ "visitorId": player.visitor, "nonce": 9007199254740993u64, "submittedSeed": "a", "traceData": "", "hash": "" }),
        json!({ "visitorId": player.visitor, "nonce": 1e308, "submittedSeed": "a", "traceData": "", "hash": "" }),
        json!({ "visitorId": player.visitor, "nonce": "12x", "submittedSeed": "a", "traceData": "", "hash": "" }),
        json!({ "visitorId": player.visitor, "nonce": 1.5, "submittedSeed": "a", "traceData": "", "hash": "" }),
        json!({ "visitorId": player.visitor, "nonce": [1], "submittedSeed": {}, "traceData": 7, "hash": null }),
        json!({ "visitorId": "😀", "nonce": 1, "submittedSeed": "é".repeat(200), "traceData": "x".repeat(3000), "hash": "Z".repeat(64) }),
    ];
    for body in &junk_verify {
        let a = player.verify(body).await;
        assert_eq!(a.status, 422, "{body} → {}", a.text);
        assert!(a.json()["detail"].is_array());
    }
    // A complete, valid solution whose nonce alone is out of range: the 422 names the nonce and
    // nothing else (and the same body with its real nonce wins, so nothing else was wrong).
    let puzzle = player.puzzle().await.json();
    let valid = player.solution(&puzzle).await;
    let too_big = hashpass::puzzle::MAX_NONCE + 1;
    for nonce in [
        "123456789012345678901234567890".to_string(),
        too_big.to_string(),
        "1e30".to_string(),
        format!("{too_big}.0"),
        "\"123456789012345678901234567890\"".to_string(),
        format!("\"{too_big}\""),
    ] {
        let huge_nonce = player
            .http
            .send(
                "POST",
                "/api/verify",
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                with_raw_nonce(&valid, &nonce),
            )
            .await;
        assert_eq!(
            huge_nonce.status, 422,
            "nonce {nonce} → {}",
            huge_nonce.text
        );
        assert_only_nonce_refused(&huge_nonce, &nonce);
    }
    let won = player.verify(&valid).await;
    assert_eq!(
        won.status, 200,
        "the body around the huge nonces: {}",
        won.text
    );
    // Admin bodies too.
    let admin = Http::new(&server, client_ip(50));
    let admin_auth = format!("Bearer {ADMIN_TOKEN}");
    for (path, body) in [
        ("/api/admin/difficulty", "{oops"),
        ("/api/admin/difficulty", r#"{"difficulty": "high"}"#),
        ("/api/admin/argon2", r#"{"memory_cost": -5}"#),
        ("/api/admin/kick", r#"{"ip": "not-an-ip"}"#),
        ("/api/admin/kick", "[]"),
        (
            "/api/admin/max-nonce-speed",
            r#"{"max_nonce_speed": "fast"}"#,
        ),
        ("/api/admin/worker-count", r#"{"worker_count": 1e99}"#),
    ] {
        let a = admin
            .send(
                "POST",
                path,
                &[
                    ("authorization", &admin_auth),
                    ("content-type", "application/json"),
                ],
                body,
            )
            .await;
        assert!(
            (400..500).contains(&a.status),
            "{path} {body} → {} {}",
            a.status,
            a.text
        );
        assert!(a.json().is_object());
    }
    let a = admin
        .send(
            "GET",
            "/api/admin/logs?page=0&per_page=9999",
            &[("authorization", &admin_auth)],
            Vec::new(),
        )
        .await;
    assert_eq!(a.status, 422);
    healthy(&server).await;
}

/// `body` as JSON text with its `nonce` replaced by the literal `nonce` (which may be beyond
/// what a `Value` can hold).
fn with_raw_nonce(body: &Value, nonce: &str) -> String {
    const MARK: &str = "nonce-placeholder-3f9a";
    let mut body = body.clone();
    body["nonce"] = json!(MARK);
    let text = body.to_string();
    assert_eq!(text.matches(MARK).count(), 1);
    text.replace(&format!("\"{MARK}\""), nonce)
}

/// A 422 whose `detail` lists only the nonce field.
fn assert_only_nonce_refused(a: &crate::client::Answer, nonce: &str) {
    let detail = a.json()["detail"].clone();
    let errors = detail.as_array().map(Vec::as_slice).unwrap_or_default();
    assert!(
        !errors.is_empty(),
        "nonce {nonce}: no field errors in {}",
        a.text
    );
    for error in errors {
        assert_eq!(
            error["loc"],
            json!(["body", "nonce"]),
            "nonce {nonce}: an error not about the nonce in {}",
            a.text
        );
    }
}

/// WebSocket junk: ignored; oversize text closes with 1009 after an ERROR; binary ignored.
pub async fn oversize_and_binary_frames(serve: Serve) {
    let server = TestServer::with(serve, "frames", |c| c).await;
    let mut player = Player::connect(&server, client_ip(1)).await;
    for junk in [
        "{".to_string(),
        "[1,2,3]".into(),
        r#"{"type":"hashrate","payload":"not an object"}"#.into(),
        r#"{"type":"hashrate","payload":{"rate":"NaN"}}"#.into(),
        r#"{"type":"hashrate","payload":{"rate":1e999}}"#.into(),
        r#"{"type":"hashrate","payload":{"rate":-5}}"#.into(),
        r#"{"type":"nonsense"}"#.into(),
        "\u{0}\u{1}".into(),
    ] {
        player.send(&junk).await;
    }
    player
        .ws
        .send(Message::Binary(vec![0u8, 159, 146, 150].into()))
        .await
        .unwrap();
    player.send("ping").await;
    expect_type(&mut player.ws, "PONG", WAIT).await;
    player.send(&"x".repeat(4097)).await;
    let error = expect_type(&mut player.ws, "ERROR", WAIT).await;
    assert_eq!(error["detail"], "Message too large");
    assert_eq!(
        expect_close(&mut player.ws, WAIT).await,
        (1009, "Message too large".into())
    );
    // Over the framework's frame limit: the connection ends, the server lives.
    let mut other = Player::connect(&server, client_ip(2)).await;
    let _ = other
        .ws
        .send(Message::Text("y".repeat(200_000).into()))
        .await;
    let _ = next_frame(&mut other.ws, WAIT).await;
    healthy(&server).await;
}

/// Every admin endpoint of docs/protocol.md#admin-api answers as documented.
pub async fn admin_endpoints(serve: Serve) {
    let server = TestServer::with(serve, "admin", |c| c.with_max_difficulty(32u32)).await;
    let mut player = Player::connect(&server, client_ip(1)).await;
    player.puzzle().await;
    player.send(r#"{"type":"mining_start"}"#).await;
    player
        .send(r#"{"type":"hashrate","payload":{"rate":12.345,"timestamp":1}}"#)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let admin = Http::new(&server, client_ip(50));

    let status = admin.admin_get("/api/admin/status").await;
    assert_eq!(status.status, 200);
    let s = status.json();
    for field in [
        "difficulty",
        "difficulty_float",
        "min_difficulty",
        "max_difficulty",
        "target_time",
        "target_timeout",
        "ema_solve_time",
        "current_seed",
        "puzzle_start_time",
        "mining_time",
        "is_mining_active",
        "last_solve_time",
        "solve_history",
        "average_solve_time",
        "active_miners",
        "active_connections",
        "session_count",
        "argon2_time_cost",
        "argon2_memory_cost",
        "argon2_parallelism",
        "worker_count",
        "max_nonce_speed",
        "banned_ips_count",
        "hashrate_chart_history",
        "solve_time_chart_history",
    ] {
        assert!(s.get(field).is_some(), "status lacks {field}");
    }
    assert_eq!(
        (
            s["is_mining_active"].as_bool(),
            s["active_connections"].as_u64(),
            s["session_count"].as_u64()
        ),
        (Some(true), Some(1), Some(1))
    );
    let miners = admin.admin_get("/api/admin/miners").await.json();
    assert_eq!(miners[0]["ip"], client_ip(1).to_string());
    assert_eq!(miners[0]["hashrate"], 12.35);
    assert_eq!(miners[0]["overspeed"], false);
    let sessions = admin.admin_get("/api/admin/sessions").await.json();
    assert_eq!(
        sessions[0]["token_preview"],
        format!("{}...", &player.token[..8])
    );
    assert_eq!(sessions[0]["is_connected"], true);
    assert!(
        !sessions.to_string().contains(&player.token),
        "full tokens never leave the server"
    );

    let d = admin
        .admin_post(
            "/api/admin/difficulty",
            &json!({ "difficulty": 3, "max_difficulty": 20 }),
        )
        .await
        .json();
    assert_eq!(
        (d["difficulty"].as_u64(), d["max_difficulty"].as_u64()),
        (Some(3), Some(20))
    );
    assert!(d["new_seed"].as_str().unwrap().ends_with("..."));
    let reset = expect_type(&mut player.ws, "PUZZLE_RESET", WAIT).await;
    assert_eq!(reset["difficulty"], 3);
    let t = admin
        .admin_post(
            "/api/admin/target-time",
            &json!({ "target_time": 30, "target_timeout": 90 }),
        )
        .await
        .json();
    assert_eq!(
        (t["target_time"].as_u64(), t["target_timeout"].as_u64()),
        (Some(30), Some(90))
    );
    expect_type(&mut player.ws, "PUZZLE_RESET", WAIT).await;
    let a = admin
        .admin_post(
            "/api/admin/argon2",
            &json!({ "time_cost": 2, "memory_cost": 16, "parallelism": 2 }),
        )
        .await
        .json();
    assert_eq!(
        (
            a["time_cost"].as_u64(),
            a["memory_cost"].as_u64(),
            a["parallelism"].as_u64()
        ),
        (Some(2), Some(16), Some(2))
    );
    expect_type(&mut player.ws, "PUZZLE_RESET", WAIT).await;
    let p = player.puzzle().await.json();
    assert_eq!(
        (p["memory_cost"].as_u64(), p["parallelism"].as_u64()),
        (Some(16), Some(2))
    );
    let w = admin
        .admin_post("/api/admin/worker-count", &json!({ "worker_count": 4 }))
        .await
        .json();
    assert_eq!(w["worker_count"], 4);
    expect_type(&mut player.ws, "PUZZLE_RESET", WAIT).await;
    let m = admin
        .admin_post(
            "/api/admin/max-nonce-speed",
            &json!({ "max_nonce_speed": 5.5 }),
        )
        .await
        .json();
    assert_eq!(m, json!({ "max_nonce_speed": 5.5 }));
    let m = admin
        .admin_post(
            "/api/admin/max-nonce-speed",
            &json!({ "max_nonce_speed": 0 }),
        )
        .await
        .json();
    assert_eq!(
        m,
        json!({ "max_nonce_speed": 0, "message": "Speed limit disabled" })
    );
    let r = admin
        .admin_post("/api/admin/reset-puzzle", &json!({}))
        .await
        .json();
    assert_eq!(r["message"], "Puzzle reset");
    expect_type(&mut player.ws, "PUZZLE_RESET", WAIT).await;

    // Win once so the logs have a record.
    let puzzle = player.puzzle().await.json();
    let body = player.solution(&puzzle).await;
    assert_eq!(player.verify(&body).await.status, 200);
    let logs = admin.admin_get("/api/admin/logs").await.json();
    assert_eq!(
        (
            logs["total"].as_u64(),
            logs["page"].as_u64(),
            logs["pages"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(logs["files"][0], "verify.jsonl");
    assert_eq!(logs["records"][0]["visitor_id"], player.visitor.as_str());
    let search = admin
        .admin_get("/api/admin/logs?search=nobody-has-this&per_page=5")
        .await
        .json();
    assert_eq!(search["total"], 0);
    let unknown = admin
        .admin_get("/api/admin/logs?file=nope.jsonl")
        .await
        .json();
    assert_eq!(
        (unknown["total"].as_u64(), unknown["pages"].as_u64()),
        (Some(0), Some(0))
    );
    let stats = admin.admin_get("/api/admin/logs/stats").await.json();
    assert_eq!(
        (
            stats["total_codes"].as_u64(),
            stats["unique_visitors"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let applogs = admin.admin_get("/api/admin/applogs").await;
    assert_eq!(applogs.status, 200);
    assert!(applogs.json()["lines"].is_array());

    let k = admin
        .admin_post("/api/admin/kick", &json!({ "ip": "203.0.113.9" }))
        .await
        .json();
    assert_eq!(
        k["message"],
        "Banned and kicked 0 connections, revoked 0 sessions for IP 203.0.113.9"
    );
    assert_eq!(
        admin.admin_get("/api/admin/blacklist").await.json(),
        json!(["203.0.113.9"])
    );
    let u = admin
        .admin_post("/api/admin/unban", &json!({ "ip": "203.0.113.9" }))
        .await
        .json();
    assert_eq!(u["message"], "Unbanned IP 203.0.113.9");
    let u = admin
        .admin_post("/api/admin/unban", &json!({ "ip": "203.0.113.9" }))
        .await
        .json();
    assert_eq!(u["message"], "IP 203.0.113.9 was not in blacklist");

    let old_code = body.to_string();
    let h = admin
        .admin_post("/api/admin/regenerate-hmac", &json!({}))
        .await
        .json();
    assert_eq!(
        h["message"],
        "HMAC secret regenerated (256-bit random). All old redemption codes are now invalid."
    );
    let h = admin
        .admin_post(
            "/api/admin/regenerate-hmac",
            &json!({ "hmac_secret": "00112233445566778899aabbccddeeff" }),
        )
        .await
        .json();
    assert_eq!(
        h["message"],
        "HMAC secret updated (128-bit). All old redemption codes are now invalid."
    );
    let bad = admin
        .admin_post(
            "/api/admin/regenerate-hmac",
            &json!({ "hmac_secret": "xyz" }),
        )
        .await;
    assert_eq!(
        (bad.status, bad.detail().as_str()),
        (400, "Invalid hex string")
    );
    let short = admin
        .admin_post(
            "/api/admin/regenerate-hmac",
            &json!({ "hmac_secret": "0011" }),
        )
        .await;
    assert_eq!(
        (short.status, short.detail().as_str()),
        (400, "HMAC secret must be at least 128-bit (32 hex chars)")
    );
    let code = logs["records"][0]["invite_code"].as_str().unwrap();
    assert!(
        server.hashpass.invites().verify(code).is_err(),
        "rotation invalidates {old_code}"
    );
}

/// docs/protocol.md#admin-api: parameter endpoints validate the whole body and change nothing on error (422).
pub async fn admin_validation(serve: Serve) {
    let server = TestServer::with(serve, "admin-validation", |c| {
        c.with_max_difficulty(20u32).with_difficulty(5u32)
    })
    .await;
    let admin = Http::new(&server, client_ip(50));
    let before = admin.admin_get("/api/admin/status").await.json();
    for (path, body) in [
        ("/api/admin/difficulty", json!({ "difficulty": 0 })),
        ("/api/admin/difficulty", json!({ "difficulty": 65 })),
        (
            "/api/admin/difficulty",
            json!({ "min_difficulty": 10, "difficulty": 3 }),
        ),
        (
            "/api/admin/difficulty",
            json!({ "min_difficulty": 15, "max_difficulty": 10 }),
        ),
        ("/api/admin/target-time", json!({ "target_time": 0 })),
        ("/api/admin/target-time", json!({ "target_time": 500 })),
        (
            "/api/admin/target-time",
            json!({ "target_time": 60, "target_timeout": 60 }),
        ),
        ("/api/admin/argon2", json!({ "time_cost": 17 })),
        ("/api/admin/argon2", json!({ "memory_cost": 1048577 })),
        (
            "/api/admin/argon2",
            json!({ "parallelism": 4, "memory_cost": 16 }),
        ),
        ("/api/admin/argon2", json!({ "parallelism": 0 })),
        ("/api/admin/worker-count", json!({ "worker_count": 33 })),
        ("/api/admin/worker-count", json!({ "worker_count": 0 })),
        ("/api/admin/worker-count", json!({})),
        (
            "/api/admin/max-nonce-speed",
            json!({ "max_nonce_speed": -1 }),
        ),
        ("/api/admin/kick", json!({ "ip": "300.1.1.1" })),
        ("/api/admin/unban", json!({})),
    ] {
        let a = admin.admin_post(path, &body).await;
        assert_eq!(a.status, 422, "{path} {body} → {}", a.text);
        assert!(a.json()["detail"].is_string(), "{}", a.text);
    }
    let after = admin.admin_get("/api/admin/status").await.json();
    for field in [
        "difficulty",
        "min_difficulty",
        "max_difficulty",
        "target_time",
        "target_timeout",
        "argon2_time_cost",
        "argon2_memory_cost",
        "argon2_parallelism",
        "worker_count",
        "max_nonce_speed",
        "current_seed",
    ] {
        assert_eq!(
            before[field], after[field],
            "{field} changed by a refused request"
        );
    }
    // Changing the bounds clamps the current difficulty.
    let d = admin
        .admin_post("/api/admin/difficulty", &json!({ "min_difficulty": 8 }))
        .await
        .json();
    assert_eq!(
        (d["difficulty"].as_u64(), d["min_difficulty"].as_u64()),
        (Some(8), Some(8))
    );
}

/// The admin ladder and lockout (HTTP and WebSocket count together).
pub async fn admin_lockout(serve: Serve) {
    let server = TestServer::with(serve, "lockout", |c| c).await;
    let admin = Http::new(&server, client_ip(50));
    let a = admin
        .send("GET", "/api/admin/status", &[], Vec::new())
        .await;
    assert_eq!(
        (a.status, a.detail().as_str()),
        (401, "Missing Authorization header")
    );
    let a = admin
        .send(
            "GET",
            "/api/admin/status",
            &[("authorization", "Basic x")],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (a.status, a.detail().as_str()),
        (
            401,
            "Invalid Authorization format (expected 'Bearer <token>')"
        )
    );
    let a = admin
        .send(
            "GET",
            "/api/admin/status",
            &[("authorization", "Bearer wr\u{f6}ng")],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (a.status, a.detail().as_str()),
        (403, "Invalid admin token")
    );
    // Eight more wrong HTTP attempts, then the tenth failure over the admin socket locks out.
    for _ in 0..8 {
        assert_eq!(
            admin
                .send(
                    "GET",
                    "/api/admin/status",
                    &[("authorization", "Bearer wrong")],
                    Vec::new()
                )
                .await
                .status,
            403
        );
    }
    assert!(
        open_ws(&server, client_ip(50), "/api/admin/ws?token=wrong")
            .await
            .is_err()
    );
    let a = admin.admin_get("/api/admin/status").await;
    assert_eq!(
        a.status, 429,
        "locked even with the right token: {}",
        a.text
    );
    assert!(
        a.detail()
            .starts_with("Too many failed attempts. Try again in "),
        "{}",
        a.text
    );
    // Another IP is unaffected; the lockout decays.
    assert_eq!(
        Http::new(&server, client_ip(51))
            .admin_get("/api/admin/status")
            .await
            .status,
        200
    );
    server.clock.advance_secs(301.0);
    assert_eq!(admin.admin_get("/api/admin/status").await.status, 200);
    // Without ADMIN_TOKEN the admin API is closed.
    let closed = TestServer::with(serve, "no-admin", |c| c.with_admin_token(None)).await;
    let a = Http::new(&closed, client_ip(50))
        .admin_get("/api/admin/status")
        .await;
    assert_eq!(
        (a.status, a.detail().as_str()),
        (401, "ADMIN_TOKEN not configured")
    );
    assert_eq!(
        open_ws(
            &closed,
            client_ip(50),
            &format!("/api/admin/ws?token={ADMIN_TOKEN}")
        )
        .await
        .err(),
        Some(403)
    );
}

/// The admin socket pushes STATUS_UPDATE with the snapshot and the network hashrate.
pub async fn admin_socket(serve: Serve) {
    let server = TestServer::with(serve, "admin-ws", |c| c).await;
    assert_eq!(
        open_ws(&server, client_ip(50), "/api/admin/ws").await.err(),
        Some(403)
    );
    let mut ws = open_ws(
        &server,
        client_ip(50),
        &format!("/api/admin/ws?token={ADMIN_TOKEN}"),
    )
    .await
    .expect("admin socket");
    let update = expect_type(&mut ws, "STATUS_UPDATE", WAIT).await;
    assert!(update.get("total_hashrate").is_some() && update.get("current_seed").is_some());
    let next = expect_type(&mut ws, "STATUS_UPDATE", WAIT).await;
    assert_eq!(next["type"], "STATUS_UPDATE");
}

/// Kick bans the IP and closes all its sockets, idle ones included (docs/protocol.md#admin-api).
pub async fn kick_closes_idle_sockets(serve: Serve) {
    let server = TestServer::with(serve, "kick", |c| c.with_max_connections_per_ip(0u32)).await;
    let ip = client_ip(1);
    let mut idle = Player::connect(&server, ip).await;
    let mut second = Player::connect(&server, ip).await;
    let mut bystander = Player::connect(&server, client_ip(2)).await;
    let admin = Http::new(&server, client_ip(50));
    let k = admin
        .admin_post("/api/admin/kick", &json!({ "ip": ip.to_string() }))
        .await
        .json();
    assert_eq!(
        k["message"],
        format!("Banned and kicked 2 connections, revoked 2 sessions for IP {ip}")
    );
    assert_eq!(
        expect_close(&mut idle.ws, WAIT).await,
        (1000, "Kicked by admin".into())
    );
    assert_eq!(
        expect_close(&mut second.ws, WAIT).await,
        (1000, "Kicked by admin".into())
    );
    assert_eq!(
        open_ws(&server, ip, "/api/ws?token=captcha").await.err(),
        Some(403),
        "banned"
    );
    bystander.send("ping").await;
    expect_type(&mut bystander.ws, "PONG", WAIT).await;
}

/// kick-all closes everyone without a PUZZLE_RESET; clear-sessions revokes every token.
pub async fn kick_all_and_clear_sessions(serve: Serve) {
    let server = TestServer::with(serve, "kick-all", |c| c).await;
    let mut a = Player::connect(&server, client_ip(1)).await;
    let mut b = Player::connect(&server, client_ip(2)).await;
    let admin = Http::new(&server, client_ip(50));
    let r = admin
        .admin_post("/api/admin/kick-all", &json!({}))
        .await
        .json();
    assert_eq!(
        r["message"].as_str().unwrap(),
        "Kicked 2 connections, revoked 2 sessions, and reset puzzle"
    );
    for p in [&mut a, &mut b] {
        // Closed with 1000, and no PUZZLE_RESET before it (periodic NETWORK_HASHRATE may come).
        loop {
            match next_frame(&mut p.ws, WAIT).await {
                Frame::Json(v) if v["type"] == "NETWORK_HASHRATE" => continue,
                frame => {
                    assert_eq!(frame, Frame::Closed(1000, "Kicked by admin".into()));
                    break;
                }
            }
        }
    }
    assert_eq!(a.puzzle().await.status, 401);
    let mut c = Player::connect(&server, client_ip(3)).await;
    let r = admin
        .admin_post("/api/admin/clear-sessions", &json!({}))
        .await
        .json();
    assert_eq!(
        r["message"],
        "Cleared 1 session tokens, closed 1 connections"
    );
    assert_eq!(
        expect_close(&mut c.ws, WAIT).await,
        (1000, "Session cleared by admin".into())
    );
    assert_eq!(c.puzzle().await.status, 401);
}

/// Mining time reaching the timeout resets with is_timeout; the best verified submission in the
/// window gets TIMEOUT_INVITE_CODE on its socket.
pub async fn timeout_reset_and_reward(serve: Serve) {
    let server = TestServer::with(serve, "timeout", |c| {
        c.with_max_difficulty(8u32)
            .with_difficulty(8u32)
            .with_target_time(60u64)
            .with_target_timeout(120u64)
    })
    .await;
    let mut miner = Player::connect(&server, client_ip(1)).await;
    let mut other = Player::connect(&server, client_ip(2)).await;
    let puzzle = miner.puzzle().await.json();
    other.puzzle().await;
    miner.send(r#"{"type":"mining_start"}"#).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.clock.advance_secs(121.0);
    let reset = expect_type(&mut miner.ws, "PUZZLE_RESET", Duration::from_secs(5)).await;
    assert_eq!(reset["is_timeout"], true);
    assert_eq!(reset["solve_time"], 120.0);
    expect_type(&mut other.ws, "PUZZLE_RESET", WAIT).await;
    // Both submit their best hash for the timed-out seed; the miner's is better.
    let seed = puzzle["seed"].as_str().unwrap();
    let params = hashpass::puzzle::Argon2Params::new(1, 8, 1);
    let (n_other, h_other) =
        crate::client::solve_for(params, seed, &other.visitor, other.http.ip, 1);
    let other_zeros = hashpass::puzzle::leading_zero_bits(&hex::decode(&h_other).unwrap());
    let (n_best, h_best) =
        crate::client::solve_for(params, seed, &miner.visitor, miner.http.ip, other_zeros + 1);
    let submit = |p: &Player, nonce: u64, hash: &str, zeros: u32, trace: String| json!({ "visitorId": p.visitor, "nonce": nonce, "submittedSeed": seed, "traceData": trace, "hash": hash, "leadingZeros": zeros });
    let a = other
        .http
        .post(
            "/api/submit",
            &submit(&other, n_other, &h_other, 1, other.trace().await),
            Some(&other.token),
        )
        .await;
    assert_eq!(
        (a.status, a.json()),
        (200, json!({ "status": "submitted" }))
    );
    let a = other
        .http
        .post(
            "/api/submit",
            &submit(&other, n_other, &h_other, 1, other.trace().await),
            Some(&other.token),
        )
        .await;
    assert_eq!(a.json(), json!({ "status": "already_submitted" }));
    let a = miner
        .http
        .post(
            "/api/submit",
            &submit(
                &miner,
                n_best,
                &h_best,
                other_zeros + 1,
                miner.trace().await,
            ),
            Some(&miner.token),
        )
        .await;
    assert_eq!(a.json(), json!({ "status": "submitted" }));
    server.clock.advance_secs(11.0);
    let reward = expect_type(&mut miner.ws, "TIMEOUT_INVITE_CODE", Duration::from_secs(5)).await;
    assert!(
        server
            .hashpass
            .invites()
            .verify(reward["invite_code"].as_str().unwrap())
            .is_ok()
    );
    assert!(reward["leading_zeros"].as_u64().unwrap() > u64::from(other_zeros));
    // The reward goes to the winner's session only.
    let quiet_until = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Frame::Json(v) = next_frame(
        &mut other.ws,
        quiet_until.saturating_duration_since(tokio::time::Instant::now()),
    )
    .await
    {
        assert_ne!(
            v["type"], "TIMEOUT_INVITE_CODE",
            "the reward reached another player"
        );
    }
    let admin = Http::new(&server, client_ip(50));
    let logs = admin.admin_get("/api/admin/logs").await.json();
    assert_eq!(logs["records"][0]["adjustment_reason"], "timeout_reward");
    assert_eq!(logs["records"][0]["invite_code"], reward["invite_code"]);
}

/// A local receiver gets the webhook, signed, after a first failure.
pub async fn webhook_delivery(serve: Serve) {
    let receiver = crate::webhook_receiver::WebhookReceiver::start().await;
    receiver.answer(500);
    let server = TestServer::with(serve, "webhook", |c| {
        c.with_webhook_url(Some(receiver.url().as_str().into()))
            .with_webhook_token(Some("hook-token".into()))
            .with_webhook_secret(Some("hook-secret".into()))
    })
    .await;
    let player = Player::connect(&server, client_ip(1)).await;
    let puzzle = player.puzzle().await.json();
    let body = player.solution(&puzzle).await;
    let code = player.verify(&body).await.json()["invite_code"]
        .as_str()
        .unwrap()
        .to_string();
    // The first attempt fails; the retry comes due 1 s later on the server's clock.
    assert!(receiver.wait_until(WAIT, |d| d.len() == 1).await);
    receiver.answer(204);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.deliveries().len(),
        1,
        "not retried before its back-off"
    );
    let pending = Http::new(&server, client_ip(50))
        .admin_get("/api/admin/status")
        .await
        .json()["webhook"]
        .clone();
    assert_eq!(pending["pending"], 1, "{pending}");
    server.clock.advance_secs(1.0);
    assert!(
        receiver.wait_until(WAIT, |d| d.len() == 2).await,
        "one failure, one retry"
    );
    let retry = &receiver.deliveries()[1];
    assert_eq!(retry.status, 204);
    assert_eq!(retry.header("authorization"), Some("Bearer hook-token"));
    assert_eq!(retry.header("content-type"), Some("application/json"));
    assert_eq!(retry.header("idempotency-key"), Some(code.as_str()));
    assert_eq!(retry.header("x-hashpass-delivery-attempt"), Some("2"));
    let expected = hashpass::webhook::signature(b"hook-secret", retry.body.as_bytes());
    assert_eq!(
        retry.header("x-hashpass-signature"),
        Some(expected.as_str())
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    hashpass::webhook::verify_timestamped_signature(
        b"hook-secret",
        retry
            .header("x-hashpass-timestamped-signature")
            .expect("a timestamped signature"),
        retry.body.as_bytes(),
        now,
        300,
    )
    .expect("the timestamped signature verifies");
    assert_eq!(
        serde_json::from_str::<Value>(&retry.body).unwrap(),
        json!({ "visitor_id": player.visitor, "invite_code": code })
    );
}

/// Each win is in verify.jsonl at once; the file rotates at the configured size.
pub async fn audit_log_written_and_rotated(serve: Serve) {
    let server = TestServer::with(serve, "audit", |c| c.with_audit_rotation(2usize)).await;
    let player = Player::connect(&server, client_ip(1)).await;
    let admin = Http::new(&server, client_ip(50));
    let mut codes = Vec::new();
    for _ in 0..5 {
        let puzzle = player.puzzle().await.json();
        let body = player.solution(&puzzle).await;
        let answer = player.verify(&body).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        codes.push(answer.json()["invite_code"].as_str().unwrap().to_string());
        // Acknowledged means recorded: the newest record is this code, at once.
        let newest = admin.admin_get("/api/admin/logs?per_page=1").await.json();
        assert_eq!(
            newest["records"][0]["invite_code"],
            codes.last().unwrap().as_str()
        );
    }
    let stats = admin.admin_get("/api/admin/logs/stats").await.json();
    assert_eq!(stats["total_codes"], 5);
    let logs = admin.admin_get("/api/admin/logs").await.json();
    let files: Vec<String> = logs["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    if server.shares_state() {
        // One stream for the whole deployment (no files to rotate); it exports to JSONL.
        assert_eq!((files.len(), logs["total"].as_u64()), (1, Some(5)));
        return;
    }
    let current = std::fs::read_to_string(server.dir.join("data/verify.jsonl")).unwrap();
    assert!(current.contains(codes[4].as_str()));
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files[1].starts_with("verify_") && files[1].ends_with(".jsonl"));
    let archived = admin
        .admin_get(&format!("/api/admin/logs?file={}", files[2]))
        .await
        .json();
    assert_eq!(archived["total"], 2);
    assert_eq!(archived["records"][0]["invite_code"], codes[1].as_str());
    let seen: HashSet<String> = std::fs::read_dir(server.dir.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(seen.iter().all(|n| !n.ends_with(".tmp")), "{seen:?}");
}

/// A ban written before a restart still holds after it.
pub async fn blacklist_survives_restart(serve: Serve) {
    let dir = crate::server::temp_dir("blacklist");
    let config = crate::server::test_config(&dir);
    let server = TestServer::start(serve, config.clone(), dir.clone()).await;
    let admin = Http::new(&server, client_ip(50));
    admin
        .admin_post(
            "/api/admin/kick",
            &json!({ "ip": client_ip(7).to_string() }),
        )
        .await;
    admin
        .admin_post("/api/admin/kick", &json!({ "ip": "2001:db8::7" }))
        .await;
    server.shutdown().await;
    let restarted = TestServer::start(serve, config, dir).await;
    let list = Http::new(&restarted, client_ip(50))
        .admin_get("/api/admin/blacklist")
        .await
        .json();
    assert_eq!(list, json!([client_ip(7).to_string(), "2001:db8::7"]));
    assert_eq!(
        open_ws(&restarted, client_ip(7), "/api/ws?token=captcha")
            .await
            .err(),
        Some(403)
    );
}

/// A client that stops reading does not hold up the others: while the server's sends to it are
/// really stalled (a tiny receive buffer, far more queued for it than the socket buffers hold),
/// another client gets every reset in turn; and the server closes the stalled socket (send
/// timeout or broadcast lag) rather than holding it open.
pub async fn slow_reader_does_not_delay_others(serve: Serve) {
    // The slow reader's pings are answered with ~30-byte PONGs: 300 000 of them are several
    // times what the socket buffers between the server and a stalled reader hold (a few MB on
    // loopback, the server's send buffer autotuning to 4 MB), so the server's sends to it block.
    const PINGS: usize = 300_000;
    // Resets after the server gave up on the slow socket, and the most before it must have.
    const RESETS_AFTER: usize = 20;
    const MAX_RESETS: usize = 5_000;
    // No message budget: the ping flood is only the means to stall the socket's sends (the
    // budget's own close is `a_flood_is_closed_and_the_session_reconnects`'s).
    let server = TestServer::with(serve, "slow", |c| {
        c.with_ws_send_timeout(Duration::from_millis(500))
            .with_ws_message_rate(None)
    })
    .await;
    let mut fast = Player::connect(&server, client_ip(2)).await;
    let admin = Http::new(&server, client_ip(50));
    // A tiny receive buffer, never read from.
    let mut slow = crate::client::open_ws_with(
        &server,
        client_ip(1),
        "/api/ws?token=captcha-token-of-a-browser",
        Some(1024),
    )
    .await
    .expect("handshake accepted");
    wait_for_metric(&admin, "hashpass_player_sockets", |n| n == 2.0).await;
    let flood = tokio::spawn(async move {
        let mut sent = 0;
        'flood: while sent < PINGS {
            for _ in 0..1000 {
                if slow.feed(Message::Text("ping".into())).await.is_err() {
                    break 'flood;
                }
                sent += 1;
            }
            if slow.flush().await.is_err() {
                break;
            }
        }
        slow
    });

    // Resets while the slow socket stalls: the fast client gets each one, in turn.
    let mut resets = 0;
    let mut given_up_at = None;
    while given_up_at.is_none_or(|at| resets < at + RESETS_AFTER) {
        assert!(
            resets < MAX_RESETS,
            "the server still holds the slow socket after {resets} resets"
        );
        let reset = admin
            .admin_post("/api/admin/reset-puzzle", &json!({}))
            .await;
        assert_eq!(reset.status, 200, "{}", reset.text);
        resets += 1;
        // The new seed's first characters (shown as "8329f648...").
        let seed = reset.json()["new_seed"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_string();
        assert!(!seed.is_empty(), "{}", reset.text);
        match next_reset(&mut fast.ws).await {
            Frame::Json(v) => assert!(
                v["seed"].as_str().unwrap_or_default().starts_with(&seed),
                "reset {resets}: the fast client got {v}, not the reset to {seed}…"
            ),
            other => panic!("reset {resets}: the fast client saw {other:?} instead"),
        }
        if given_up_at.is_none() && resets % 10 == 0 {
            let m = admin.admin_get("/api/metrics").await.text;
            if metric(&m, "hashpass_sockets_closed_slow_total") == Some(1.0)
                && metric(&m, "hashpass_player_sockets") == Some(1.0)
            {
                given_up_at = Some(resets);
            }
        }
    }
    // The slow socket was closed by the server, not held open (it sees a close or an error once
    // it reads what was already on its way).
    let mut slow = tokio::time::timeout(Duration::from_secs(60), flood)
        .await
        .expect("the slow reader's pings stop: the server closed it")
        .expect("flood task");
    expect_close(&mut slow, Duration::from_secs(30)).await;
    fast.send("ping").await;
    expect_type(&mut fast.ws, "PONG", WAIT).await;
    healthy(&server).await;
}

/// The next PUZZLE_RESET (other broadcasts skipped), or what ended the wait instead.
async fn next_reset(ws: &mut crate::client::Ws) -> Frame {
    loop {
        match next_frame(ws, Duration::from_secs(10)).await {
            Frame::Json(v) if v["type"] != "PUZZLE_RESET" => continue,
            other => return other,
        }
    }
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Polls `/api/metrics` until `name` satisfies `ok` (panics after a generous wait).
async fn wait_for_metric(admin: &Http, name: &str, ok: impl Fn(f64) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = admin.admin_get("/api/metrics").await.text;
        if metric(&m, name).is_some_and(&ok) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never as expected:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The embedded pages: the miner at `/` and the console at `/admin`, their files under
/// `/static/` with the right types and revalidating ETags, the security headers on every page,
/// and nothing else under `/static/` (no page, no path outside the embedded set).
pub async fn embedded_pages(serve: Serve) {
    let server = TestServer::with(serve, "pages", |c| c).await;
    let http = Http::new(&server, client_ip(1));
    for (path, content_type, marker) in [
        ("/", "text/html", "static/js/miner.js"),
        ("/admin", "text/html", "static/js/admin.js"),
        ("/static/js/miner.js", "text/javascript", "import"),
        ("/static/js/miner-worker.js", "text/javascript", "argon2d"),
        ("/static/css/base.css", "text/css", "{"),
        (
            "/static/vendor/hash-wasm.esm.min.js",
            "text/javascript",
            "argon2d",
        ),
        (
            "/static/vendor/chart.umd.min.js",
            "text/javascript",
            "Chart",
        ),
        (
            "/static/vendor/licenses/chart.js.LICENSE.md",
            "text/plain",
            "MIT",
        ),
    ] {
        let a = http.get(path).await;
        assert_eq!(a.status, 200, "{path}");
        let header = |name: &str| {
            a.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert!(
            header("content-type").starts_with(content_type),
            "{path}: {}",
            header("content-type")
        );
        assert!(a.text.contains(marker), "{path} lacks {marker:?}");
        assert!(
            header("content-security-policy").contains("default-src 'self'"),
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        let etag = header("etag");
        assert!(etag.starts_with('"'), "{path}: ETag {etag:?}");
        let again = http
            .send("GET", path, &[("if-none-match", &etag)], Vec::new())
            .await;
        assert_eq!((again.status, again.text.as_str()), (304, ""), "{path}");
    }
    for path in [
        "/static/index.html",
        "/static/js/nope.js",
        "/static/../Cargo.toml",
        "/static/node_modules/hash-wasm/package.json",
        "/static/package.json",
    ] {
        assert_eq!(http.get(path).await.status, 404, "{path}");
    }
    assert_eq!(http.send("POST", "/", &[], Vec::new()).await.status, 405);
}

/// docs/protocol.md#user-agent-filter's filter on the public API (not on health, trace or admin) and docs/protocol.md#security-headers's headers everywhere.
pub async fn ua_filter_and_headers(serve: Serve) {
    let server = TestServer::with(serve, "ua", |c| c).await;
    let http = Http::new(&server, client_ip(1));
    for ua in [
        "curl/8.5.0",
        "python-requests/2.31",
        "Mozilla/5.0 (compatible; bingbot/2.0)",
        "Opera/9.80",
        "",
    ] {
        let a = http
            .send(
                "GET",
                "/api/turnstile/config",
                &[("user-agent", ua)],
                Vec::new(),
            )
            .await;
        assert_eq!(
            (a.status, a.json()),
            (404, json!({ "error": "Not found" })),
            "{ua}"
        );
        let a = http
            .send("GET", "/api/unknown", &[("user-agent", ua)], Vec::new())
            .await;
        assert_eq!(
            a.json(),
            json!({ "error": "Not found" }),
            "before routing: {ua}"
        );
    }
    let a = http
        .send(
            "GET",
            "/api/health",
            &[("user-agent", "curl/8")],
            Vec::new(),
        )
        .await;
    assert_eq!(a.status, 200);
    let a = http
        .send(
            "GET",
            "/api/admin/status",
            &[
                ("user-agent", "curl/8"),
                ("authorization", &format!("Bearer {ADMIN_TOKEN}")),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(a.status, 200);
    let a = http
        .send(
            "GET",
            "/api/dev/trace",
            &[("user-agent", "curl/8")],
            Vec::new(),
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    for path in ["/api/health", "/", "/admin", "/api/nothing"] {
        let a = http.get(path).await;
        let csp = a
            .headers
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
            "{path}: {} {csp} {:?}",
            a.status,
            a.headers
        );
        assert!(
            !csp.contains("challenges.cloudflare.com"),
            "no Turnstile origin in test mode"
        );
        assert_eq!(a.headers["x-frame-options"], "DENY");
        assert_eq!(a.headers["x-content-type-options"], "nosniff");
        assert_eq!(
            a.headers["referrer-policy"],
            "strict-origin-when-cross-origin"
        );
        assert_eq!(a.headers["cross-origin-opener-policy"], "same-origin");
        assert!(a.headers.contains_key("permissions-policy"));
    }
    assert_eq!(http.get("/").await.status, 200);
    assert_eq!(http.get("/admin").await.status, 200);
    // Production captcha: the trace is off, the CSP admits Turnstile, the site key is published.
    let prod = TestServer::with(serve, "ua-prod", |mut c| {
        c.captcha.site_key = Some("site-key-123".into());
        c.captcha.secret_key = Some("secret-key-456".into());
        c.captcha.siteverify_url = Some("http://127.0.0.1:9/siteverify".into());
        c.with_turnstile_test_mode(false)
    })
    .await;
    let http = Http::new(&prod, client_ip(1));
    assert_eq!(http.get("/api/dev/trace").await.status, 404);
    assert_eq!(
        http.get("/api/turnstile/config").await.json(),
        json!({ "siteKey": "site-key-123", "testMode": false })
    );
    let csp = http.get("/").await.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("https://challenges.cloudflare.com"), "{csp}");
    // The captcha is checked (and here refused: the siteverify URL is dead) before any socket opens.
    assert_eq!(
        open_ws(&prod, client_ip(1), "/api/ws?token=some-turnstile-token")
            .await
            .err(),
        Some(403)
    );
}

/// `/api/metrics`: admin-only by default, Prometheus text.
pub async fn metrics_endpoint(serve: Serve) {
    let server = TestServer::with(serve, "metrics", |c| c).await;
    let http = Http::new(&server, client_ip(1));
    assert_eq!(http.get("/api/metrics").await.status, 401);
    let player = Player::connect(&server, client_ip(2)).await;
    let puzzle = player.puzzle().await.json();
    let body = player.solution(&puzzle).await;
    assert_eq!(player.verify(&body).await.status, 200);
    let m = http.admin_get("/api/metrics").await;
    assert_eq!(m.status, 200);
    for needle in [
        "hashpass_puzzles_solved_total 1",
        "hashpass_verifications_total{outcome=\"win\"} 1",
        "hashpass_verification_seconds_count 1",
        "hashpass_player_sockets 1",
        "hashpass_sessions 1",
    ] {
        assert!(m.text.contains(needle), "missing {needle} in\n{}", m.text);
    }
    let public = TestServer::with(serve, "metrics-public", |c| c.with_metrics_public(true)).await;
    assert_eq!(
        Http::new(&public, client_ip(1))
            .get("/api/metrics")
            .await
            .status,
        200
    );
}

/// Runs one browser end-to-end script (`tests/browser/<script>`) against `server` in headless
/// Chromium, saving screenshots under `tests/output/<test binary>/`.
async fn run_browser_script(server: &TestServer, script: &str) {
    run_browser_script_with(server, script, &[]).await;
}

/// Runs `tests/browser/<script>` against `server` in headless Chromium (with `extra` arguments
/// after the usual `--base`, `--admin-token`, `--chromium` and `--out`); fails with its output.
pub async fn run_browser_script_with(server: &TestServer, script: &str, extra: &[&str]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium =
        std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/lib/chromium/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium is not installed at {chromium}: `apt-get install -y chromium` (the CI script does), or set CHROMIUM"
    );
    assert!(
        root.join("browser/node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci --prefix tests/browser`"
    );
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let suite = binary.split('-').next().unwrap_or("browser").to_string();
    let out = root.join("output").join(suite);
    let output = tokio::process::Command::new("node")
        .arg(root.join("browser").join(script))
        .args([
            "--base",
            &server.url(""),
            "--admin-token",
            ADMIN_TOKEN,
            "--chromium",
            &chromium,
        ])
        .arg("--out")
        .arg(&out)
        .args(extra)
        .output()
        .await
        .expect("node runs (install Node.js)");
    assert!(
        output.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A browser configuration: tiny Argon2, difficulty 3, two workers, no limit on sockets or
/// sessions per IP (every browser context comes from 127.0.0.1).
pub fn browser_config(c: hashpass::Config) -> hashpass::Config {
    c.with_argon2(hashpass::puzzle::Argon2Params::new(1, 64, 1))
        .with_difficulty(3u32)
        .with_min_difficulty(3u32)
        .with_max_difficulty(3u32)
        .with_worker_count(2u32)
        .with_max_connections_per_ip(0u32)
        .with_sessions_per_address(0)
}

/// The miner page in real Chromium: mines, wins a code the audit log holds; a second browser
/// sees the reset and mines the new puzzle; no console error, failed or foreign request.
pub async fn browser_miner(serve: Serve) {
    let server = TestServer::with(serve, "browser-miner", browser_config).await;
    run_browser_script(&server, "miner.e2e.mjs").await;
}

/// The admin console in real Chromium: login, live cards, settings forms pre-filled with the
/// current values and marking what changed, confirmation dialogs (cancel sends nothing, confirm
/// sends once and shows the server's answer), a 422, a reset, a ban and an unban, sorting and
/// filtering the miners and sessions tables across refreshes, both languages; no console error,
/// failed or foreign request.
pub async fn browser_admin(serve: Serve) {
    let server = TestServer::with(serve, "browser-admin", browser_config).await;
    // Two codes in the invite log: one redeemed by a host site's account, one not.
    let redeemed = win_a_code(&server, client_ip(40)).await;
    server
        .hashpass
        .gate()
        .redeem(&redeemed, "alice")
        .await
        .expect("a fresh code redeems");
    win_a_code(&server, client_ip(41)).await;
    run_browser_script(&server, "admin.e2e.mjs").await;
}

/// Wins the current puzzle from `ip`; the invite code.
pub async fn win_a_code(server: &impl crate::client::Reachable, ip: IpAddr) -> String {
    let player = Player::connect(server, ip).await;
    let puzzle = player.puzzle().await.json();
    let answer = player.verify(&player.solution(&puzzle).await).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["invite_code"]
        .as_str()
        .expect("a code")
        .to_string()
}

/// 200 wrong admin tokens at once from one address: at most 10 are compared (403, or the 429
/// that locks out); the rest are refused uncompared; the lockout answers carry `Retry-After`.
pub async fn parallel_admin_guesses(serve: Serve) {
    let server = TestServer::with(serve, "guesses", |c| c).await;
    let guesser = Http::new(&server, client_ip(60));
    let answers = futures_util::future::join_all((0..200).map(|_| {
        guesser.send(
            "GET",
            "/api/admin/status",
            &[("authorization", "Bearer wrong-guess")],
            Vec::new(),
        )
    }))
    .await;
    let compared = answers
        .iter()
        .filter(|a| {
            a.status == 403
                || a.detail()
                    .starts_with("Too many failed attempts. Locked out")
        })
        .count();
    assert!(
        (1..=10).contains(&compared),
        "{compared} of 200 parallel guesses were compared"
    );
    assert!(answers.iter().all(|a| a.status == 403 || a.status == 429));
    let refused = answers
        .iter()
        .find(|a| a.status == 429)
        .expect("locked out");
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "Retry-After: {retry}");
    // The lock holds even for the right token; another address is unaffected.
    assert_eq!(guesser.admin_get("/api/admin/status").await.status, 429);
    assert_eq!(
        Http::new(&server, client_ip(61))
            .admin_get("/api/admin/status")
            .await
            .status,
        200
    );
}

/// Behind a trusted proxy, `X-Forwarded-For` sent as two lines is one list in order: the
/// right-most untrusted hop is the client, never the line the client wrote first.
pub async fn forwarded_for_lines(serve: Serve) {
    let server = TestServer::with(serve, "forwarded", |c| {
        c.with_trusted_proxies(vec!["127.0.0.0/8".parse().unwrap()])
            .with_client_ip_header("X-Forwarded-For".into())
    })
    .await;
    let proxy = Http::new(&server, client_ip(70));
    let traced = |a: &crate::client::Answer| {
        a.text
            .lines()
            .find_map(|l| l.strip_prefix("ip="))
            .unwrap_or_default()
            .to_string()
    };
    let two_lines = proxy
        .send(
            "GET",
            "/api/dev/trace",
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(two_lines.status, 200);
    assert_eq!(traced(&two_lines), "203.0.113.9");
    let with_proxy_hop = proxy
        .send(
            "GET",
            "/api/dev/trace",
            &[
                ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
                ("x-forwarded-for", "127.0.0.9"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(traced(&with_proxy_hop), "203.0.113.9");
}

/// At most `sessions_per_address` sessions of one address are alive: a new one beyond it
/// revokes the oldest, whose socket is closed with 1008 and a reason saying why.
pub async fn session_budget_per_address(serve: Serve) {
    let server = TestServer::with(serve, "session-budget", |c| {
        c.with_max_connections_per_ip(0)
            .with_sessions_per_address(2)
    })
    .await;
    let ip = client_ip(80);
    // Sessions are told apart by age: one second between them on the server's clock.
    let mut oldest = Player::connect(&server, ip).await;
    server.clock.advance_secs(1.0);
    let second = Player::connect(&server, ip).await;
    assert_eq!(oldest.puzzle().await.status, 200);
    server.clock.advance_secs(1.0);
    let third = Player::connect(&server, ip).await;
    let (code, reason) = expect_close(&mut oldest.ws, Duration::from_secs(5)).await;
    assert_eq!(
        (code, reason.as_str()),
        (1008, "Too many sessions from your address")
    );
    assert_eq!(oldest.puzzle().await.status, 401, "the oldest was revoked");
    assert_eq!(second.puzzle().await.status, 200);
    assert_eq!(third.puzzle().await.status, 200);
    // A session left behind (disconnected, in its grace period) goes before a connected one,
    // however old.
    let Player {
        ws,
        token: left_behind,
        ..
    } = third;
    drop(ws);
    server.clock.advance_secs(1.0);
    // Bounded: the server marks the session disconnected within a few seconds.
    for _ in 0..100 {
        let sessions = Http::new(&server, client_ip(99))
            .admin_get("/api/admin/sessions")
            .await
            .json();
        let disconnected = sessions.as_array().into_iter().flatten().any(|s| {
            left_behind.starts_with(
                s["token_preview"]
                    .as_str()
                    .unwrap_or("-")
                    .trim_end_matches('.'),
            ) && s["is_connected"] == false
        });
        if disconnected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fourth = Player::connect(&server, ip).await;
    let http = Http::new(&server, ip);
    let body = json!({ "visitorId": "visitor_left_behind" });
    assert_eq!(
        http.post("/api/puzzle", &body, Some(&left_behind))
            .await
            .status,
        401,
        "the disconnected session was revoked"
    );
    assert_eq!(second.puzzle().await.status, 200, "the connected one kept");
    assert_eq!(fourth.puzzle().await.status, 200);
    // Another address has a budget of its own.
    let elsewhere = Player::connect(&server, client_ip(81)).await;
    assert_eq!(elsewhere.puzzle().await.status, 200);
    assert_eq!(second.puzzle().await.status, 200);
}

/// A graceful shutdown hands over (docs/protocol.md#graceful-shutdown): new sockets are refused
/// with 503, the open ones (player and admin) get 1001, each session's grace starts, and a
/// verification in flight is still answered and on record.
pub async fn graceful_shutdown_hands_over(serve: Serve) {
    let server = TestServer::with(serve, "shutdown", |c| c).await;
    let mut player = Player::connect(&server, client_ip(1)).await;
    let solver = Player::connect(&server, client_ip(2)).await;
    let mut admin_ws = open_ws(
        &server,
        client_ip(50),
        &format!("/api/admin/ws?token={ADMIN_TOKEN}"),
    )
    .await
    .expect("admin socket");
    let probe = Http::new(&server, client_ip(51));
    let ready = probe.get("/api/health/ready").await;
    assert_eq!(
        (ready.status, ready.json()),
        (200, json!({ "status": "ready" }))
    );
    let puzzle = solver.puzzle().await.json();
    let body = solver.solution(&puzzle).await;
    let hashpass = server.hashpass.clone();
    let (verified, handed_over) = tokio::join!(solver.verify(&body), async move {
        hashpass.shutdown(Duration::from_secs(5)).await
    });
    assert!(
        handed_over,
        "every socket closed and every verification answered in time"
    );
    assert_eq!(verified.status, 200, "{}", verified.text);
    let code = verified.json()["invite_code"].as_str().unwrap().to_string();
    let logs = Http::new(&server, client_ip(50))
        .admin_get("/api/admin/logs?per_page=1")
        .await
        .json();
    assert_eq!(logs["records"][0]["invite_code"], code.as_str());
    assert_eq!(
        expect_close(&mut player.ws, WAIT).await.0,
        1001,
        "the player's page is told to reconnect"
    );
    assert_eq!(expect_close(&mut admin_ws, WAIT).await.0, 1001);
    let sessions = &server.hashpass.service().seams().sessions;
    let session = sessions.get(&player.token).await.unwrap().unwrap();
    assert!(
        session.connection.is_none() && session.disconnected_at.is_some(),
        "the session's grace started: {session:?}"
    );
    assert_eq!(
        open_ws(&server, client_ip(3), "/api/ws?token=captcha")
            .await
            .err(),
        Some(503),
        "a draining instance takes no new socket"
    );
    let draining = probe.get("/api/health/ready").await;
    assert_eq!(draining.status, 503, "a draining instance is not ready");
    assert!(
        draining.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("shutting down"))
    );
    let live = probe.get("/api/health/live").await;
    assert_eq!(
        (live.status, live.json()),
        (200, json!({ "status": "alive" })),
        "a draining instance is still alive: no restart"
    );
    player.ws.close(None).await.ok();
}

/// An audit log that fails while told to: the disk full, the store down.
struct FailingAudit {
    inner: hashpass::audit::MemoryAuditLog,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl hashpass::audit::AuditLog for FailingAudit {
    async fn append(
        &self,
        record: &hashpass::audit::AuditRecord,
    ) -> Result<(), hashpass::StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(hashpass::StoreError::Unavailable("disk full".into()));
        }
        self.inner.append(record).await
    }
    async fn files(&self) -> Result<Vec<String>, hashpass::StoreError> {
        self.inner.files().await
    }
    async fn page(
        &self,
        query: &hashpass::audit::LogQuery,
    ) -> Result<hashpass::audit::LogPage, hashpass::StoreError> {
        self.inner.page(query).await
    }
    async fn stats(&self) -> Result<hashpass::audit::LogStats, hashpass::StoreError> {
        self.inner.stats().await
    }
    async fn recent_solve_times(&self, n: usize) -> Result<Vec<f64>, hashpass::StoreError> {
        self.inner.recent_solve_times(n).await
    }
}

/// A win that cannot be put on record is not answered with its code
/// (docs/protocol.md#an-answered-win-is-on-record): 503, counted in the status and the metrics;
/// once the log works again, the next win is answered and on record.
pub async fn unrecorded_win_is_not_acknowledged(serve: Serve) {
    let audit = std::sync::Arc::new(FailingAudit {
        inner: hashpass::audit::MemoryAuditLog::default(),
        failing: std::sync::atomic::AtomicBool::new(true),
    });
    let dir = crate::server::temp_dir("unrecorded");
    let seam = std::sync::Arc::clone(&audit);
    let server =
        TestServer::start_custom(serve, crate::server::test_config(&dir), dir, None, |b| {
            b.audit_log(seam)
        })
        .await;
    let player = Player::connect(&server, client_ip(1)).await;
    let puzzle = player.puzzle().await.json();
    let body = player.solution(&puzzle).await;
    let refused = player.verify(&body).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert!(refused.json().get("invite_code").is_none());
    assert!(
        refused.detail().contains("could not be recorded"),
        "{}",
        refused.text
    );
    let admin = Http::new(&server, client_ip(50));
    let status = admin.admin_get("/api/admin/status").await.json();
    assert_eq!(status["wins_not_recorded"], 1);
    assert_ne!(
        status["current_seed"], puzzle["seed"],
        "the puzzle moved on"
    );
    let metrics = admin.admin_get("/api/metrics").await.text;
    assert!(
        metrics.contains("hashpass_wins_not_recorded_total 1"),
        "{metrics}"
    );
    audit
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let puzzle = player.puzzle().await.json();
    let body = player.solution(&puzzle).await;
    let won = player.verify(&body).await;
    assert_eq!(won.status, 200, "{}", won.text);
    let logs = admin.admin_get("/api/admin/logs").await.json();
    assert_eq!(logs["total"], 1);
    assert_eq!(logs["records"][0]["invite_code"], won.json()["invite_code"]);
}

/// The webhook outbox survives a restart (docs/protocol.md#webhook-outbox): a delivery the
/// receiver refused is still pending after the instance stops, and the next instance on the
/// same data (files, or Redis) delivers it, with the invite code as idempotency key.
pub async fn webhook_outbox_survives_restart(serve: Serve) {
    let receiver = crate::webhook_receiver::WebhookReceiver::start().await;
    receiver.answer(503);
    let dir = crate::server::temp_dir("outbox");
    let config = crate::server::test_config(&dir)
        .with_webhook_url(Some(receiver.url().as_str().into()))
        .with_webhook_secret(Some("outbox-secret".into()));
    let server = TestServer::start(serve, config.clone(), dir.clone()).await;
    let player = Player::connect(&server, client_ip(1)).await;
    let puzzle = player.puzzle().await.json();
    let body = player.solution(&puzzle).await;
    let won = player.verify(&body).await;
    assert_eq!(won.status, 200, "{}", won.text);
    let code = won.json()["invite_code"].as_str().unwrap().to_string();
    assert!(
        receiver.wait_until(WAIT, |d| !d.is_empty()).await,
        "the first attempt is made at once"
    );
    let status = Http::new(&server, client_ip(50))
        .admin_get("/api/admin/status")
        .await
        .json();
    assert_eq!(status["webhook"]["pending"], 1, "{}", status["webhook"]);
    assert_eq!(status["webhook"]["configured"], true);
    drop(player);
    let files_backed = !server.shares_state();
    server.shutdown().await;
    if files_backed {
        // Deliveries only: the worker may still be rewriting this one after its failed attempt
        // (the outbox's own reader skips such a half-written temporary file too).
        let pending = std::fs::read_dir(dir.join("data/webhook-outbox/pending"))
            .unwrap()
            .filter(|entry| {
                let path = entry.as_ref().unwrap().path();
                path.extension().is_some_and(|e| e == "json")
            })
            .count();
        assert_eq!(pending, 1, "the delivery waits on disk");
    }
    receiver.answer(200);
    let restarted = TestServer::start(serve, config, dir).await;
    // Past the first retry's back-off on the new instance's clock.
    restarted.clock.advance_secs(2.0);
    assert!(
        receiver
            .wait_until(Duration::from_secs(10), |d| d
                .iter()
                .any(|d| d.status == 200))
            .await,
        "the next instance delivers what the last one left"
    );
    let accepted = receiver.accepted_codes();
    assert_eq!(accepted, [code.clone()].into());
    let delivered = receiver
        .deliveries()
        .into_iter()
        .find(|d| d.status == 200)
        .unwrap();
    assert_eq!(delivered.header("idempotency-key"), Some(code.as_str()));
    let attempt: u32 = delivered
        .header("x-hashpass-delivery-attempt")
        .unwrap()
        .parse()
        .unwrap();
    assert!(attempt >= 2, "a retry, counted: {attempt}");
    let status = Http::new(&restarted, client_ip(50))
        .admin_get("/api/admin/status")
        .await
        .json();
    assert_eq!(status["webhook"]["pending"], 0, "{}", status["webhook"]);
}

/// A delivery failing past `HASHPASS_WEBHOOK_GIVE_UP_AFTER` is given up, listed as failed, and
/// requeued with its full schedule when an admin asks for a retry: a failure then is retried
/// after its back-off, not given up at once, and the delivery is made once the receiver is back
/// (docs/protocol.md#webhook-outbox).
pub async fn failed_webhooks_are_retried_on_request(serve: Serve) {
    let receiver = crate::webhook_receiver::WebhookReceiver::start().await;
    receiver.answer(500);
    let server = TestServer::with(serve, "webhook-retry", |c| {
        c.with_webhook_url(Some(receiver.url().as_str().into()))
            .with_webhook_give_up_after(Duration::from_secs(1))
    })
    .await;
    let admin = Http::new(&server, client_ip(50));
    let code = win_a_code(&server, client_ip(1)).await;
    assert!(receiver.wait_until(WAIT, |d| d.len() == 1).await);
    // The retry after 1 s is the last: the delivery is older than the give-up time by then.
    server.clock.advance_secs(1.5);
    assert!(receiver.wait_until(WAIT, |d| d.len() == 2).await);
    let deadline = tokio::time::Instant::now() + WAIT;
    let outbox = loop {
        let outbox = admin.admin_get("/api/admin/webhooks").await.json();
        if outbox["failed"] == 1 || tokio::time::Instant::now() > deadline {
            break outbox;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (outbox["pending"].as_u64(), outbox["failed"].as_u64()),
        (Some(0), Some(1)),
        "{outbox}"
    );
    let failed = &outbox["failed_deliveries"][0];
    assert_eq!(failed["event"]["invite_code"], code.as_str());
    assert_eq!(
        (failed["attempts"].as_u64(), failed["last_error"].as_str()),
        (Some(2), Some("HTTP 500"))
    );
    let status = admin.admin_get("/api/admin/status").await.json();
    assert_eq!(status["webhook"]["failed"], 1);
    let bad_limit = admin.admin_get("/api/admin/webhooks?limit=x").await;
    assert_eq!(bad_limit.status, 422, "{}", bad_limit.text);

    let retried = admin
        .admin_post("/api/admin/webhooks/retry", &json!({}))
        .await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    assert_eq!(
        retried.json()["message"],
        "Requeued 1 failed webhook deliveries"
    );
    // The receiver still fails: the requeued delivery's first attempt is rescheduled (its
    // give-up time counts from the retry), not given up again.
    assert!(receiver.wait_until(WAIT, |d| d.len() == 3).await);
    let deadline = tokio::time::Instant::now() + WAIT;
    let outbox = loop {
        let outbox = admin.admin_get("/api/admin/webhooks").await.json();
        if outbox["pending_deliveries"][0]["attempts"] == 1
            || tokio::time::Instant::now() > deadline
        {
            break outbox;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (outbox["pending"].as_u64(), outbox["failed"].as_u64()),
        (Some(1), Some(0)),
        "{outbox}"
    );
    assert_eq!(outbox["pending_deliveries"][0]["attempts"], 1, "{outbox}");
    receiver.answer(204);
    // Its back-off (1 s) on the instance's clock.
    server.clock.advance_secs(1.0);
    assert!(
        receiver
            .wait_until(WAIT, |_| receiver.accepted_codes().contains(&code))
            .await,
        "the requeued delivery is made"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let outbox = admin.admin_get("/api/admin/webhooks").await.json();
        if outbox["pending"] == 0 && outbox["failed"] == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{outbox}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
