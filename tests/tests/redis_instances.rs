//! Several instances on one Redis: exactly one winner per puzzle across all of them, and every
//! socket on every instance hears every reset.

use std::time::Duration;

use hashpass::redis::RedisBackend;
use hashpass_tests::client::{Player, client_ip, expect_type};
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
