//! Socket messages cost what they are worth (docs/protocol.md#message-rate), on a real
//! `redis-server` started for each test: 20,000 control messages on one socket cost Redis fewer
//! than 0.1 commands each, with or without the per-socket limit, and the server stays healthy;
//! 2,000 reconnects with one session token, against a real `hashpass-server` process, add at most
//! 40 lines to its log file.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hashpass::redis::RedisBackend;
use hashpass_tests::client::{Http, Player, client_ip, expect_type, open_ws};
use hashpass_tests::process::{ServerProcess, quick_game_env};
use hashpass_tests::redis_server::RedisServer;
use hashpass_tests::server::{ADMIN_TOKEN, TestServer, temp_dir, test_config};
use tokio_tungstenite::tungstenite::Message;

/// Control messages in a flood.
const FLOOD: usize = 20_000;

/// The flood's `i`-th message: `mining_start`, `hashrate`, `mining_stop`, `ping` in turn, ending
/// with `mining_start` and a `hashrate` of 77.5 (the state the socket is left in).
fn control_message(i: usize) -> String {
    match (FLOOD - 1 - i, i % 4) {
        (0, _) => r#"{"type":"hashrate","payload":{"rate":77.5,"timestamp":1}}"#.into(),
        (1, _) | (_, 0) => r#"{"type":"mining_start"}"#.into(),
        (_, 1) => format!(r#"{{"type":"hashrate","payload":{{"rate":{i},"timestamp":1}}}}"#),
        (_, 2) => r#"{"type":"mining_stop"}"#.into(),
        _ => "ping".into(),
    }
}

/// The pings among the flood's messages.
fn pings_in_flood() -> usize {
    (0..FLOOD).filter(|i| control_message(*i) == "ping").count()
}

/// A server sharing its state through `redis`, `adjust`ed, with a player from `client_ip(1)` who
/// has fetched the puzzle and declared mining, and the store given time to settle.
async fn server_on(
    redis: &RedisServer,
    name: &str,
    adjust: impl FnOnce(hashpass::Config) -> hashpass::Config,
) -> (TestServer, Player) {
    let dir = temp_dir(name);
    let backend = RedisBackend::connect(&redis.url, format!("{name}:"))
        .await
        .expect("redis reachable");
    let config = adjust(test_config(&dir));
    let server =
        TestServer::start_shared(hashpass_tests::adapters::axum, config, dir, Some(backend)).await;
    let mut player = Player::connect(&server, client_ip(1)).await;
    assert_eq!(player.puzzle().await.status, 200);
    player.send(r#"{"type":"mining_start"}"#).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    (server, player)
}

/// Redis commands a second while nothing but the background jobs runs, measured over `period`.
async fn idle_commands_per_second(redis: &RedisServer, period: Duration) -> f64 {
    let before = redis.commands_processed().await;
    tokio::time::sleep(period).await;
    let after = redis.commands_processed().await;
    // The first reading's own INFO is counted in the second.
    (after - before - 1) as f64 / period.as_secs_f64()
}

/// What a flood cost Redis: every command from `before` on, and the same less the background
/// jobs' share at the idle rate.
struct Cost {
    commands: u64,
    net: f64,
    elapsed: Duration,
}

async fn cost_since(redis: &RedisServer, before: u64, started: Instant, idle_rate: f64) -> Cost {
    let after = redis.commands_processed().await;
    let elapsed = started.elapsed();
    let commands = after - before - 1;
    Cost {
        commands,
        net: commands as f64 - idle_rate * elapsed.as_secs_f64(),
        elapsed,
    }
}

async fn healthy(server: &TestServer) {
    let health = Http::new(server, client_ip(60)).get("/api/health").await;
    assert_eq!(health.status, 200, "{}", health.text);
}

/// Without a per-socket limit (as a host that meters its clients itself may run it) every one of
/// the 20,000 messages is read and handled, and coalescing alone keeps Redis's share to a few
/// writes; the state the socket ended in is in the store, and the socket still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_without_a_limit_is_coalesced() {
    let redis = RedisServer::start();
    let (server, player) = server_on(&redis, "coalesced", |c| c.with_ws_message_rate(None)).await;
    let idle_rate = idle_commands_per_second(&redis, Duration::from_secs(4)).await;

    let before = redis.commands_processed().await;
    let started = Instant::now();
    let (mut sink, mut stream) = player.ws.split();
    let pings = pings_in_flood();
    let send = async {
        for i in 0..FLOOD {
            sink.feed(Message::Text(control_message(i).into()))
                .await
                .expect("the socket stays open");
        }
        sink.flush().await.expect("flushed");
    };
    // Every ping is answered, in order: the last PONG means every message was handled.
    let read = async {
        let mut pongs = 0;
        while pongs < pings {
            match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) if text.contains("PONG") => pongs += 1,
                Ok(Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)))) => {}
                other => panic!("after {pongs} of {pings} PONGs: {other:?}"),
            }
        }
    };
    futures_util::join!(send, read);
    // The newest declaration and report of the burst are written when their second ends.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cost = cost_since(&redis, before, started, idle_rate).await;
    eprintln!(
        "{FLOOD} messages: {} Redis commands in {:?} (idle: {idle_rate:.1}/s; {:.1} beyond idle)",
        cost.commands, cost.elapsed, cost.net
    );
    assert!(
        (cost.commands as f64) < 0.1 * FLOOD as f64,
        "{FLOOD} messages cost {} Redis commands",
        cost.commands
    );
    assert!(
        cost.net < 100.0,
        "{FLOOD} messages cost {:.1} Redis commands beyond the idle rate",
        cost.net
    );

    // The last state declared is the stored one.
    let admin = Http::new(&server, client_ip(50));
    let miners = admin.admin_get("/api/admin/miners").await.json();
    assert_eq!(miners[0]["ip"], client_ip(1).to_string(), "{miners}");
    assert_eq!(miners[0]["hashrate"], 77.5, "{miners}");
    let status = admin.admin_get("/api/admin/status").await.json();
    assert_eq!(status["is_mining_active"], true, "{status}");
    // The server and the socket still work.
    healthy(&server).await;
    let mut ws = sink.reunite(stream).expect("the halves of one socket");
    ws.send(Message::Text("ping".into())).await.unwrap();
    expect_type(&mut ws, "PONG", Duration::from_secs(5)).await;
}

/// With the default limit the flood is cut short: the socket is closed with 1008 after its burst,
/// Redis pays next to nothing, and the session reconnects and plays on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_closed_and_the_session_reconnects() {
    let redis = RedisServer::start();
    let (server, player) = server_on(&redis, "flood-closed", |c| c).await;
    let idle_rate = idle_commands_per_second(&redis, Duration::from_secs(4)).await;

    let before = redis.commands_processed().await;
    let started = Instant::now();
    let Player { ws, token, .. } = player;
    // A client that reads while it sends, and stops sending once the server has closed.
    let (mut sink, mut stream) = ws.split();
    let closed = std::sync::atomic::AtomicBool::new(false);
    let send = async {
        let mut sent = 0;
        for i in 0..FLOOD {
            if closed.load(std::sync::atomic::Ordering::SeqCst)
                || sink
                    .send(Message::Text(control_message(i).into()))
                    .await
                    .is_err()
            {
                break;
            }
            sent += 1;
            if sent % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
        sent
    };
    let read = async {
        let mut pongs = 0;
        let close = loop {
            match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => {
                    break frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Ok(Some(Ok(Message::Text(text)))) if text.contains("PONG") => pongs += 1,
                Ok(Some(Ok(_))) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        };
        closed.store(true, std::sync::atomic::Ordering::SeqCst);
        (close, pongs)
    };
    let (sent, (close, pongs)) = futures_util::join!(send, read);
    assert_eq!(close, Some((1008, "Too many messages".into())));
    // The budget's 100 frames and 20 a second, of which a quarter are pings: nothing after the
    // close is answered.
    let allowed = (100.0 + 20.0 * started.elapsed().as_secs_f64()) / 4.0 + 1.0;
    assert!(
        (pongs as f64) <= allowed,
        "{pongs} PONGs for {sent} messages sent, at most {allowed:.0} allowed"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cost = cost_since(&redis, before, started, idle_rate).await;
    eprintln!(
        "{sent} messages sent before the close: {} Redis commands in {:?} ({:.1} beyond idle)",
        cost.commands, cost.elapsed, cost.net
    );
    assert!(
        (cost.commands as f64) < 0.1 * FLOOD as f64,
        "the flood cost {} Redis commands",
        cost.commands
    );

    healthy(&server).await;
    let mut again = open_ws(&server, client_ip(1), &format!("/api/ws?token={token}"))
        .await
        .expect("the session reconnects");
    again
        .send(Message::Text(r#"{"type":"mining_start"}"#.into()))
        .await
        .unwrap();
    again.send(Message::Text("ping".into())).await.unwrap();
    expect_type(&mut again, "PONG", Duration::from_secs(5)).await;
    let metrics = Http::new(&server, client_ip(50))
        .admin_get("/api/metrics")
        .await
        .text;
    assert!(
        metrics.contains("hashpass_sockets_closed_flooding_total 1"),
        "{metrics}"
    );
}

/// Lines in every file of the log directory.
fn log_lines(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|text| text.lines().count())
                .sum()
        })
        .unwrap_or(0)
}

/// Reconnects from one client, four at a time: each replaces the session's previous socket, and
/// one in ten is also tried from another address and refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_add_few_log_lines() {
    const RECONNECTS: usize = 2_000;
    let redis = RedisServer::start();
    let dir = temp_dir("reconnect-log");
    let logs = dir.join("log");
    let logs_text = logs.to_string_lossy().into_owned();
    let mut env = quick_game_env("0", ADMIN_TOKEN);
    env.retain(|(k, _)| *k != "PORT" && *k != "HASHPASS_HOST");
    env.extend([
        ("HASHPASS_REDIS_URL", redis.url.as_str()),
        ("HASHPASS_REDIS_PREFIX", "reconnects:"),
        ("HASHPASS_LOG_DIR", logs_text.as_str()),
    ]);
    let server = ServerProcess::start(&dir, &env).await;
    let player = Player::connect(&server, client_ip(1)).await;
    let token = player.token.clone();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = log_lines(&logs);
    assert!(before > 0, "the server logs to {}", logs.display());

    let started = Instant::now();
    let path = format!("/api/ws?token={token}");
    let clients = (0..4).map(|_| async {
        let mut previous = None;
        for i in 0..RECONNECTS / 4 {
            let ws = open_ws(&server, client_ip(1), &path)
                .await
                .expect("the reconnect is admitted");
            previous = Some(ws);
            if i % 10 == 0 {
                let refused = open_ws(&server, client_ip(2), &path).await.err();
                assert_eq!(refused, Some(403), "a session is bound to its address");
            }
        }
        drop(previous);
    });
    futures_util::future::join_all(clients).await;
    let elapsed = started.elapsed();
    drop(player);
    // Let the log writer catch up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let added = log_lines(&logs) - before;
    eprintln!("{RECONNECTS} reconnects in {elapsed:?}: {added} log lines");
    assert!(
        added <= 40,
        "{RECONNECTS} reconnects in {elapsed:?} added {added} log lines"
    );
    // The server is fine and the session still plays.
    let health = Http::new(&server, client_ip(3)).get("/api/health").await;
    assert_eq!(health.status, 200);
    let mut ws = open_ws(&server, client_ip(1), &path)
        .await
        .expect("the session reconnects");
    ws.send(Message::Text("ping".into())).await.unwrap();
    expect_type(&mut ws, "PONG", Duration::from_secs(5)).await;
}
