//! The rules of the game, through the framework-free service: exactly one winner, floods that
//! cannot starve an honest winner, invalid proofs that never win, timeouts and their rewards.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use common::*;
use hashpass::admin::AdminErrorKind;
use hashpass::clock::Clock;
use hashpass::events::Event;
use hashpass::puzzle::{self, Argon2Params, leading_zero_bits};
use hashpass::service::GameError;
use hashpass::verify::{Argon2Verifier, Computed, Verifier, VerifyError};

/// A refusal as a client reads it: the HTTP status and `detail` the API answers with.
fn http(e: &GameError) -> hashpass::ApiError {
    e.clone().into()
}

fn resets(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while let Ok(event) = rx.try_recv() {
        if let Event::Broadcast {
            message,
            puzzle_version: Some(_),
            ..
        } = event
        {
            out.push(serde_json::from_str(&message).unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_valid_solutions_one_winner_for_200_rounds() {
    let (hp, _clock) = instance(config().with_max_difficulty(1u32)).await;
    let mut events = hp.service().seams().events.subscribe();
    let solvers: Vec<_> = futures_join((0..64).map(|i| {
        let hp = hp.clone();
        async move { (ip(i), format!("visitor-{i}"), session(&hp, ip(i)).await) }
    }))
    .await;
    for round in 0..200 {
        let state = hp.service().state().await.unwrap();
        let mut tasks = Vec::new();
        for (ip, visitor, session) in &solvers {
            let (nonce, hash) = solve(
                state.params,
                &state.seed,
                visitor,
                *ip,
                state.difficulty.difficulty,
                0,
            );
            let sol = solution(&state.seed, visitor, *ip, nonce, hash);
            let (hp, ip, session) = (hp.clone(), *ip, session.clone());
            tasks.push(tokio::spawn(async move {
                hp.service().verify(ip, &session, &sol).await
            }));
        }
        let mut winners = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(win) => {
                    winners += 1;
                    assert!(win.invite_code.starts_with("HASHPASS-"));
                }
                Err(e) => {
                    assert_eq!(http(&e).status.as_u16(), 409, "round {round}: {e}");
                    assert_eq!(
                        http(&e).message(),
                        Some("Puzzle already solved by someone else")
                    );
                }
            }
        }
        assert_eq!(winners, 1, "round {round}");
        assert_ne!(hp.service().state().await.unwrap().seed, state.seed);
        assert_eq!(resets(&mut events).len(), 1, "one PUZZLE_RESET per round");
    }
    assert_eq!(hp.service().metrics().puzzles_solved(), 200);
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    for f in futures {
        out.push(f.await);
    }
    out
}

/// A verifier that records the order in which jobs start (by the salt's visitor id) and holds
/// each flood job for a moment, so the queue really fills.
struct Observed {
    inner: Argon2Verifier,
    starts: std::sync::Mutex<Vec<bool>>,
    honest_marker: String,
}

#[async_trait]
impl Verifier for Observed {
    async fn compute(
        &self,
        params: Argon2Params,
        password: &[u8],
        salt: &[u8],
    ) -> Result<Computed, VerifyError> {
        let honest = String::from_utf8_lossy(salt).contains(&self.honest_marker);
        self.starts.lock().unwrap().push(honest);
        if !honest {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        self.inner.compute(params, password, salt).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_wrong_hashes_cannot_starve_an_honest_winner() {
    const BUDGET_MIB: u32 = 2;
    const ADDRESSES: usize = 8;
    const SUBMITTERS_PER_ADDRESS: usize = 4;
    // 1 MiB per verification, 2 MiB budget: two run at once.
    let params = Argon2Params::new(1, 1024, 1);
    let verifier = Arc::new(Observed {
        inner: Argon2Verifier::new(BUDGET_MIB, 64),
        starts: std::sync::Mutex::default(),
        honest_marker: "|honest|".into(),
    });
    let config = config()
        .with_argon2(params)
        .with_verify_memory_budget_mb(BUDGET_MIB)
        .with_address_submit_limit(0);
    let (hp, _clock) = instance_with(config, |b| b.verifier(verifier.clone())).await;
    let state = hp.service().state().await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let mut flooders = Vec::new();
    for a in 0..ADDRESSES {
        let address = ip(100 + a);
        for k in 0..SUBMITTERS_PER_ADDRESS {
            let (hp, stop, seed) = (hp.clone(), Arc::clone(&stop), state.seed.clone());
            flooders.push(tokio::spawn(async move {
                let session = session(&hp, address).await;
                let mut refused = 0u32;
                // Bounded: at most 2000 submissions per submitter.
                for n in 0..2000u64 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    // Well-formed, meets the difficulty by its look, but wrong.
                    let mut hash = [0x5a; 32];
                    hash[0] = 0;
                    let visitor = format!("flood{a}x{k}");
                    let sol = solution(&seed, &visitor, address, n, hash);
                    match hp.service().verify(address, &session, &sol).await {
                        Err(GameError::HashMismatch) => {}
                        Err(GameError::AddressQueueFull { .. } | GameError::Busy { .. }) => {
                            refused += 1;
                            tokio::task::yield_now().await;
                        }
                        Err(GameError::AlreadySolved) => break,
                        other => panic!("a wrong hash was answered {other:?}"),
                    }
                }
                refused
            }));
        }
    }
    // Let every flooding address fail once and fill its queue before the honest solver comes.
    // Bounded: at most 30 s for the flood to get going.
    for _ in 0..6000 {
        let gauges = hp.service().verification_queue().gauges();
        if verifier.starts.lock().unwrap().len() >= 2 * ADDRESSES
            && gauges.waiting_flagged >= 2 * ADDRESSES - 2
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let queued = hp.service().verification_queue().gauges();
    assert!(
        queued.waiting_flagged >= 2 * ADDRESSES - 2,
        "the flood never filled the queue: {queued:?}"
    );
    let honest_ip = ip(1);
    let honest = session(&hp, honest_ip).await;
    let (nonce, hash) = solve(params, &state.seed, "honest", honest_ip, 1, 0);
    let before = verifier.starts.lock().unwrap().len();
    let win = hp
        .service()
        .verify(
            honest_ip,
            &honest,
            &solution(&state.seed, "honest", honest_ip, nonce, hash),
        )
        .await;
    stop.store(true, Ordering::SeqCst);
    let mut refused = 0;
    for f in flooders {
        refused += f.await.unwrap();
    }
    assert!(win.is_ok(), "the honest solution must win: {win:?}");
    let starts = verifier.starts.lock().unwrap().clone();
    let honest_at = starts.iter().rposition(|honest| *honest).unwrap();
    let ahead = honest_at - before;
    // Only the jobs already running when it arrived may start before it, whatever was queued.
    assert!(
        ahead <= BUDGET_MIB as usize,
        "{ahead} flood verifications started ahead of the honest one ({queued:?})"
    );
    assert!(refused > 0, "the addresses' own queues overflowed");
}

#[tokio::test]
async fn invalid_proofs_never_win() {
    let config = config().with_difficulty(2u32);
    let verifier = CountingVerifier::for_config(&config);
    let (hp, _clock) = instance_with(config, |b| b.verifier(verifier.clone())).await;
    let svc = hp.service();
    let state = svc.state().await.unwrap();
    let (a, b) = (ip(1), ip(2));
    let session_a = session(&hp, a).await;
    let (nonce, hash) = solve(TINY, &state.seed, "alice", a, 2, 0);
    // Every refusal below is either decided before hashing (the verifier is not called) or
    // after recomputing (called exactly once).
    let mut hashed = verifier.computed();
    let mut expect_hashed = |times: usize, what: &str| {
        let now = verifier.computed();
        assert_eq!(now - hashed, times, "{what}: verifier calls");
        hashed = now;
    };

    // Wrong hash that still looks like it meets the difficulty: recomputed, mismatch.
    let mut wrong = hash;
    wrong[31] ^= 1;
    let e = svc
        .verify(
            a,
            &session_a,
            &solution(&state.seed, "alice", a, nonce, wrong),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (http(&e).status.as_u16(), http(&e).message()),
        (400, Some("Hash mismatch"))
    );
    expect_hashed(1, "hash mismatch");

    // Too few zero bits: refused before hashing.
    let (weak_nonce, weak) = (0u64..)
        .map(|n| {
            (
                n,
                hashpass::verify::argon2d(
                    TINY,
                    &puzzle::password(n),
                    &puzzle::salt(&state.seed, "alice", &a.to_string()),
                )
                .unwrap(),
            )
        })
        .find(|(_, h)| leading_zero_bits(h) < 2)
        .unwrap();
    let e = svc
        .verify(
            a,
            &session_a,
            &solution(&state.seed, "alice", a, weak_nonce, weak),
        )
        .await
        .unwrap_err();
    assert_eq!(http(&e).status.as_u16(), 400);
    assert!(
        http(&e)
            .message()
            .unwrap()
            .starts_with("Hash does not meet difficulty requirement (2 leading zero bits, found")
    );
    expect_hashed(0, "too few zero bits");

    // Stale seed.
    let e = svc
        .verify(
            a,
            &session_a,
            &solution("0".repeat(32).as_str(), "alice", a, nonce, hash),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (http(&e).status.as_u16(), http(&e).message()),
        (409, Some("Puzzle already solved by someone else"))
    );
    expect_hashed(0, "stale seed");

    // Wrong IP: the trace names A but the request comes from B.
    let session_b = session(&hp, b).await;
    let e = svc
        .verify(
            b,
            &session_b,
            &solution(&state.seed, "alice", a, nonce, hash),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (http(&e).status.as_u16(), http(&e).message()),
        (
            403,
            Some("Identity mismatch: TraceData IP doesn't match request IP")
        )
    );
    expect_hashed(0, "trace IP mismatch");
    // ...and with an honest trace from B, A's proof does not hash to the same value under B's salt.
    let mut from_b = solution(&state.seed, "alice", b, nonce, hash);
    from_b.trace_data = format!("ip={b}");
    let e = svc.verify(b, &session_b, &from_b).await.unwrap_err();
    assert_eq!(
        (http(&e).status.as_u16(), http(&e).message()),
        (400, Some("Hash mismatch"))
    );
    expect_hashed(1, "A's proof under B's salt");

    // Wrong visitorId: the session is bound to alice.
    svc.puzzle(&session_a, "alice").await.unwrap();
    let bearer = format!("Bearer {}", session_a.token);
    let session_a = svc.authenticate(a, Some(bearer.as_bytes())).await.unwrap();
    let e = svc
        .verify(
            a,
            &session_a,
            &solution(&state.seed, "mallory", a, nonce, hash),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (http(&e).status.as_u16(), http(&e).message()),
        (403, Some("Device fingerprint mismatch"))
    );
    expect_hashed(0, "fingerprint mismatch");

    // None of it won; the real proof still does.
    assert_eq!(svc.state().await.unwrap().seed, state.seed);
    assert!(
        svc.verify(
            a,
            &session_a,
            &solution(&state.seed, "alice", a, nonce, hash)
        )
        .await
        .is_ok()
    );
    expect_hashed(1, "the real proof");
}

#[tokio::test]
async fn per_session_rate_limit_answers_429() {
    let (hp, clock) = instance(config().with_submit_limit(4u32)).await;
    let svc = hp.service();
    let state = svc.state().await.unwrap();
    let a = ip(1);
    let s = session(&hp, a).await;
    let mut wrong = [0x11; 32];
    wrong[0] = 0;
    for _ in 0..4 {
        let e = svc
            .verify(a, &s, &solution(&state.seed, "v", a, 1, wrong))
            .await
            .unwrap_err();
        assert_eq!(http(&e).message(), Some("Hash mismatch"));
    }
    let e = svc
        .verify(a, &s, &solution(&state.seed, "v", a, 1, wrong))
        .await
        .unwrap_err();
    assert_eq!(
        (http(&e).status.as_u16(), http(&e).message()),
        (429, Some("Too many submissions"))
    );
    clock.advance_secs(10.0);
    let e = svc
        .verify(a, &s, &solution(&state.seed, "v", a, 1, wrong))
        .await
        .unwrap_err();
    assert_eq!(http(&e).message(), Some("Hash mismatch"));
}

#[tokio::test]
async fn the_session_ladder() {
    let (hp, clock) = instance(config()).await;
    let svc = hp.service();
    let (a, b) = (ip(1), ip(2));
    let s = session(&hp, a).await;
    let bearer = format!("Bearer {}", s.token);
    let status =
        |r: Result<_, GameError>| r.map(|_| 200).unwrap_or_else(|e| http(&e).status.as_u16());
    assert_eq!(status(svc.authenticate(a, None).await), 401);
    assert_eq!(status(svc.authenticate(a, Some(b"Token x")).await), 401);
    assert_eq!(
        status(svc.authenticate(a, Some(b"Bearer unknown")).await),
        401
    );
    assert_eq!(
        status(svc.authenticate(a, Some(bearer.as_bytes())).await),
        200
    );
    // From another IP: 403, and the owner keeps it (not revoked, docs/protocol.md#client-ip).
    let e = svc
        .authenticate(b, Some(bearer.as_bytes()))
        .await
        .unwrap_err();
    assert_eq!(
        (http(&e).status.as_u16(), http(&e).message()),
        (403, Some("Session token is bound to another IP"))
    );
    assert_eq!(
        status(svc.authenticate(a, Some(bearer.as_bytes())).await),
        200
    );
    // Banned IP: 403 Access denied before the token is looked at.
    hp.service().seams().bans.ban(a).await.unwrap();
    let e = svc
        .authenticate(a, Some(bearer.as_bytes()))
        .await
        .unwrap_err();
    assert_eq!(
        (http(&e).status.as_u16(), http(&e).message()),
        (403, Some("Access denied"))
    );
    hp.service().seams().bans.unban(a).await.unwrap();
    // Disconnected: usable for 300 s, then 401.
    svc.seams()
        .sessions
        .detach(&s.token, s.connection.unwrap(), clock.now())
        .await
        .unwrap();
    clock.advance_secs(299.0);
    assert_eq!(
        status(svc.authenticate(a, Some(bearer.as_bytes())).await),
        200
    );
    clock.advance_secs(2.0);
    assert_eq!(
        status(svc.authenticate(a, Some(bearer.as_bytes())).await),
        401
    );
}

#[tokio::test]
async fn solve_time_is_mining_time_when_declared_else_wall_time() {
    let (hp, clock) = instance(config().with_target_time(60u64).with_target_timeout(600u64)).await;
    let svc = hp.service();
    let puzzles = &svc.seams().puzzles;
    let a = ip(1);
    let s = session(&hp, a).await;

    // Round 1: nobody declared mining; 30 s of wall time pass.
    let state = svc.state().await.unwrap();
    clock.advance_secs(30.0);
    let (n, h) = solve(TINY, &state.seed, "v", a, 1, 0);
    let win = svc
        .verify(a, &s, &solution(&state.seed, "v", a, n, h))
        .await
        .unwrap();
    assert_eq!(win.record.solve_time, Some(30.0));

    // Round 2: mining declared for 12 s out of 100 s of wall time.
    let state = svc.state().await.unwrap();
    puzzles
        .mining_start(&state.seed, 1, clock.now())
        .await
        .unwrap();
    clock.advance_secs(12.0);
    puzzles.mining_stop(1, clock.now()).await.unwrap();
    clock.advance_secs(88.0);
    let (n, h) = solve(TINY, &state.seed, "v", a, state.difficulty.difficulty, 0);
    let win = svc
        .verify(a, &s, &solution(&state.seed, "v", a, n, h))
        .await
        .unwrap();
    assert_eq!(win.record.solve_time, Some(12.0));
    let after = svc.state().await.unwrap();
    assert_eq!(after.solve_history, vec![30.0, 12.0]);
    assert_eq!(after.last_solve_time, Some(12.0));

    // Round 3: solved in the same instant it started: never 0.
    let state = after;
    let (n, h) = solve(TINY, &state.seed, "v", a, state.difficulty.difficulty, 0);
    let win = svc
        .verify(a, &s, &solution(&state.seed, "v", a, n, h))
        .await
        .unwrap();
    // Round 3: solved in the instant it started: the smallest reportable time, never 0 (docs/protocol.md#difficulty-adjustment).
    assert_eq!(win.record.solve_time, Some(0.01));
    assert_eq!(svc.state().await.unwrap().last_solve_time, Some(0.01));
}

#[tokio::test]
async fn difficulty_follows_the_rule_after_wins() {
    let (hp, clock) = instance(
        config()
            .with_difficulty(4u32)
            .with_target_time(64u64)
            .with_target_timeout(600u64),
    )
    .await;
    let svc = hp.service();
    let a = ip(1);
    let s = session(&hp, a).await;
    let state = svc.state().await.unwrap();
    clock.advance_secs(4.0); // 16× faster than the target: +4 bits.
    let (n, h) = solve(TINY, &state.seed, "v", a, 4, 0);
    let win = svc
        .verify(a, &s, &solution(&state.seed, "v", a, n, h))
        .await
        .unwrap();
    assert_eq!((win.record.difficulty, win.record.new_difficulty), (4, 8));
    let next = svc.state().await.unwrap();
    assert_eq!(next.difficulty.difficulty, 8);
    assert_eq!(next.difficulty.ema_solve_time, Some(4.0));
}

#[tokio::test]
async fn timeout_opens_a_reward_window_and_the_best_verified_hash_wins() {
    let (hp, clock) = instance(
        config()
            .with_difficulty(12u32)
            .with_target_time(60u64)
            .with_target_timeout(120u64),
    )
    .await;
    let svc = hp.service();
    let mut events = svc.seams().events.subscribe();
    let state = svc.state().await.unwrap();

    // Not yet: 119 s of mining.
    svc.seams()
        .puzzles
        .mining_start(&state.seed, 1, clock.now())
        .await
        .unwrap();
    clock.advance_secs(119.0);
    assert!(!svc.check_timeout().await.unwrap());
    // A submission before the timeout has no window.
    let (a, b, c) = (ip(1), ip(2), ip(3));
    let (sa, sb, sc) = (
        session(&hp, a).await,
        session(&hp, b).await,
        session(&hp, c).await,
    );
    let (n1, h1) = solve(TINY, &state.seed, "va", a, 1, 0);
    let e = svc
        .submit(a, &sa, &solution(&state.seed, "va", a, n1, h1), 1)
        .await
        .unwrap_err();
    assert_eq!(
        (http(&e).status.as_u16(), http(&e).message()),
        (409, Some("No active timeout collection window"))
    );

    clock.advance_secs(1.0);
    assert!(svc.check_timeout().await.unwrap());
    let reset = resets(&mut events);
    assert_eq!(reset.len(), 1);
    assert_eq!(reset[0]["is_timeout"], true);
    let next = svc.state().await.unwrap();
    assert_ne!(next.seed, state.seed);
    assert_eq!(next.last_solve_time, Some(120.0));
    assert_eq!(next.difficulty.difficulty, 11); // log2(60/120) = -1

    // Submissions for the old seed: a declares 1 bit, b finds more than a, c lies about its zeros.
    assert_eq!(
        svc.submit(a, &sa, &solution(&state.seed, "va", a, n1, h1), 1)
            .await
            .unwrap(),
        "submitted"
    );
    assert_eq!(
        svc.submit(a, &sa, &solution(&state.seed, "va", a, n1, h1), 1)
            .await
            .unwrap(),
        "already_submitted"
    );
    let (n2, h2) = solve(TINY, &state.seed, "vb", b, leading_zero_bits(&h1) + 1, 0);
    assert_eq!(
        svc.submit(b, &sb, &solution(&state.seed, "vb", b, n2, h2), 2)
            .await
            .unwrap(),
        "submitted"
    );
    let (n3, h3) = solve(TINY, &state.seed, "vc", c, 1, 0);
    let claimed = leading_zero_bits(&h3) + 5;
    let e = svc
        .submit(c, &sc, &solution(&state.seed, "vc", c, n3, h3), claimed)
        .await
        .unwrap_err();
    assert_eq!(http(&e).status.as_u16(), 400);
    let mut forged = h3;
    forged[31] ^= 0xff;
    let e = svc
        .submit(c, &sc, &solution(&state.seed, "vc", c, n3, forged), 1)
        .await
        .unwrap_err();
    assert_eq!(http(&e).message(), Some("Hash mismatch"));
    let e = svc
        .submit(c, &sc, &solution(&next.seed, "vc", c, n3, h3), 1)
        .await
        .unwrap_err();
    assert_eq!(
        http(&e).message(),
        Some("Seed does not match timed-out puzzle")
    );
    let e = svc
        .submit(c, &sc, &solution(&state.seed, "vc", c, n3, h3), 0)
        .await
        .unwrap_err();
    assert_eq!(http(&e).message(), Some("Leading zeros must be >= 1"));

    // A regular win during the window does not cancel it (docs/protocol.md#difficulty-adjustment).
    let (n4, h4) = solve(TINY, &next.seed, "vc", c, 11, 0);
    svc.verify(c, &sc, &solution(&next.seed, "vc", c, n4, h4))
        .await
        .unwrap();

    // Not awarded before the window closes; awarded to b after.
    assert_eq!(svc.award_if_due().await.unwrap(), None);
    clock.advance_secs(10.0);
    let code = svc
        .award_if_due()
        .await
        .unwrap()
        .expect("b wins the reward");
    let mut delivered = None;
    while let Ok(event) = events.try_recv() {
        if let Event::ToSession { token, message } = event {
            delivered = Some((token, message));
        }
    }
    let (token, message) = delivered.expect("TIMEOUT_INVITE_CODE published");
    assert_eq!(token, sb.token);
    let message: serde_json::Value = serde_json::from_str(&message).unwrap();
    assert_eq!(message["type"], "TIMEOUT_INVITE_CODE");
    assert_eq!(message["invite_code"], code.as_str());
    assert_eq!(
        message["leading_zeros"].as_u64(),
        Some(u64::from(leading_zero_bits(&h2)))
    );
    let logs = hp
        .admin()
        .logs(&hashpass::audit::LogQuery {
            page: 1,
            per_page: 10,
            search: String::new(),
            file: "verify.jsonl".into(),
        })
        .await
        .unwrap();
    let newest = &logs.records[0].record;
    assert_eq!(newest["adjustment_reason"], "timeout_reward");
    assert_eq!(newest["solve_time"], serde_json::Value::Null);
    assert_eq!(newest["real_ip"], b.to_string());
    // The window is gone.
    let e = svc
        .submit(a, &sa, &solution(&state.seed, "va", a, n1, h1), 1)
        .await
        .unwrap_err();
    assert_eq!(http(&e).status.as_u16(), 409);
}

#[tokio::test]
async fn admin_changes_validate_everything_first() {
    let (hp, _clock) = instance(
        config()
            .with_difficulty(5u32)
            .with_min_difficulty(2u32)
            .with_max_difficulty(10u32),
    )
    .await;
    let admin = hp.admin();
    let before = hp.service().state().await.unwrap();
    let bad = hashpass::admin::DifficultyChange {
        difficulty: Some(20),
        min_difficulty: Some(3),
        max_difficulty: None,
    };
    let e = admin.set_difficulty(&bad).await.unwrap_err();
    assert!(matches!(e.kind(), AdminErrorKind::Invalid), "{e}");
    assert_eq!(
        hp.service().state().await.unwrap(),
        before,
        "nothing applied"
    );
    let ok = hashpass::admin::DifficultyChange {
        difficulty: None,
        min_difficulty: Some(7),
        max_difficulty: None,
    };
    let r = admin.set_difficulty(&ok).await.unwrap();
    assert_eq!((r.difficulty, r.min_difficulty), (7, 7));
    assert_ne!(hp.service().state().await.unwrap().seed, before.seed);
    let e = admin
        .set_argon2(&hashpass::admin::Argon2Change {
            time_cost: Some(2),
            memory_cost: Some(15),
            parallelism: Some(2),
        })
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), AdminErrorKind::Invalid), "{e}");
    // The timeout (120 s by default) must stay above the target.
    let e = admin
        .set_target_time(&hashpass::admin::TargetTimeChange {
            target_time: Some(200),
            target_timeout: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), AdminErrorKind::Invalid), "{e}");
    let r = admin
        .set_target_time(&hashpass::admin::TargetTimeChange {
            target_time: Some(100),
            target_timeout: None,
        })
        .await
        .unwrap();
    assert_eq!((r.target_time, r.target_timeout), (100, 120));
}
