//! A real PostgreSQL server for tests: a throwaway cluster (`initdb`) in a temp directory,
//! listening on a free 127.0.0.1 port, removed when dropped. PostgreSQL refuses to run as root,
//! so under root the cluster belongs to the `postgres` system user that Debian's package creates.
//!
//! Without PostgreSQL's server programs the tests that need one are skipped with a message —
//! except under CI (`CI` set), where `.ci/run` installs them and a missing server is a failure.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// A running PostgreSQL cluster.
#[derive(Debug)]
pub struct PostgresServer {
    /// `postgres://hashpass@127.0.0.1:PORT/postgres`.
    pub url: String,
    child: Mutex<Option<Child>>,
    dir: PathBuf,
}

/// The directory of the newest installed PostgreSQL's programs (`postgres`, `initdb`, …).
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` from `bin`, run as the `postgres` user when we are root.
fn command(bin: &Path, program: &str) -> Command {
    let path = bin.join(program);
    if running_as_root() {
        // setpriv execs the program itself (no forked parent), so killing the child kills it.
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(path);
        command
    } else {
        Command::new(path)
    }
}

fn quiet(command: &mut Command) -> &mut Command {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
}

impl PostgresServer {
    /// Starts a fresh cluster; `None` (with a message) when PostgreSQL is not installed and this
    /// is not CI.
    pub fn start() -> Option<Self> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is not installed (apt-get install postgresql; the CI script does)"
            );
            eprintln!("skipped: PostgreSQL is not installed (apt-get install postgresql)");
            return None;
        };
        let dir = crate::server::temp_dir("postgres");
        if running_as_root() {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown runs");
            assert!(owned.success(), "chown of {} failed", dir.display());
        }
        let data = dir.join("data");
        let initdb = quiet(&mut command(&bin, "initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "hashpass", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .status()
            .expect("initdb runs");
        assert!(initdb.success(), "initdb failed in {}", data.display());
        // Every cluster speaks TLS too (clients choose with sslmode), as managed services do.
        let certificates = crate::tls::TestCertificates::generate(&dir.join("tls"));
        if running_as_root() {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.join("tls"))
                .status()
                .expect("chown runs");
            assert!(owned.success(), "chown of the certificates failed");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let child = quiet(&mut command(&bin, "postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
            .args(["-c", "ssl=on"])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", certificates.cert.display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", certificates.key.display()))
            .spawn()
            .expect("postgres runs");
        let server = Self {
            url: format!("postgres://hashpass@127.0.0.1:{port}/postgres"),
            child: Mutex::new(Some(child)),
            dir,
        };
        for _ in 0..400 {
            let ready = quiet(&mut Command::new(bin.join("pg_isready")))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "hashpass"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("postgres did not start on port {port}");
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // SIGQUIT: immediate shutdown, the backends go with the postmaster.
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            if !matches!(wait_briefly(&mut child), Some(true)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `child` exited within five seconds.
fn wait_briefly(child: &mut Child) -> Option<bool> {
    for _ in 0..100 {
        if child.try_wait().ok()?.is_some() {
            return Some(true);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(false)
}

static SHARED: Mutex<Weak<PostgresServer>> = Mutex::new(Weak::new());

/// A server shared by the tests running at the same time in this binary (`None`: not installed,
/// outside CI).
pub fn shared() -> Option<Arc<PostgresServer>> {
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = slot.upgrade() {
        return Some(server);
    }
    let server = Arc::new(PostgresServer::start()?);
    *slot = Arc::downgrade(&server);
    Some(server)
}

/// A fresh database on `server` (so tests sharing it do not see each other's tables).
pub async fn fresh_database(server: &PostgresServer, name: &str) -> String {
    use sqlx::Connection;
    let mut admin = sqlx::postgres::PgConnection::connect(&server.url)
        .await
        .expect("postgres reachable");
    let database = format!(
        "{name}_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    server.url.replace("/postgres", &format!("/{database}"))
}
