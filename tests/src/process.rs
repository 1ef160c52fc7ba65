//! Programs under test run as real processes: a free port to give one, waiting until it
//! answers, and the browser prerequisites of the node scripts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

/// The environment of a quick game for a server process: tiny Argon2 and difficulty 1 (a win
/// in well under a second), the offline captcha, no submission limit, `admin_token`, `port`.
pub fn quick_game_env<'a>(port: &'a str, admin_token: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("PORT", port),
        ("HASHPASS_HOST", "127.0.0.1"),
        ("TURNSTILE_TEST_MODE", "true"),
        ("ADMIN_TOKEN", admin_token),
        ("HASHPASS_DIFFICULTY", "1"),
        ("HASHPASS_MIN_DIFFICULTY", "1"),
        ("HASHPASS_MAX_DIFFICULTY", "1"),
        ("HASHPASS_ARGON2_MEMORY_COST", "8"),
        ("HASHPASS_ARGON2_TIME_COST", "1"),
        ("HASHPASS_SUBMIT_RATE", "0"),
        // Every browser context comes from 127.0.0.1: one address, many sessions and wins.
        ("HASHPASS_ADDRESS_SUBMIT_RATE", "0"),
        ("HASHPASS_SESSIONS_PER_ADDRESS", "0"),
    ]
}

/// Waits until `url` answers 2xx (with a browser's User-Agent), or fails with what `child`
/// printed if it exits first or 30 s pass.
pub async fn wait_until_answers(child: &mut Child, url: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr).await;
            }
            panic!("the server exited early ({status}): {stderr}");
        }
        let answer = client
            .get(url)
            .header("user-agent", "Mozilla/5.0")
            .send()
            .await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer within 30 s");
}

/// Stops `child` and returns everything it printed (stdout, then stderr).
pub async fn stop(mut child: Child) -> String {
    let _ = child.start_kill();
    let output = child.wait_with_output().await.expect("the child is reaped");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `tests/browser/`, after checking that Chromium and playwright-core are there; returns it
/// with the Chromium path to pass as `--chromium`.
pub fn browser_scripts() -> (PathBuf, String) {
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let chromium =
        std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/lib/chromium/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is not installed at {chromium}: run the README's test command (scripts/test installs it), or set CHROMIUM"
    );
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci --prefix tests/browser`"
    );
    (browser, chromium)
}

/// Runs `tests/browser/embedded.e2e.mjs` against the pages mounted at `base` (its URL ending in
/// `/`): Chromium wins a code there and finds it in the console (`token` logs in). Stops
/// `server` afterwards and returns what it printed; fails with both sides' output, naming
/// `what`, if the script fails. `extra` goes to the script after the usual arguments.
pub async fn check_embedded_pages(
    server: Child,
    what: &str,
    base: &str,
    token: &str,
    out: &Path,
    extra: &[&str],
) -> String {
    let (browser, chromium) = browser_scripts();
    let run = Command::new("node")
        .arg(browser.join("embedded.e2e.mjs"))
        .args(["--base", base, "--token", token, "--chromium", &chromium])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .await
        .expect("node runs");
    let printed = stop(server).await;
    assert!(
        run.status.success(),
        "{what}: the embedded pages at {base} failed:\n{}\n{}\nserver:\n{printed}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    printed
}

/// The `hashpass-server` binary, built (or found up to date) once per test binary. Cargo builds
/// binaries for the integration tests of their own package only, so this package asks cargo —
/// the same one, profile and target directory — for it, and takes the path cargo reports.
pub fn server_binary() -> &'static Path {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut cargo =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo.current_dir(&workspace).args([
            "build",
            "-p",
            "hashpass-examples",
            "--bin",
            "hashpass-server",
            "--message-format=json-render-diagnostics",
        ]);
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        let output = cargo
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(output.status.success(), "building hashpass-server failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| {
                message["reason"] == "compiler-artifact"
                    && message["target"]["name"] == "hashpass-server"
            })
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the hashpass-server executable")
    })
}

/// [`server_binary`] from async code: the first call runs cargo, off the runtime's threads.
pub async fn build_server_binary() -> &'static Path {
    tokio::task::spawn_blocking(server_binary)
        .await
        .expect("the build finishes")
}

/// `hashpass-server` run in `dir` with exactly `env` (plus `PATH`): nothing inherited, no `.env`
/// of the workspace in reach; standard input closed, output piped, killed when dropped.
pub fn server_command<'a>(
    dir: &Path,
    env: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Command {
    program_command(server_binary(), dir, env)
}

/// `program` run as [`server_command`] runs the server: in `dir`, with exactly `env` (plus
/// `PATH`), standard input closed, output piped, killed when dropped.
pub fn program_command<'a>(
    program: &Path,
    dir: &Path,
    env: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A `hashpass-server` process on a free 127.0.0.1 port, with exactly the environment given
/// (plus `PATH`, `PORT` and `HASHPASS_HOST`), run in its own directory; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Its working directory.
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl crate::client::Reachable for ServerProcess {
    fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl ServerProcess {
    /// Starts the server in `dir` with `env` and waits until it answers `/api/health`.
    pub async fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        build_server_binary().await;
        let port = free_port();
        let mut server = Self {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            dir: dir.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        server.spawn().await;
        server
    }

    fn env(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    async fn spawn(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("server directory");
        // Standard output (the log) is not read: left piped, a long run would fill the pipe.
        let mut child = server_command(&self.dir, self.env())
            .env("PORT", self.addr.port().to_string())
            .env("HASHPASS_HOST", "127.0.0.1")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("hashpass-server starts");
        wait_until_answers(&mut child, &format!("http://{}/api/health", self.addr)).await;
        self.child = Some(child);
    }

    /// Runs `hashpass-server ARGS` (an operator tool) with this server's directory and
    /// environment; its output.
    pub async fn run_tool(&self, args: &[&str]) -> std::process::Output {
        server_command(&self.dir, self.env())
            .args(args)
            .output()
            .await
            .expect("hashpass-server runs")
    }

    /// Kills the process with SIGKILL (no clean-up of any kind) and reaps it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("SIGKILL");
        }
    }

    /// Starts it again, same port, directory and environment (after [`ServerProcess::kill`]).
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }

    /// Sends SIGTERM (a graceful shutdown) and waits up to `wait` for the exit; what it printed
    /// on standard error.
    pub async fn terminate(mut self, wait: Duration) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        let _ = tokio::time::timeout(wait, child.wait()).await;
        stop(child).await
    }
}
