//! Several instances on one Redis: exactly one winner per puzzle across all of them, and every
//! socket on every instance hears every reset.

use std::time::Duration;

use hashpass::redis::RedisBackend;
use hashpass_tests::client::{Answer, Http, Player, client_ip, expect_type};
use hashpass_tests::redis_server;
use hashpass_tests::server::{TestServer, temp_dir, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_winner_per_round_and_resets_everywhere() {
    let redis = redis_server::shared();
    let prefix = redis_server::unique_prefix("instances");
    let mut instances = Vec::new();
    for name in ["a", "b"] {
        let dir = temp_dir(&format!("redis-{name}"));
        let backend = RedisBackend::connect(&redis.url, prefix.clone())
            .await
            .unwrap();
        let config = test_config(&dir).with_max_connections_per_ip(0u32);
        instances.push(
            TestServer::start_shared(hashpass_tests::adapters::axum, config, dir, Some(backend))
                .await,
        );
    }
    // 32 solvers, half on each instance, each from its own address.
    let mut players = Vec::new();
    for i in 0..32u32 {
        players.push(Player::connect(&instances[(i % 2) as usize], client_ip(100 + i)).await);
    }
    for round in 0..100 {
        let puzzle = players[0].puzzle().await.json();
        let mut bodies = Vec::new();
        for p in &players {
            let own = p.puzzle().await;
            assert_eq!(own.status, 200, "{}", own.text);
            assert_eq!(
                own.json()["seed"],
                puzzle["seed"],
                "both instances serve the same puzzle"
            );
            bodies.push(p.solution(&puzzle).await);
        }
        let answers =
            futures_util::future::join_all(players.iter().zip(&bodies).map(|(p, b)| p.verify(b)))
                .await;
        let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 409),
            "round {round}: {statuses:?}"
        );
        for p in &mut players {
            let reset = expect_type(&mut p.ws, "PUZZLE_RESET", Duration::from_secs(5)).await;
            assert_ne!(reset["seed"], puzzle["seed"]);
        }
    }
}

/// Redis (append-only, fsync always) stops mid-run under two instances: every request fails
/// cleanly (503 JSON, the servers stay up), and once Redis is back both instances carry on
/// without a restart; no win answered before, during or after the outage is missing from the
/// audit log or the webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_cleanly_and_recovers() {
    let redis = redis_server::RedisServer::start_persistent();
    let receiver = hashpass_tests::webhook_receiver::WebhookReceiver::start().await;
    let instances = outage_instances(&redis, &receiver).await;
    let mut players = Vec::new();
    for (i, server) in instances.iter().enumerate() {
        players.push(Player::connect(server, client_ip(1 + i as u32)).await);
    }
    let mut codes = std::collections::BTreeSet::new();
    for player in &players {
        codes.insert(win(player, player.puzzle().await).await);
    }
    // Solutions of the current puzzle, sent once Redis is down.
    let mut stale_bodies = Vec::new();
    for player in &players {
        stale_bodies.push(player.solution(&player.puzzle().await.json()).await);
    }

    redis.stop();
    for ((server, player), stale_body) in instances.iter().zip(&players).zip(&stale_bodies) {
        let down = player.puzzle().await;
        assert_eq!(down.status, 503, "{}", down.text);
        assert!(down.json()["detail"].is_string(), "{}", down.text);
        let verify = player.verify(stale_body).await;
        assert_eq!(verify.status, 503, "{}", verify.text);
        let health = Http::new(server, client_ip(9)).get("/api/health").await;
        assert_eq!(health.status, 503);
        let reset = Http::new(server, client_ip(50))
            .admin_post("/api/admin/reset-puzzle", &serde_json::json!({}))
            .await;
        assert_eq!(reset.status, 503, "{}", reset.text);
    }

    redis.restart();
    for player in &players {
        let back = puzzle_once_back(player).await;
        assert_eq!(
            back.status, 200,
            "the same session works again: {}",
            back.text
        );
        codes.insert(win(player, back).await);
    }
    assert_eq!(
        audited_codes(&instances[1]).await,
        codes,
        "every answered win, and only those, is on record"
    );
    assert!(
        receiver
            .wait_until(Duration::from_secs(15), |_| receiver.accepted_codes()
                == codes)
            .await,
        "every answered win reaches the webhook: {:?} of {codes:?}",
        receiver.accepted_codes()
    );
}

/// Two instances of one deployment on `redis`, telling `receiver` of every invite.
async fn outage_instances(
    redis: &redis_server::RedisServer,
    receiver: &hashpass_tests::webhook_receiver::WebhookReceiver,
) -> Vec<TestServer> {
    let prefix = redis_server::unique_prefix("outage");
    let mut instances = Vec::new();
    for name in ["a", "b"] {
        let dir = temp_dir(&format!("redis-outage-{name}"));
        let backend = RedisBackend::connect(&redis.url, prefix.clone())
            .await
            .unwrap();
        let config = test_config(&dir).with_webhook_url(Some(receiver.url().as_str().into()));
        instances.push(
            TestServer::start_shared(hashpass_tests::adapters::axum, config, dir, Some(backend))
                .await,
        );
    }
    instances
}

/// The invite codes on the first page of `server`'s audit log.
async fn audited_codes(server: &TestServer) -> std::collections::BTreeSet<String> {
    let logs = Http::new(server, client_ip(50))
        .admin_get("/api/admin/logs")
        .await
        .json();
    logs["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["invite_code"].as_str().unwrap().to_string())
        .collect()
}

/// Solves `puzzle` (a 200 answer) as `player` and wins; the invite code.
async fn win(player: &Player, puzzle: Answer) -> String {
    let body = player.solution(&puzzle.json()).await;
    let won = player.verify(&body).await;
    assert_eq!(won.status, 200, "{}", won.text);
    won.json()["invite_code"].as_str().unwrap().to_string()
}

/// `player`'s puzzle once it is answered 200 again, or its last answer after 15 s.
async fn puzzle_once_back(player: &Player) -> Answer {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let answer = player.puzzle().await;
        if answer.status == 200 || tokio::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An admin rotates the invite key on one instance: every instance — running, or started later —
/// then issues and accepts codes only under the new key, and calls the old ones rotated away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_key_rotation_reaches_every_instance() {
    use hashpass::invite::InviteError;
    let redis = redis_server::shared();
    let prefix = redis_server::unique_prefix("rotation");
    let start = |name: &'static str| {
        let (url, prefix) = (redis.url.clone(), prefix.clone());
        async move {
            let dir = temp_dir(&format!("rotation-{name}"));
            let backend = RedisBackend::connect(&url, prefix).await.unwrap();
            TestServer::start_shared(
                hashpass_tests::adapters::axum,
                test_config(&dir),
                dir,
                Some(backend),
            )
            .await
        }
    };
    let (a, b) = (start("a").await, start("b").await);
    // Until a rotation, each instance has its own configured (here: random) key.
    let before = b.hashpass.invites().issue().code;
    assert!(b.hashpass.invites().verify(&before).is_ok());
    let before_on_a = a.hashpass.invites().issue().code;

    let http = hashpass_tests::Http::new(&a, client_ip(1));
    let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let rotated = http
        .admin_post(
            "/api/admin/regenerate-hmac",
            &serde_json::json!({ "hmac_secret": key }),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    // The other instance hears of it through Redis (bounded wait).
    let mut adopted = false;
    for _ in 0..100 {
        let from_a = a.hashpass.invites().issue().code;
        if b.hashpass.invites().verify(&from_a).is_ok() {
            adopted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(adopted, "instance b never adopted the rotated key");
    assert_eq!(
        b.hashpass.invites().verify(&before),
        Err(InviteError::KeyRotated)
    );
    let from_b = b.hashpass.invites().issue().code;
    assert!(a.hashpass.invites().verify(&from_b).is_ok());

    // An instance started after the rotation takes the key from the shared state.
    let c = start("c").await;
    assert!(c.hashpass.invites().verify(&from_b).is_ok());
    // It knows the key rotated away too, from the shared state: a's code from before the
    // rotation reads as rotated, not as a forgery.
    assert_eq!(
        c.hashpass.invites().verify(&before_on_a),
        Err(InviteError::KeyRotated)
    );
    let from_c = c.hashpass.invites().issue().code;
    let host =
        hashpass::invite::InviteCodes::new(hashpass::invite::InviteKey::from_hex(key).unwrap());
    assert!(
        host.verify(&from_c).is_ok(),
        "a host site holding the new key accepts it"
    );
}

/// The reset event of a win is lost on the way (every pub/sub connection killed at the win, as
/// a network blip would): the other instance sees the shared state ahead of the last reset it
/// heard of and tells its sockets the new puzzle all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reset_still_reaches_every_socket() {
    let redis = redis_server::RedisServer::start();
    let prefix = redis_server::unique_prefix("lost-reset");
    let mut instances = Vec::new();
    for name in ["a", "b"] {
        let dir = temp_dir(&format!("lost-reset-{name}"));
        let backend = RedisBackend::connect(&redis.url, prefix.clone())
            .await
            .unwrap();
        instances.push(
            TestServer::start_shared(
                hashpass_tests::adapters::axum,
                test_config(&dir),
                dir,
                Some(backend),
            )
            .await,
        );
    }
    let winner = Player::connect(&instances[0], client_ip(1)).await;
    let mut listener = Player::connect(&instances[1], client_ip(2)).await;
    let puzzle = winner.puzzle().await.json();
    let body = winner.solution(&puzzle).await;
    let killed = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "CLIENT",
            "KILL",
            "TYPE",
            "pubsub",
        ])
        .output()
        .expect("redis-cli runs");
    assert!(killed.status.success(), "{killed:?}");
    assert_eq!(winner.verify(&body).await.status, 200);
    let reset = expect_type(&mut listener.ws, "PUZZLE_RESET", Duration::from_secs(5)).await;
    assert_ne!(
        reset["seed"], puzzle["seed"],
        "the new puzzle reached the other instance"
    );
    assert_eq!(
        listener.puzzle().await.json()["seed"],
        reset["seed"],
        "and it is the current one"
    );
}
