//! Helpers shared by the core's integration tests: an instance on a fake clock with tiny Argon2
//! parameters, sessions for distinct IPs, and a brute-force solver.
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use hashpass::clock::FakeClock;
use hashpass::puzzle::{Argon2Params, PuzzleHash};
use hashpass::service::Solution;
use hashpass::session::{Session, new_connection_id, new_session_token};
use hashpass::verify::{Argon2Verifier, Computed, Verifier, VerifyError};
use hashpass::{Config, HashPass};

/// Tiny but real Argon2d parameters: 8 KiB, one pass.
pub(crate) const TINY: Argon2Params = Argon2Params::new(1, 8, 1);

/// A test configuration: offline captcha, tiny parameters, difficulty 1, no rate limit.
pub(crate) fn config() -> Config {
    Config::default()
        .with_turnstile_test_mode(true)
        .with_argon2(TINY)
        .with_difficulty(1u32)
        .with_min_difficulty(1u32)
        .with_max_difficulty(64u32)
        .with_submit_limit(0u32)
        .with_address_submit_limit(0)
        .with_admin_token(Some("admin-secret-0123456789".into()))
}

/// An instance on a fake clock, its builder adjusted by `customise` (a seam of the test's own).
pub(crate) async fn instance_with(
    config: Config,
    customise: impl FnOnce(hashpass::HashPassBuilder) -> hashpass::HashPassBuilder,
) -> (HashPass, FakeClock) {
    let clock = FakeClock::default();
    let builder = HashPass::builder(config)
        .clock(Arc::new(clock.clone()))
        .without_background_jobs();
    let hp = customise(builder).build().await.expect("instance builds");
    (hp, clock)
}

/// An instance on a fake clock.
pub(crate) async fn instance(config: Config) -> (HashPass, FakeClock) {
    let clock = FakeClock::default();
    let hp = HashPass::builder(config)
        .clock(Arc::new(clock.clone()))
        .without_background_jobs()
        .build()
        .await
        .expect("instance builds");
    (hp, clock)
}

/// A distinct client IP per index.
pub(crate) fn ip(i: usize) -> IpAddr {
    IpAddr::from([10, 0, (i / 250) as u8, (i % 250 + 1) as u8])
}

/// Creates a connected session for `ip` directly in the store.
pub(crate) async fn session(hp: &HashPass, ip: IpAddr) -> Session {
    let s = Session::new(
        new_session_token(),
        ip,
        hp.service().seams().clock.now(),
        new_connection_id(),
    );
    hp.service()
        .seams()
        .sessions
        .insert(s.clone())
        .await
        .unwrap();
    s
}

/// Finds the smallest nonce ≥ `from` whose hash has at least `zeros` leading zero bits.
pub(crate) fn solve(
    params: Argon2Params,
    seed: &str,
    visitor: &str,
    ip: IpAddr,
    zeros: u32,
    from: u64,
) -> (u64, PuzzleHash) {
    hashpass::verify::solve(params, seed, visitor, &ip.to_string(), zeros, from)
        .expect("a solution")
}

/// A solution for the current puzzle.
pub(crate) fn solution(
    seed: &str,
    visitor: &str,
    ip: IpAddr,
    nonce: u64,
    hash: PuzzleHash,
) -> Solution {
    Solution {
        visitor_id: visitor.to_string(),
        nonce,
        submitted_seed: seed.to_string(),
        trace_data: format!("fl=0f0\nip={ip}\nts=1"),
        hash,
    }
}

/// The real verifier, counting the hashes it is asked to compute: a refusal that must come
/// before hashing leaves [`CountingVerifier::computed`] where it was.
pub(crate) struct CountingVerifier {
    inner: Argon2Verifier,
    computed: AtomicUsize,
}

impl CountingVerifier {
    /// Counts around the verifier `config` describes (the one an instance builds by default).
    pub(crate) fn for_config(config: &Config) -> Arc<Self> {
        Arc::new(Self {
            inner: Argon2Verifier::from_config(&config.limits),
            computed: AtomicUsize::new(0),
        })
    }

    /// `compute` calls so far.
    pub(crate) fn computed(&self) -> usize {
        self.computed.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Verifier for CountingVerifier {
    async fn compute(
        &self,
        params: Argon2Params,
        password: &[u8],
        salt: &[u8],
    ) -> Result<Computed, VerifyError> {
        self.computed.fetch_add(1, Ordering::SeqCst);
        self.inner.compute(params, password, salt).await
    }

    fn queued(&self) -> usize {
        self.inner.queued()
    }
}
