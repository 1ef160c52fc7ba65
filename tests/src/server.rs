//! A real server on 127.0.0.1 for one test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use hashpass::clock::FakeClock;
use hashpass::puzzle::Argon2Params;
use hashpass::{Config, HashPass, HashPassBuilder};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// An adapter's serve function: serve `HashPass` on the listener until the receiver fires.
pub type Serve = fn(HashPass, TcpListener, oneshot::Receiver<()>) -> BoxFuture<'static, ()>;

/// The admin token of test servers.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A test configuration: offline captcha, tiny Argon2 (8 KiB, t=1), difficulty 1, data and
/// logs in `dir`.
pub fn test_config(dir: &std::path::Path) -> Config {
    Config::default()
        .with_turnstile_test_mode(true)
        .with_admin_token(Some(ADMIN_TOKEN.into()))
        .with_argon2(Argon2Params::new(1, 8, 1))
        .with_difficulty(1u32)
        .with_min_difficulty(1u32)
        .with_max_difficulty(1u32)
        .with_log_dir(dir.join("log"))
        .with_submit_limit(0u32)
        .with_address_submit_limit(0)
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let unique = format!(
        "hashpass-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let dir = std::env::temp_dir().join(unique);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A running server; stops (gracefully) when dropped.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The instance (for white-box assertions).
    pub hashpass: HashPass,
    /// Its clock.
    pub clock: FakeClock,
    /// Its working directory (data and logs).
    pub dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _jobs: hashpass::BackgroundJobs,
    _redis: Option<Arc<crate::redis_server::RedisServer>>,
    redis_backed: bool,
}

static REDIS_STATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes every [`TestServer::start`] in this test binary keep its shared state in Redis.
pub fn use_redis_for_shared_state() {
    REDIS_STATE.store(true, std::sync::atomic::Ordering::SeqCst);
}

impl TestServer {
    /// Starts `serve` with `config` on a free port, file-backed in `dir` — or, in a test binary
    /// that called [`use_redis_for_shared_state`], with its shared state in Redis under a prefix
    /// derived from `dir` (so a restart on the same `dir` finds its state again).
    pub async fn start(serve: Serve, config: Config, dir: PathBuf) -> Self {
        if !REDIS_STATE.load(std::sync::atomic::Ordering::SeqCst) {
            return Self::start_shared(serve, config, dir, None).await;
        }
        let redis = crate::redis_server::shared();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let backend = hashpass::redis::RedisBackend::connect(&redis.url, format!("{name}:"))
            .await
            .expect("redis reachable");
        let mut server = Self::start_shared(serve, config, dir, Some(backend)).await;
        server._redis = Some(redis);
        server
    }

    /// [`TestServer::start`] with the shared stores in Redis (`backend`), as one of several
    /// instances of a deployment.
    pub async fn start_shared(
        serve: Serve,
        config: Config,
        dir: PathBuf,
        backend: Option<hashpass::redis::RedisBackend>,
    ) -> Self {
        Self::start_custom(serve, config, dir, backend, |builder| builder).await
    }

    /// [`TestServer::start_shared`] with the builder adjusted by `customise` last (to give it
    /// a seam of the test's own).
    pub async fn start_custom(
        serve: Serve,
        config: Config,
        dir: PathBuf,
        backend: Option<hashpass::redis::RedisBackend>,
        customise: impl FnOnce(HashPassBuilder) -> HashPassBuilder,
    ) -> Self {
        let clock = FakeClock::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
        );
        // The jobs are this server's own handle, not the instance's: dropping the server stops
        // them at once, even while a client still holds a connection (and so a clone of the
        // instance) open — a "crashed" instance must not keep renewing its lease.
        let mut builder = HashPass::builder(config)
            .clock(Arc::new(clock.clone()))
            .on_disk(dir.join("data"))
            .without_background_jobs();
        let redis_backed = backend.is_some();
        if let Some(backend) = backend {
            builder = builder.redis(backend).await.expect("Redis stores");
        }
        let hashpass = customise(builder)
            .build()
            .await
            .expect("test server builds");
        let jobs = hashpass.spawn_jobs();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(hashpass.clone(), listener, stopped));
        Self {
            addr,
            hashpass,
            clock,
            dir,
            stop: Some(stop),
            task: Some(task),
            _jobs: jobs,
            _redis: None,
            redis_backed,
        }
    }

    /// Starts a server with [`test_config`] adjusted by `adjust`.
    pub async fn with(serve: Serve, name: &str, adjust: impl FnOnce(Config) -> Config) -> Self {
        let dir = temp_dir(name);
        Self::start(serve, adjust(test_config(&dir)), dir).await
    }

    /// Whether the shared state lives in Redis (audit stream instead of files).
    pub fn shares_state(&self) -> bool {
        self.redis_backed
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and waits until it has.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
