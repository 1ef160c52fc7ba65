//! The miner page keeps what it found (issue "fair under attack", point 3), in real Chromium:
//! a verifier that is busy (HTTP 503) for the first two verifications makes the page resubmit
//! the very same solution until it wins the one invite code; a reset drops a pending solution,
//! and a 409 without a reset makes the page fetch the current puzzle itself
//! (`tests/browser/retry.e2e.mjs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::BoxFuture;
use hashpass::puzzle::Argon2Params;
use hashpass::verify::{Argon2Verifier, Computed, Verifier, VerifyError};
use hashpass_tests::cases::{browser_config, run_browser_script_with};
use hashpass_tests::client::client_ip;
use hashpass_tests::server::temp_dir;
use hashpass_tests::{Http, Serve, TestServer, adapters, test_config};

/// How many verifications the server refuses as busy before it lets one through.
const BUSY_FIRST: usize = 2;

/// Busy for the first [`BUSY_FIRST`] verifications, the real Argon2 verifier for the next one,
/// and busy again for every one after it (so the page can win only once, and keeps a pending
/// solution for the rest of the script).
#[derive(Debug)]
struct BusyAroundOneWin {
    inner: Argon2Verifier,
    calls: AtomicUsize,
    busy: AtomicUsize,
    computed: AtomicUsize,
}

impl Verifier for BusyAroundOneWin {
    // What `#[async_trait]` expands `async fn compute` to (this crate does not depend on it).
    fn compute<'s, 'p, 'q, 'f>(
        &'s self,
        params: Argon2Params,
        password: &'p [u8],
        salt: &'q [u8],
    ) -> BoxFuture<'f, Result<Computed, VerifyError>>
    where
        's: 'f,
        'p: 'f,
        'q: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if call != BUSY_FIRST {
                self.busy.fetch_add(1, Ordering::SeqCst);
                return Err(VerifyError::Busy);
            }
            self.computed.fetch_add(1, Ordering::SeqCst);
            self.inner.compute(params, password, salt).await
        })
    }
}

async fn resubmits_until_it_wins(serve: Serve, name: &str) {
    let dir = temp_dir(name);
    let config = browser_config(test_config(&dir));
    let verifier = Arc::new(BusyAroundOneWin {
        inner: Argon2Verifier::new(64, 16),
        calls: AtomicUsize::new(0),
        busy: AtomicUsize::new(0),
        computed: AtomicUsize::new(0),
    });
    let seam: Arc<dyn Verifier> = verifier.clone();
    let server = TestServer::start_custom(serve, config, dir, None, move |builder| {
        builder.verifier(seam)
    })
    .await;
    let started = std::time::Instant::now();
    run_browser_script_with(&server, "retry.e2e.mjs", &[]).await;

    // One hash computed (the win); busy for the two before it and for the later puzzles'
    // solutions (at least one each of the two after the win).
    assert_eq!(verifier.computed.load(Ordering::SeqCst), 1);
    assert!(
        verifier.busy.load(Ordering::SeqCst) >= BUSY_FIRST + 2,
        "busy answers: {}",
        verifier.busy.load(Ordering::SeqCst)
    );
    let logs = Http::new(&server, client_ip(2))
        .admin_get("/api/admin/logs")
        .await;
    assert_eq!(logs.status, 200, "{}", logs.text);
    assert_eq!(logs.json()["total"], 1, "{}", logs.text);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_retry_axum() {
    resubmits_until_it_wins(adapters::axum, "browser-retry-axum").await;
}
