//! One list of store cases, run against the in-memory stores and against Redis, on a real
//! `redis-server` this test starts on a free 127.0.0.1 port.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hashpass::audit::{AuditLog, AuditRecord, LogQuery, MemoryAuditLog};
use hashpass::bans::{BanList, MemoryBanList};
use hashpass::difficulty::DifficultyState;
use hashpass::events::{Event, EventBus, MemoryEventBus};
use hashpass::hashrate::{HashrateStore, MemoryHashrateStore};
use hashpass::lockout::{AdminLockout, Attempt, MemoryAdminLockout};
use hashpass::puzzle::Argon2Params;
use hashpass::puzzle_store::{
    ChartPoint, MemoryPuzzleStore, PuzzleState, PuzzleStore, RewardEntry, RewardOffer, RewardWindow,
};
use hashpass::redemption::{
    CodeState, MemoryRedemptionStore, RedeemOutcome, Redemption, RedemptionStore,
};
use hashpass::session::{MemorySessionStore, Session, SessionStore};

/// Every store of one backend.
struct Stores {
    puzzles: Arc<dyn PuzzleStore>,
    sessions: Arc<dyn SessionStore>,
    bans: Arc<dyn BanList>,
    lockout: Arc<dyn AdminLockout>,
    hashrate: Arc<dyn HashrateStore>,
    /// Two buses of the same deployment (two instances).
    events: (Arc<dyn EventBus>, Arc<dyn EventBus>),
    audit: Arc<dyn AuditLog>,
    redemptions: Arc<dyn RedemptionStore>,
    /// Keeps the backing server (if any) alive for the case.
    _server: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

fn state(seed: &str) -> PuzzleState {
    PuzzleState {
        version: 0,
        seed: seed.into(),
        started_at: 1000.5,
        difficulty: DifficultyState::new(4, 1, 32),
        params: Argon2Params::default(),
        worker_count: 1,
        target_time: 60,
        target_timeout: 120,
        max_nonce_speed: 0.0,
        last_solve_time: None,
        solve_history: vec![],
        solve_time_chart: vec![],
        // Kept (as hex) by every store, so an admin's rotation reaches every instance.
        invite_key: Some(
            hashpass::invite::InviteKey::from_hex("00112233445566778899aabbccddeeff").unwrap(),
        ),
        // And the keys rotated away, so that their codes read as rotated on every instance.
        retired_invite_keys: vec![
            hashpass::invite::InviteKey::from_hex("ffeeddccbbaa99887766554433221100").unwrap(),
        ],
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn puzzle_claim_admits_exactly_one(s: Stores) {
    let initial = s.puzzles.init(state("a")).await.unwrap();
    assert_eq!(
        s.puzzles.init(state("b")).await.unwrap(),
        initial,
        "init does not overwrite"
    );
    for round in 0..20u64 {
        let current = s.puzzles.load().await.unwrap().unwrap();
        let mut tasks = Vec::new();
        for i in 0..32 {
            let (puzzles, current) = (Arc::clone(&s.puzzles), current.clone());
            tasks.push(tokio::spawn(async move {
                puzzles
                    .compare_and_swap(current.version, current.reset(format!("r{round}-{i}"), 2.0))
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1, "round {round}");
        assert_eq!(s.puzzles.load().await.unwrap().unwrap().version, round + 1);
    }
    // The state survives a round trip unchanged (numbers included).
    let mut rich = s
        .puzzles
        .load()
        .await
        .unwrap()
        .unwrap()
        .reset("rich".into(), 1_767_225_600.123456);
    rich.record_solve(12.345678, 1_767_225_601.0);
    rich.max_nonce_speed = 1e9 + 0.5;
    let version = rich.version - 1;
    assert!(
        s.puzzles
            .compare_and_swap(version, rich.clone())
            .await
            .unwrap()
    );
    assert_eq!(s.puzzles.load().await.unwrap().unwrap(), rich);
}

async fn mining_time_accounting(s: Stores) {
    let p = &s.puzzles;
    p.mining_start("s", 1, 100.0).await.unwrap();
    p.mining_start("s", u64::MAX - 7, 105.0).await.unwrap();
    p.mining_stop(1, 110.0).await.unwrap();
    assert!((p.mining_time("s", 112.0).await.unwrap().seconds - 12.0).abs() < 1e-6);
    p.mining_stop(u64::MAX - 7, 120.0).await.unwrap();
    assert!((p.mining_time("s", 200.0).await.unwrap().seconds - 20.0).abs() < 1e-6);
    p.mining_start("s", 3, 200.0).await.unwrap();
    let t = p.mining_time("s", 205.0).await.unwrap();
    assert!((t.seconds - 25.0).abs() < 1e-6);
    assert_eq!(t.active_miners, 1);
    p.mining_start("t", 3, 210.0).await.unwrap();
    assert!((p.mining_time("t", 211.0).await.unwrap().seconds - 1.0).abs() < 1e-6);
    assert_eq!(p.mining_time("s", 211.0).await.unwrap().seconds, 0.0);
}

fn entry(ip: &str, zeros: u32, nonce: u64) -> RewardEntry {
    RewardEntry {
        visitor_id: "v".into(),
        nonce,
        hash: "00ff".into(),
        leading_zeros: zeros,
        ip: ip.into(),
        trace_data: "ip=x".into(),
        session_token: format!("token-{ip}"),
    }
}

async fn reward_window_ranks_one_per_ip(s: Stores) {
    let p = &s.puzzles;
    assert_eq!(
        p.reward_offer("s", "a", None, 0.0).await.unwrap(),
        RewardOffer::NoWindow
    );
    p.reward_open(RewardWindow {
        seed: "s".into(),
        difficulty: 8,
        params: Argon2Params::new(1, 8, 1),
        new_difficulty: 7,
        closes_at: 10.0,
        submitted_ips: Default::default(),
        best: None,
    })
    .await
    .unwrap();
    assert_eq!(
        p.reward_offer("x", "a", None, 1.0).await.unwrap(),
        RewardOffer::SeedMismatch
    );
    assert_eq!(
        p.reward_offer("s", "a", Some(entry("a", 3, 9)), 1.0)
            .await
            .unwrap(),
        RewardOffer::Accepted
    );
    assert_eq!(
        p.reward_offer("s", "a", None, 1.0).await.unwrap(),
        RewardOffer::AlreadySubmitted
    );
    p.reward_offer("s", "b", Some(entry("b", 5, 9_007_199_254_740_992)), 2.0)
        .await
        .unwrap();
    p.reward_offer("s", "c", Some(entry("c", 5, 40)), 2.0)
        .await
        .unwrap();
    p.reward_offer("s", "d", Some(entry("d", 4, 1)), 2.0)
        .await
        .unwrap();
    assert_eq!(
        p.reward_offer("s", "e", Some(entry("e", 20, 1)), 10.0)
            .await
            .unwrap(),
        RewardOffer::NoWindow
    );
    let open = p.reward_window().await.unwrap().unwrap();
    assert_eq!(
        (open.submitted_ips.len(), open.params),
        (4, Argon2Params::new(1, 8, 1))
    );
    assert!(p.reward_take("x").await.unwrap().is_none());
    let w = p.reward_take("s").await.unwrap().unwrap();
    assert_eq!(w.best.unwrap(), entry("c", 5, 40));
    assert_eq!(w.new_difficulty, 7);
    assert!(p.reward_window().await.unwrap().is_none());
    assert!(p.reward_take("s").await.unwrap().is_none(), "taken once");
}

async fn sessions_lifecycle(s: Stores) {
    let grace = Duration::from_secs(300);
    let store = &s.sessions;
    let connection = u64::MAX - 1;
    store
        .insert(Session::new(
            "t1".into(),
            ip("1.1.1.1"),
            1000.25,
            connection,
        ))
        .await
        .unwrap();
    store
        .insert(Session::new("t2".into(), ip("1.1.1.1"), 1001.0, 2))
        .await
        .unwrap();
    store
        .insert(Session::new("t3".into(), ip("2001:db8::1"), 1002.0, 3))
        .await
        .unwrap();
    let got = store.get("t1").await.unwrap().unwrap();
    assert_eq!(
        (got.ip, got.created_at, got.connection),
        (ip("1.1.1.1"), 1000.25, Some(connection))
    );
    assert!(store.get("nope").await.unwrap().is_none());
    assert_eq!(
        store.bind_visitor("t1", "alice").await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(
        store.bind_visitor("t1", "bob").await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(store.bind_visitor("nope", "bob").await.unwrap(), None);
    store.detach("t1", 999, 1500.0).await.unwrap();
    assert_eq!(
        store.get("t1").await.unwrap().unwrap().connection,
        Some(connection),
        "a stale detach is ignored"
    );
    store.detach("t1", connection, 1500.0).await.unwrap();
    let t1 = store.get("t1").await.unwrap().unwrap();
    assert_eq!((t1.connection, t1.disconnected_at), (None, Some(1500.0)));
    assert!(t1.is_live(1800.0, grace) && !t1.is_live(1800.5, grace));
    assert_eq!(store.attach("t1", 7).await.unwrap(), None);
    assert_eq!(store.attach("t1", 8).await.unwrap(), Some(7));
    assert_eq!(store.attach("nope", 8).await.unwrap(), None);
    assert_eq!(
        store.get("t1").await.unwrap().unwrap().disconnected_at,
        None
    );
    assert_eq!(store.count().await.unwrap(), 3);
    // By client address: an IPv6 /64 is one.
    store
        .insert(Session::new("t4".into(), ip("2001:db8::ffff:1"), 1003.0, 4))
        .await
        .unwrap();
    let tokens = |sessions: Vec<Session>| {
        let mut tokens: Vec<String> = sessions.into_iter().map(|s| s.token).collect();
        tokens.sort();
        tokens
    };
    let v6 = hashpass::config::counted_address(ip("2001:db8::1"));
    assert_eq!(tokens(store.of_address(v6).await.unwrap()), ["t3", "t4"]);
    assert_eq!(
        tokens(store.of_address(ip("1.1.1.1")).await.unwrap()),
        ["t1", "t2"]
    );
    let once = store.revoke("t4").await.unwrap().expect("revoked now");
    assert!(once.revoked && once.token == "t4");
    assert!(store.revoke("t4").await.unwrap().is_none(), "only once");
    assert!(store.revoke("nope").await.unwrap().is_none());
    assert_eq!(store.count().await.unwrap(), 4);
    let mut revoked: Vec<String> = store
        .revoke_ip(ip("1.1.1.1"))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.token)
        .collect();
    revoked.sort();
    assert_eq!(revoked, vec!["t1", "t2"]);
    assert!(store.revoke_ip(ip("1.1.1.1")).await.unwrap().is_empty());
    assert_eq!(store.revoke_all().await.unwrap().len(), 1);
    assert_eq!(store.list().await.unwrap().len(), 4);
    assert_eq!(store.cleanup(2000.0, grace).await.unwrap(), 4);
    assert!(store.of_address(v6).await.unwrap().is_empty());
    assert_eq!(store.count().await.unwrap(), 0);
}

async fn bans_and_lockout(s: Stores) {
    assert!(s.bans.ban(ip("9.9.9.9")).await.unwrap());
    assert!(!s.bans.ban(ip("::ffff:9.9.9.9")).await.unwrap());
    assert!(s.bans.ban(ip("10.0.0.1")).await.unwrap());
    assert!(s.bans.is_banned(ip("9.9.9.9")).await.unwrap());
    assert_eq!(s.bans.list().await.unwrap(), vec!["10.0.0.1", "9.9.9.9"]);
    assert!(s.bans.unban(ip("9.9.9.9")).await.unwrap());
    assert!(!s.bans.unban(ip("9.9.9.9")).await.unwrap());
    assert_eq!(s.bans.count().await.unwrap(), 1);

    let l = &s.lockout;
    let who = ip("5.5.5.5");
    let period = Duration::from_secs(300);
    let compare = |last| Attempt::Compare { last };
    for i in 0..9 {
        let at = 1000.0 + f64::from(i);
        assert_eq!(
            l.attempt(who, at, 10, period).await.unwrap(),
            compare(false)
        );
    }
    // The 10th is compared, the lock already set while it is; later ones are not compared.
    assert_eq!(
        l.attempt(who, 1009.0, 10, period).await.unwrap(),
        compare(true)
    );
    assert_eq!(l.locked_for(who, 1010.0).await.unwrap(), Some(299.0));
    assert_eq!(
        l.attempt(who, 1010.0, 10, period).await.unwrap(),
        Attempt::LockedOut(299.0)
    );
    assert_eq!(l.locked_for(who, 1309.5).await.unwrap(), None);
    // After the lock: counting starts again.
    assert_eq!(
        l.attempt(who, 1310.0, 10, period).await.unwrap(),
        compare(false)
    );
    // A right token clears the count (and a lock the last attempt set).
    for i in 0..9 {
        l.attempt(who, 1311.0 + f64::from(i), 10, period)
            .await
            .unwrap();
    }
    l.clear(who).await.unwrap();
    assert_eq!(l.locked_for(who, 1321.0).await.unwrap(), None);
    assert_eq!(
        l.attempt(who, 1321.0, 10, period).await.unwrap(),
        compare(false)
    );
    // Counts decay: 9 attempts, a long pause, 9 more do not lock.
    let other = ip("6.6.6.6");
    for i in 0..9 {
        l.attempt(other, f64::from(i), 10, period).await.unwrap();
    }
    for i in 0..9 {
        let at = 1000.0 + f64::from(i);
        assert_eq!(
            l.attempt(other, at, 10, period).await.unwrap(),
            compare(false)
        );
    }
    // Parallel attempts never see the same count: exactly 10 are allowed a comparison.
    let crowd = ip("7.7.7.7");
    let attempts =
        futures_util::future::join_all((0..50).map(|_| l.attempt(crowd, 5000.0, 10, period))).await;
    let compared = attempts
        .iter()
        .filter(|a| matches!(a, Ok(Attempt::Compare { .. })))
        .count();
    assert_eq!(compared, 10);
}

async fn hashrate_reports(s: Stores) {
    let h = &s.hashrate;
    let who = ip("1.2.3.4");
    h.report(1, who, 10.0, false, 100.0).await.unwrap();
    h.report(2, who, 5.0, false, 95.0).await.unwrap();
    h.report(3, who, 1e6, true, 100.0).await.unwrap();
    h.report(1, who, 12.0, false, 104.0).await.unwrap();
    let fresh = h.fresh(106.0, Duration::from_secs(10)).await.unwrap();
    assert_eq!(fresh.len(), 2);
    let net = hashpass::hashrate::network_hashrate(&fresh);
    assert_eq!((net.total_hashrate, net.active_miners), (12.0, 1));
    assert_eq!(
        fresh.iter().find(|r| r.connection == 1).unwrap().first_seen,
        100.0
    );
    h.remove(1).await.unwrap();
    assert_eq!(
        h.fresh(106.0, Duration::from_secs(10)).await.unwrap().len(),
        1
    );
    h.clear().await.unwrap();
    assert!(
        h.fresh(106.0, Duration::from_secs(10))
            .await
            .unwrap()
            .is_empty()
    );
    for i in 0..60 {
        h.push_chart(ChartPoint {
            timestamp: f64::from(i),
            value: 1.5,
        })
        .await
        .unwrap();
    }
    let chart = h.chart().await.unwrap();
    assert_eq!(
        (chart.len(), chart[0].timestamp, chart[49].timestamp),
        (50, 10.0, 59.0)
    );
}

async fn events_reach_every_instance(s: Stores) {
    let (a, b) = &s.events;
    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();
    let event = Event::Broadcast {
        message: Arc::from("{\"type\": \"PUZZLE_RESET\"}"),
        puzzle_version: Some(7),
        published_at: 1.0,
    };
    a.publish(event.clone()).await.unwrap();
    for rx in [&mut on_a, &mut on_b] {
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("delivered")
            .unwrap();
        assert_eq!(got, event);
    }
    let close = Event::CloseIp {
        ip: ip("1.2.3.4"),
        code: 1000,
        reason: "Kicked by admin".into(),
    };
    b.publish(close.clone()).await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), on_a.recv())
            .await
            .unwrap()
            .unwrap(),
        close
    );
}

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        timestamp: format!("2026-01-01T00:00:0{i}.000000"),
        invite_code: format!("HASHPASS-{i}"),
        visitor_id: format!("v{}", i % 3),
        nonce: i,
        hash: "00ff".into(),
        seed: "seed".into(),
        real_ip: "1.2.3.4".into(),
        trace_data: "ip=1.2.3.4".into(),
        difficulty: 4 + (i % 2) as u32,
        solve_time: Some(i as f64),
        new_difficulty: 4,
        adjustment_reason: "EMA".into(),
    }
}

async fn audit_pages_and_counts(s: Stores) {
    for i in 0..7 {
        s.audit.append(&record(i)).await.unwrap();
    }
    let query = |page, per_page, search: &str, file: &str| LogQuery {
        page,
        per_page,
        search: search.into(),
        file: file.into(),
    };
    let page = s
        .audit
        .page(&query(1, 3, "", "verify.jsonl"))
        .await
        .unwrap();
    assert_eq!(
        (page.total, page.pages, page.records[0]["nonce"].as_u64()),
        (7, 3, Some(6))
    );
    assert_eq!(
        s.audit
            .page(&query(1, 50, "hashpass-5", "verify.json"))
            .await
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        s.audit
            .page(&query(1, 50, "", "nope.jsonl"))
            .await
            .unwrap()
            .pages,
        0
    );
    let stats = s.audit.stats().await.unwrap();
    assert_eq!((stats.total_codes, stats.unique_visitors), (7, 3));
    // Solve times 1..6 (0 skipped): mean 3.5, upper median 4.
    assert_eq!(
        (stats.avg_solve_time, stats.median_solve_time),
        (Some(3.5), Some(4.0))
    );
    assert_eq!(stats.difficulty_distribution.get("4"), Some(&4));
    assert_eq!(
        s.audit.recent_solve_times(3).await.unwrap(),
        vec![4.0, 5.0, 6.0]
    );
}

async fn a_code_is_redeemed_once(s: Stores) {
    let store = &s.redemptions;
    assert!(store.list().await.unwrap().is_empty());
    // 100 concurrent sign-ups with one code: exactly one account gets it.
    let race = |code: &'static str| {
        futures_util::future::join_all((0..100).map(|i| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                store
                    .redeem(code, &format!("user-{i}"), 1000.0 + f64::from(i))
                    .await
                    .unwrap()
            })
        }))
    };
    let winners: Vec<Redemption> = race("code-1")
        .await
        .into_iter()
        .filter_map(|outcome| match outcome.unwrap() {
            RedeemOutcome::Redeemed(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1);
    let status = store.status("code-1").await.unwrap();
    assert_eq!(
        (status.state(), status.max_uses, &status.uses),
        (CodeState::Used, 1, &winners)
    );
    assert_eq!(
        store.redeem("code-1", "late", 2000.0).await.unwrap(),
        RedeemOutcome::UsedUp
    );
    assert_eq!(store.status("code-1").await.unwrap().uses, winners);
    // A code never seen is unused; revoking works once, and not on a used-up code.
    let fresh = store.status("code-2").await.unwrap();
    assert_eq!((fresh.state(), fresh.remaining()), (CodeState::Unused, 1));
    assert!(store.revoke("code-2", 2500.0).await.unwrap());
    assert!(!store.revoke("code-2", 2600.0).await.unwrap());
    assert!(
        !store.revoke("code-1", 2600.0).await.unwrap(),
        "a used code stays used"
    );
    assert_eq!(
        store.redeem("code-2", "someone", 3000.0).await.unwrap(),
        RedeemOutcome::Revoked
    );
    assert_eq!(
        store.status("code-2").await.unwrap().revoked_at,
        Some(2500.0)
    );
    // An admin lets a code sign up three accounts: of 100 racers, exactly three get in, and
    // its uses are exactly those three.
    assert_eq!(store.set_max_uses("code-3", 0, 3500.0).await.unwrap(), None);
    let widened = store.set_max_uses("code-3", 3, 3500.0).await.unwrap();
    assert_eq!(widened.map(|s| (s.max_uses, s.remaining())), Some((3, 3)));
    let mut admitted: Vec<String> = race("code-3")
        .await
        .into_iter()
        .filter_map(|outcome| match outcome.unwrap() {
            RedeemOutcome::Redeemed(r) => Some(r.user_id),
            _ => None,
        })
        .collect();
    assert_eq!(admitted.len(), 3);
    let status = store.status("code-3").await.unwrap();
    assert_eq!(status.state(), CodeState::Used);
    let mut recorded: Vec<String> = status.uses.iter().map(|u| u.user_id.clone()).collect();
    admitted.sort();
    recorded.sort();
    assert_eq!(recorded, admitted);
    // Not below the uses made; above them the code opens again, and a new use comes last.
    assert_eq!(store.set_max_uses("code-3", 2, 4000.0).await.unwrap(), None);
    let reopened = store
        .set_max_uses("code-3", 4, 4000.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (reopened.state(), reopened.remaining()),
        (CodeState::PartlyUsed, 1)
    );
    assert!(matches!(
        store.redeem("code-3", "fourth", 4100.0).await.unwrap(),
        RedeemOutcome::Redeemed(_)
    ));
    let full = store.status("code-3").await.unwrap();
    assert_eq!(
        (full.state(), full.uses.last().map(|u| u.user_id.as_str())),
        (CodeState::Used, Some("fourth"))
    );
    // The admin's list: most recently changed first.
    let listed: Vec<(String, CodeState)> = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|c| (c.code_id.clone(), c.state()))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("code-3".to_string(), CodeState::Used),
            ("code-2".to_string(), CodeState::Revoked),
            ("code-1".to_string(), CodeState::Used),
        ]
    );
}

/// A sign-up that claimed a code and failed gives the use back: the place is free for the next
/// one, only the releasing user's latest use goes, and a later use of a widened code comes after
/// the remaining ones.
async fn a_released_use_frees_its_place(s: Stores) {
    let store = &s.redemptions;
    let redeemed = |outcome: RedeemOutcome| matches!(outcome, RedeemOutcome::Redeemed(_));
    assert!(redeemed(
        store.redeem("code-4", "alice", 10.0).await.unwrap()
    ));
    assert!(!store.release("code-4", "bob", 11.0).await.unwrap());
    assert!(store.release("code-4", "alice", 12.0).await.unwrap());
    assert!(
        !store.release("code-4", "alice", 13.0).await.unwrap(),
        "once"
    );
    let freed = store.status("code-4").await.unwrap();
    assert_eq!((freed.state(), freed.updated_at), (CodeState::Unused, 12.0));
    assert!(redeemed(
        store.redeem("code-4", "carol", 14.0).await.unwrap()
    ));
    assert_eq!(
        store.redeem("code-4", "dave", 15.0).await.unwrap(),
        RedeemOutcome::UsedUp
    );
    // Two uses of three: the first released, then two more fit, after the second.
    store
        .set_max_uses("code-5", 3, 20.0)
        .await
        .unwrap()
        .unwrap();
    for (user, at) in [("a", 21.0), ("b", 22.0)] {
        assert!(redeemed(store.redeem("code-5", user, at).await.unwrap()));
    }
    assert!(store.release("code-5", "a", 23.0).await.unwrap());
    for (user, at) in [("c", 24.0), ("d", 25.0)] {
        assert!(redeemed(store.redeem("code-5", user, at).await.unwrap()));
    }
    assert_eq!(
        store.redeem("code-5", "e", 26.0).await.unwrap(),
        RedeemOutcome::UsedUp
    );
    let users: Vec<String> = store
        .status("code-5")
        .await
        .unwrap()
        .uses
        .into_iter()
        .map(|u| u.user_id)
        .collect();
    assert_eq!(users, ["b", "c", "d"]);
    // Racing releases of one use: one gives it back.
    assert!(redeemed(
        store.redeem("code-6", "racer", 30.0).await.unwrap()
    ));
    let releases =
        futures_util::future::join_all((0..8).map(|_| store.release("code-6", "racer", 31.0)))
            .await;
    assert_eq!(
        releases
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count(),
        1
    );
    assert_eq!(
        store.status("code-6").await.unwrap().state(),
        CodeState::Unused
    );
}

macro_rules! store_cases {
    ($module:ident, $make:path) => {
        mod $module {
            use super::*;
            store_cases!(@each $make; puzzle_claim_admits_exactly_one, mining_time_accounting,
                reward_window_ranks_one_per_ip, sessions_lifecycle, bans_and_lockout, hashrate_reports,
                events_reach_every_instance, audit_pages_and_counts, a_code_is_redeemed_once,
                a_released_use_frees_its_place);
        }
    };
    (@each $make:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case($make().await).await;
            }
        )*
    };
}

async fn memory() -> Stores {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryEventBus::new());
    Stores {
        puzzles: Arc::new(MemoryPuzzleStore::new()),
        sessions: Arc::new(MemorySessionStore::new()),
        bans: Arc::new(MemoryBanList::default()),
        lockout: Arc::new(MemoryAdminLockout::new()),
        hashrate: Arc::new(MemoryHashrateStore::new()),
        events: (Arc::clone(&bus), bus),
        audit: Arc::new(MemoryAuditLog::default()),
        redemptions: Arc::new(MemoryRedemptionStore::new()),
        _server: None,
    }
}

store_cases!(memory_stores, memory);

mod redis_backend {
    use super::*;
    use hashpass::redis::*;

    pub(super) async fn redis() -> Stores {
        let server = hashpass_tests::redis_server::shared();
        let prefix = format!(
            "test-{}:",
            hex::encode(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
                    .to_be_bytes()
            )
        );
        let backend = RedisBackend::connect(&server.url, prefix)
            .await
            .expect("redis reachable");
        Stores {
            puzzles: Arc::new(RedisPuzzleStore::new(backend.clone())),
            sessions: Arc::new(RedisSessionStore::new(backend.clone())),
            bans: Arc::new(RedisBanList::new(backend.clone())),
            lockout: Arc::new(RedisAdminLockout::new(backend.clone())),
            hashrate: Arc::new(RedisHashrateStore::new(backend.clone())),
            events: (
                RedisEventBus::new(backend.clone()).await.unwrap(),
                RedisEventBus::new(backend.clone()).await.unwrap(),
            ),
            redemptions: Arc::new(RedisRedemptionStore::new(backend.clone())),
            audit: Arc::new(RedisAuditLog::new(backend)),
            _server: Some(server),
        }
    }
}

store_cases!(redis_stores, redis_backend::redis);

/// The Redis audit stream writes out as the JSONL file format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_audit_stream_exports_jsonl() {
    let server = hashpass_tests::redis_server::shared();
    let backend = hashpass::redis::RedisBackend::connect(
        &server.url,
        hashpass_tests::redis_server::unique_prefix("audit"),
    )
    .await
    .unwrap();
    let log = hashpass::redis::RedisAuditLog::new(backend);
    for i in 0..7 {
        log.append(&record(i)).await.unwrap();
    }
    let dir = hashpass_tests::server::temp_dir("audit-export");
    assert_eq!(
        log.export_jsonl(&dir.join("verify.jsonl")).await.unwrap(),
        7
    );
    let exported = std::fs::read_to_string(dir.join("verify.jsonl")).unwrap();
    let codes: Vec<String> = exported
        .lines()
        .map(|l| serde_json::from_str::<AuditRecord>(l).unwrap().invite_code)
        .collect();
    assert_eq!(
        codes,
        (0..7).map(|i| format!("HASHPASS-{i}")).collect::<Vec<_>>()
    );
}

/// The SQL redemption store at `url`: the same redemption case (100 concurrent redemptions of
/// one code → one), and its migrations run once across reconnects.
async fn sql_redemptions(url: &str) {
    let mut stores = memory().await;
    stores.redemptions = Arc::new(
        hashpass::sql::SqlRedemptionStore::connect(url)
            .await
            .unwrap(),
    );
    a_code_is_redeemed_once(stores).await;
    // Reconnecting finds the schema and the data.
    let again = hashpass::sql::SqlRedemptionStore::connect(url)
        .await
        .unwrap();
    assert_eq!(again.list().await.unwrap().len(), 3);
    let mut stores = memory().await;
    stores.redemptions = Arc::new(again);
    a_released_use_frees_its_place(stores).await;
}

/// In `redemptions.json` of a data directory (`HashPassBuilder::on_disk`): the same case, and a
/// store opened again on the directory (a restart) finds every use, withdrawal and limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_redemptions() {
    let dir = hashpass_tests::server::temp_dir("file-redemptions").join("data");
    let mut stores = memory().await;
    stores.redemptions = Arc::new(hashpass::FileRedemptionStore::open(&dir).unwrap());
    let before = stores.redemptions.clone();
    a_code_is_redeemed_once(stores).await;
    let listed = before.list().await.unwrap();
    drop(before);
    let again = hashpass::FileRedemptionStore::open(&dir).unwrap();
    assert_eq!(again.list().await.unwrap(), listed);
    assert_eq!(
        again.status("code-2").await.unwrap().state(),
        CodeState::Revoked
    );
    let mut stores = memory().await;
    stores.redemptions = Arc::new(again);
    a_released_use_frees_its_place(stores).await;
}

/// On an embedded SQLite file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_redemptions() {
    let dir = hashpass_tests::server::temp_dir("sqlite");
    sql_redemptions(&format!(
        "sqlite://{}?mode=rwc",
        dir.join("redemptions.db").display()
    ))
    .await;
    // It names who used each code: private, and tightened at connect if it was not.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let file = dir.join("redemptions.db");
        let mode = || hashpass::private_files::mode_of(&file).unwrap();
        assert_eq!(mode(), Some(0o600));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let url = format!("sqlite://{}?mode=rwc", file.display());
        hashpass::sql::SqlRedemptionStore::connect(&url)
            .await
            .unwrap();
        assert_eq!(mode(), Some(0o600));
    }
}

/// On a PostgreSQL server the test starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_redemptions() {
    let Some(server) = hashpass_tests::postgres_server::shared() else {
        return;
    };
    sql_redemptions(&hashpass_tests::postgres_server::fresh_database(&server, "redemptions").await)
        .await;
}

/// Instances starting together on a fresh database: every one connects, and each migration is
/// applied once.
async fn concurrent_first_connects(url: &str) {
    let connects = futures_util::future::join_all(
        (0..6).map(|_| hashpass::sql::SqlRedemptionStore::connect(url)),
    )
    .await;
    for connected in &connects {
        assert!(
            connected.is_ok(),
            "a concurrent first connect failed: {connected:?}"
        );
    }
    let store = connects.into_iter().next().unwrap().unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_migrations_run_once_under_concurrent_starts() {
    let dir = hashpass_tests::server::temp_dir("sqlite-race");
    concurrent_first_connects(&format!(
        "sqlite://{}?mode=rwc",
        dir.join("redemptions.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_migrations_run_once_under_concurrent_starts() {
    let Some(server) = hashpass_tests::postgres_server::shared() else {
        return;
    };
    concurrent_first_connects(
        &hashpass_tests::postgres_server::fresh_database(&server, "migration_race").await,
    )
    .await;
}

/// Instance liveness in Redis is timed by the Redis server's clock alone
/// (docs/protocol.md#instance-liveness): a caller whose clock is hours ahead takes no live
/// instance for dead, a lease lapses after its length in real time whatever the callers'
/// clocks say, and the lapse is told on the caller's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_instance_liveness_uses_the_servers_clock() {
    use hashpass::instances::InstanceRegistry;
    use hashpass::redis::{RedisBackend, RedisInstanceRegistry};
    let server = hashpass_tests::redis_server::shared();
    let backend = RedisBackend::connect(
        &server.url,
        hashpass_tests::redis_server::unique_prefix("liveness"),
    )
    .await
    .unwrap();
    let lease = Duration::from_millis(1500);
    let (alive, watcher) = (
        RedisInstanceRegistry::new(backend.clone(), lease),
        RedisInstanceRegistry::new(backend, lease),
    );
    assert!(alive.heartbeat().await.unwrap(), "the first renewal");
    assert!(!alive.heartbeat().await.unwrap(), "known from then on");
    alive.socket_opened(7, "token-7").await.unwrap();
    let local_now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    // A watcher whose clock runs an hour ahead (or behind) sees a live instance.
    for skew in [3600.0, -3600.0] {
        assert!(
            watcher
                .take_lapsed(local_now() + skew)
                .await
                .unwrap()
                .is_empty(),
            "skew {skew}"
        );
    }
    tokio::time::sleep(lease + Duration::from_millis(500)).await;
    let skewed_now = local_now() - 3600.0;
    let lapsed = watcher.take_lapsed(skewed_now).await.unwrap();
    assert_eq!(lapsed.len(), 1, "{lapsed:?}");
    assert_eq!(lapsed[0].id, alive.id());
    assert_eq!(lapsed[0].sockets, vec![(7, "token-7".to_string())]);
    // About 0.5 s before the watcher's own now, on its own clock.
    let ago = skewed_now - lapsed[0].lapsed_at;
    assert!((0.0..2.0).contains(&ago), "lapsed {ago} s ago");
    assert!(watcher.take_lapsed(local_now()).await.unwrap().is_empty());
    assert!(
        alive.heartbeat().await.unwrap(),
        "a lapsed instance learns it at its next renewal"
    );
}
