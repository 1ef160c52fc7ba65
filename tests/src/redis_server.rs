//! A real `redis-server` for tests, started on a free 127.0.0.1 port and stopped when the last
//! user drops it (so no server outlives the test binary).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    /// `redis://127.0.0.1:PORT/`.
    pub url: String,
    /// Its port.
    pub port: u16,
    child: Mutex<Option<Child>>,
    /// Where an append-only file keeps the data across restarts, if persistent.
    dir: Option<PathBuf>,
    /// The certificates of a TLS-only server.
    tls: Option<crate::tls::TestCertificates>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

impl RedisServer {
    fn new(dir: Option<PathBuf>, tls: Option<crate::tls::TestCertificates>) -> Self {
        let port = free_port();
        let scheme = if tls.is_some() { "rediss" } else { "redis" };
        let server = Self {
            url: format!("{scheme}://127.0.0.1:{port}/"),
            port,
            child: Mutex::new(None),
            dir,
            tls,
        };
        server.restart();
        server
    }

    /// Starts a server (data in memory only) and waits until it accepts connections.
    pub fn start() -> Self {
        Self::new(None, None)
    }

    /// Starts a server that speaks only TLS (`rediss://` URL), with a certificate for
    /// 127.0.0.1 signed by the returned test CA, as managed Redis services do.
    pub fn start_tls() -> (Self, crate::tls::TestCertificates) {
        let certificates =
            crate::tls::TestCertificates::generate(&crate::server::temp_dir("redis-tls"));
        (Self::new(None, Some(certificates.clone())), certificates)
    }

    /// Starts a server that keeps its data across [`RedisServer::stop`] and
    /// [`RedisServer::restart`] (append-only file, fsync on every write), as production would.
    pub fn start_persistent() -> Self {
        Self::new(Some(crate::server::temp_dir("redis-data")), None)
    }

    /// Starts the server again on the same port (after [`RedisServer::stop`]).
    pub fn restart(&self) {
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some(tls) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca)
                .args(["--tls-auth-clients", "no"]),
        };
        command.args(["--bind", "127.0.0.1", "--save", ""]);
        match &self.dir {
            Some(dir) => command.arg("--dir").arg(dir).args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ]),
            None => command.args(["--appendonly", "no"]),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server; the CI script does)");
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// The commands the server has processed since it started (`total_commands_processed` of
    /// `INFO stats`), every earlier call of this one included, this one not. Plain servers only.
    pub async fn commands_processed(&self) -> u64 {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        assert!(self.tls.is_none(), "commands_processed speaks plain RESP");
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("redis-server accepts a connection");
        let mut stream = tokio::io::BufReader::new(stream);
        stream
            .get_mut()
            .write_all(b"INFO stats\r\n")
            .await
            .expect("INFO sent");
        // The answer is one bulk string: `$<length>\r\n<text>\r\n`.
        let mut header = String::new();
        stream.read_line(&mut header).await.expect("INFO answered");
        let length: usize = header
            .trim()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a bulk string: {header:?}"));
        let mut text = vec![0; length];
        stream.read_exact(&mut text).await.expect("INFO text");
        String::from_utf8_lossy(&text)
            .lines()
            .find_map(|line| line.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("INFO stats has total_commands_processed")
    }

    /// Stops the server (an outage).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

static SHARED: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());

/// A server shared by the tests running at the same time in this binary.
pub fn shared() -> Arc<RedisServer> {
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = slot.upgrade() {
        return server;
    }
    let server = Arc::new(RedisServer::start());
    *slot = Arc::downgrade(&server);
    server
}

/// A key prefix no other test uses.
pub fn unique_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("test-{name}-{}-{nanos}:", std::process::id())
}
