//! Instances that fail, as real `hashpass-server` processes on one real `redis-server`
//! (append-only, fsync always) with a local webhook receiver: an instance killed with SIGKILL
//! in the middle of a stream of wins loses no answered win (audit and webhook), the other keeps
//! serving and counts the dead one's sessions as disconnected within the lease; a webhook
//! receiver down for two minutes gets every win once it is back, signed and replay-detectable.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashpass_tests::client::{Http, Player, client_ip};
use hashpass_tests::process::{ServerProcess, quick_game_env};
use hashpass_tests::redis_server::{RedisServer, unique_prefix};
use hashpass_tests::server::temp_dir;
use hashpass_tests::webhook_receiver::WebhookReceiver;
use serde_json::Value;

use hashpass_tests::server::ADMIN_TOKEN as ADMIN;
const SECRET: &str = "instance-failures-webhook-secret";

/// Two instances of one deployment on `redis`, telling `receiver` of every invite.
async fn deployment(
    name: &str,
    redis: &RedisServer,
    receiver: &WebhookReceiver,
    extra: &[(&str, &str)],
) -> (ServerProcess, ServerProcess) {
    let prefix = unique_prefix(name);
    let url = receiver.url();
    let mut instances = Vec::new();
    for instance in ["a", "b"] {
        let dir = temp_dir(&format!("{name}-{instance}"));
        let data = dir.join("data");
        let logs = dir.join("log");
        let mut env = quick_game_env("0", ADMIN);
        env.retain(|(k, _)| *k != "PORT" && *k != "HASHPASS_HOST");
        let (data, logs) = (data.to_string_lossy(), logs.to_string_lossy());
        env.extend([
            ("HASHPASS_REDIS_URL", redis.url.as_str()),
            ("HASHPASS_REDIS_PREFIX", prefix.as_str()),
            ("WEBHOOK_URL", url.as_str()),
            ("WEBHOOK_SECRET", SECRET),
            ("HASHPASS_DATA_DIR", &data),
            ("HASHPASS_LOG_DIR", &logs),
            ("HASHPASS_MAX_CONNECTIONS_PER_IP", "0"),
        ]);
        env.extend_from_slice(extra);
        instances.push(ServerProcess::start(&dir, &env).await);
    }
    let b = instances.pop().unwrap();
    (instances.pop().unwrap(), b)
}

/// Wins from `player` on its instance until it fails to answer or `stop` is set; every code
/// answered 200 goes to `codes`.
async fn keep_winning(player: Player, codes: Arc<Mutex<Vec<String>>>, stop: Arc<Mutex<bool>>) {
    let puzzle_body = serde_json::json!({ "visitorId": player.visitor });
    while !*stop.lock().unwrap() {
        let Some(puzzle) = post(&player, "/api/puzzle", puzzle_body.clone()).await else {
            return;
        };
        if puzzle.get("seed").is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let body = player.solution(&puzzle).await;
        let Some(answer) = post(&player, "/api/verify", body).await else {
            return;
        };
        if let Some(code) = answer.get("invite_code").and_then(Value::as_str) {
            codes.lock().unwrap().push(code.to_string());
        }
    }
}

/// POSTs `body` as `player`; the answer's JSON, or `None` when the server did not answer.
async fn post(player: &Player, path: &str, body: Value) -> Option<Value> {
    let auth = format!("Bearer {}", player.token);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let body = serde_json::to_vec(&body).expect("JSON");
    let answer = player.http.try_send("POST", path, &headers, body).await;
    answer.ok().map(|a| a.json())
}

/// Every invite code in the deployment's audit log.
async fn audited(server: &ServerProcess) -> BTreeSet<String> {
    let admin = Http::new(server, client_ip(50));
    let mut codes = BTreeSet::new();
    for page in 1.. {
        let logs = admin
            .admin_get(&format!("/api/admin/logs?per_page=100&page={page}"))
            .await;
        assert_eq!(logs.status, 200, "{}", logs.text);
        let records = logs.json()["records"].as_array().unwrap().clone();
        if records.is_empty() {
            break;
        }
        codes.extend(
            records
                .iter()
                .map(|r| r["invite_code"].as_str().unwrap().to_string()),
        );
    }
    codes
}

/// A player on `server` from `ip`, winning ([`keep_winning`]) on a task of its own.
async fn winning_stream(
    server: &ServerProcess,
    ip: std::net::IpAddr,
    codes: &Arc<Mutex<Vec<String>>>,
    stop: &Arc<Mutex<bool>>,
) -> tokio::task::JoinHandle<()> {
    let player = Player::connect(server, ip).await;
    tokio::spawn(keep_winning(player, Arc::clone(codes), Arc::clone(stop)))
}

/// Waits until `codes` holds `count` codes, or `within` passed.
async fn wait_for_wins(codes: &Mutex<Vec<String>>, count: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while codes.lock().unwrap().len() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until no session of `ips` counts as connected on `server`, failing 30 s after
/// `killed_at`; how long after `killed_at` that was.
async fn wait_until_disconnected(
    server: &ServerProcess,
    ips: &BTreeSet<String>,
    killed_at: Instant,
) -> Duration {
    let admin = Http::new(server, client_ip(50));
    loop {
        let sessions = admin.admin_get("/api/admin/sessions").await.json();
        let still_connected = sessions
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| ips.contains(s["ip"].as_str().unwrap()))
            .filter(|s| s["is_connected"] == true)
            .count();
        if still_connected == 0 {
            return killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "{still_connected} sessions of the dead instance still count as connected"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_stream_loses_no_answered_win() {
    let redis = RedisServer::start_persistent();
    let receiver = WebhookReceiver::start().await;
    let (a, mut b) = deployment("killed", &redis, &receiver, &[]).await;
    // Idle players on B whose sessions must count as disconnected once B is dead.
    let mut idle = Vec::new();
    for i in 0..4 {
        idle.push(Player::connect(&b, client_ip(200 + i)).await);
    }
    let codes: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(Mutex::new(false));
    let stream_a = winning_stream(&a, client_ip(1), &codes, &stop).await;
    let stream_b = winning_stream(&b, client_ip(2), &codes, &stop).await;
    wait_for_wins(&codes, 10, Duration::from_secs(60)).await;
    b.kill().await;
    let killed_at = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream_b).await;
    // A keeps serving: more wins after the kill.
    let after_kill = codes.lock().unwrap().len();
    wait_for_wins(&codes, after_kill + 3, Duration::from_secs(30)).await;
    *stop.lock().unwrap() = true;
    let _ = stream_a.await;
    let answered: BTreeSet<String> = codes.lock().unwrap().iter().cloned().collect();
    assert!(
        answered.len() >= after_kill + 3,
        "the other instance kept serving: {} wins before the kill, {} in all",
        after_kill,
        answered.len()
    );

    // The dead instance's sessions count as disconnected within the lease (15 s) and one round
    // of the jobs (5 s).
    let idle_ips: BTreeSet<String> = (0..4).map(|i| client_ip(200 + i).to_string()).collect();
    let noticed = wait_until_disconnected(&a, &idle_ips, killed_at).await;
    eprintln!("the dead instance's sessions were disconnected {noticed:?} after the kill");

    // Every answered code is in the audit, and its webhook arrives (what the dead instance had
    // taken is handed on after the delivery lease).
    let in_audit = audited(&a).await;
    let missing: Vec<&String> = answered.difference(&in_audit).collect();
    assert!(missing.is_empty(), "answered but not audited: {missing:?}");
    b.restart().await;
    let all_arrived = receiver
        .wait_until(Duration::from_secs(40), |_| {
            answered.is_subset(&receiver.accepted_codes())
        })
        .await;
    let unarrived: Vec<String> = answered
        .difference(&receiver.accepted_codes())
        .cloned()
        .collect();
    assert!(all_arrived, "answered but never delivered: {unarrived:?}");
    let restarted = Http::new(&b, client_ip(3)).get("/api/health").await;
    assert_eq!(restarted.status, 200, "the killed instance serves again");
}

/// How long the webhook receiver stays down.
const OUTAGE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receiver_down_for_two_minutes_gets_every_win() {
    let redis = RedisServer::start_persistent();
    let mut receiver = WebhookReceiver::start().await;
    let (a, b) = deployment(
        "receiver-down",
        &redis,
        &receiver,
        &[("HASHPASS_WEBHOOK_MAX_BACKOFF", "10")],
    )
    .await;
    receiver.go_down().await;
    let down_at = Instant::now();
    let players = [
        Player::connect(&a, client_ip(1)).await,
        Player::connect(&b, client_ip(2)).await,
    ];
    let mut codes = BTreeSet::new();
    let mut round = 0;
    while down_at.elapsed() < OUTAGE {
        let player = &players[round % 2];
        round += 1;
        let puzzle = player.puzzle().await.json();
        let won = player.verify(&player.solution(&puzzle).await).await;
        assert_eq!(won.status, 200, "{}", won.text);
        codes.insert(won.json()["invite_code"].as_str().unwrap().to_string());
        if round == 3 {
            check_pending(&a, &b).await;
        }
        tokio::time::sleep(Duration::from_secs(8)).await;
    }
    receiver.come_back().await;
    let back_at = Instant::now();
    let all = receiver
        .wait_until(Duration::from_secs(40), |_| {
            codes.is_subset(&receiver.accepted_codes())
        })
        .await;
    assert!(
        all,
        "not delivered: {:?}",
        codes
            .difference(&receiver.accepted_codes())
            .collect::<Vec<_>>()
    );
    eprintln!(
        "{} wins during a {OUTAGE:?} outage, all delivered {:?} after the receiver came back",
        codes.len(),
        back_at.elapsed()
    );
    check_signatures(&receiver);
}

/// While the receiver is down, the deliveries wait in the outbox: the admin status, the
/// metrics (on `a`) and the `outbox` tool (beside `b`) show them pending, with their error.
async fn check_pending(a: &ServerProcess, b: &ServerProcess) {
    let admin = Http::new(a, client_ip(50));
    let status = admin.admin_get("/api/admin/status").await.json();
    assert!(
        status["webhook"]["pending"].as_u64() >= Some(1),
        "{}",
        status["webhook"]
    );
    let metrics = admin.admin_get("/api/metrics").await.text;
    assert!(metrics.contains("hashpass_webhook_pending "), "{metrics}");
    let tool = b.run_tool(&["outbox", "--limit", "10"]).await;
    assert!(tool.status.success(), "{tool:?}");
    let listed: Value = serde_json::from_slice(&tool.stdout).expect("JSON");
    assert!(listed["pending"].as_u64() >= Some(1), "{listed}");
    assert!(
        listed["pending_deliveries"][0]["last_error"].is_string(),
        "{listed}"
    );
}

/// Every delivery `receiver` accepted is keyed by its code and signed: fresh, it verifies;
/// replayed ten minutes later, it is refused for its timestamp.
fn check_signatures(receiver: &WebhookReceiver) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for delivery in receiver.deliveries().iter().filter(|d| d.status == 204) {
        assert_eq!(
            delivery.header("idempotency-key"),
            Some(delivery.invite_code().as_str())
        );
        let header = delivery
            .header("x-hashpass-timestamped-signature")
            .expect("signed");
        hashpass::webhook::verify_timestamped_signature(
            SECRET.as_bytes(),
            header,
            delivery.body.as_bytes(),
            now,
            300,
        )
        .expect("a fresh delivery verifies");
        // The same delivery replayed ten minutes later is refused for its timestamp.
        assert!(matches!(
            hashpass::webhook::verify_timestamped_signature(
                SECRET.as_bytes(),
                header,
                delivery.body.as_bytes(),
                now + 600,
                300,
            ),
            Err(hashpass::webhook::SignatureError::Stale { .. })
        ));
    }
}
