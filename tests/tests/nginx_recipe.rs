//! The README's multi-instance nginx recipe, verbatim but for its addresses, in front of three
//! real `hashpass-server` instances on one real Redis, with Debian's nginx: a client sending
//! bodies over the limit gets 413s and takes no instance out of rotation, while another loads
//! the page, plays and wins without ever seeing a 5xx. The same holds with the recipe's
//! `client_max_body_size` taken out, where the bodies reach the instances and they answer the
//! 413 after reading them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hashpass_tests::client::{Http, Player, Reachable, client_ip};
use hashpass_tests::process::{ServerProcess, free_port, quick_game_env};
use hashpass_tests::redis_server::{RedisServer, unique_prefix};
use hashpass_tests::server::{ADMIN_TOKEN, temp_dir};
use tokio::process::{Child, Command};

/// The multi-instance recipe: the README's `nginx` block that starts with `upstream hashpass {`.
fn readme_recipe() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let start = readme
        .find("```nginx\nupstream hashpass {")
        .expect("the README has the multi-instance nginx recipe")
        + "```nginx\n".len();
    let end = start + readme[start..].find("```").expect("the block ends");
    readme[start..end].to_string()
}

/// nginx in front of `instances` with the recipe (its three `127.0.0.1:800N` and its TLS
/// `listen` replaced by these addresses), run in the foreground from `dir`.
struct Nginx {
    addr: SocketAddr,
    dir: PathBuf,
    child: Child,
}

impl Drop for Nginx {
    /// SIGTERM to the master, which stops its workers (a SIGKILL would leave them running),
    /// and up to 3 s for it to exit.
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            for _ in 0..100 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            let _ = self.child.start_kill();
        }
    }
}

impl Reachable for Nginx {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Nginx {
    async fn start(name: &str, recipe: &str, instances: &[SocketAddr]) -> Self {
        let dir = temp_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let mut recipe = recipe.replace("listen 443 ssl;", &format!("listen 127.0.0.1:{port};"));
        for (n, instance) in instances.iter().enumerate() {
            let placeholder = format!("127.0.0.1:800{}", n + 1);
            assert!(recipe.contains(&placeholder), "{placeholder} in the recipe");
            recipe = recipe.replace(&placeholder, &instance.to_string());
        }
        let temp = |what: &str| {
            let path = dir.join(what);
            std::fs::create_dir_all(&path).unwrap();
            // The workers may run as another user than the master.
            std::process::Command::new("chmod")
                .args(["0777", path.to_str().unwrap()])
                .status()
                .unwrap();
            path.display().to_string()
        };
        let config = format!(
            "daemon off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {body};\n  proxy_temp_path {proxy};\n  \
             fastcgi_temp_path {fastcgi};\n  uwsgi_temp_path {uwsgi};\n  scgi_temp_path {scgi};\n{recipe}\n}}\n",
            dir = dir.display(),
            body = temp("body"),
            proxy = temp("proxy"),
            fastcgi = temp("fastcgi"),
            uwsgi = temp("uwsgi"),
            scgi = temp("scgi"),
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("nginx")
            .args(["-p", dir.to_str().unwrap(), "-c", path.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx runs (Debian's nginx package)");
        let nginx = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            child,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(nginx.addr).await.is_ok() {
                return nginx;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nginx did not listen: {}", nginx.error_log());
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

/// Three instances of one deployment on `redis`, as the README runs them behind nginx.
async fn deployment(name: &str, redis: &RedisServer) -> Vec<ServerProcess> {
    let prefix = unique_prefix(name);
    let mut instances = Vec::new();
    for n in 1..=3 {
        let dir = temp_dir(&format!("{name}-{n}"));
        let data = dir.join("data").to_string_lossy().into_owned();
        let mut env = quick_game_env("0", ADMIN_TOKEN);
        env.retain(|(k, _)| *k != "PORT" && *k != "HASHPASS_HOST");
        env.extend([
            ("HASHPASS_REDIS_URL", redis.url.as_str()),
            ("HASHPASS_REDIS_PREFIX", prefix.as_str()),
            ("HASHPASS_DATA_DIR", data.as_str()),
            ("HASHPASS_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("HASHPASS_CLIENT_IP_HEADER", "X-Real-IP"),
        ]);
        instances.push(ServerProcess::start(&dir, &env).await);
    }
    instances
}

/// Sends 20 bodies of 64 KiB (the limit is 16 KiB) from its own address: every answer a 413.
async fn oversized_bodies(nginx: &Nginx) -> Vec<u16> {
    let http = Http::new(nginx, client_ip(200));
    let body = serde_json::json!({ "padding": "x".repeat(64 * 1024) });
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(http.post("/api/verify", &body, None).await.status);
    }
    statuses
}

/// Loads the page and plays through nginx until `stop`: every answer it got.
async fn play(nginx: &Nginx, stop: Arc<AtomicBool>) -> (Vec<(String, u16)>, usize) {
    let mut answers = Vec::new();
    let mut wins = 0;
    let http = Http::new(nginx, client_ip(201));
    let player = Player::connect(nginx, client_ip(202)).await;
    while !stop.load(Ordering::SeqCst) || wins == 0 {
        for path in ["/", "/api/health", "/api/turnstile/config"] {
            answers.push((path.to_string(), http.get(path).await.status));
        }
        let puzzle = player.puzzle().await;
        answers.push(("/api/puzzle".into(), puzzle.status));
        if puzzle.status == 200 {
            let body = player.solution(&puzzle.json()).await;
            let verified = player.verify(&body).await;
            answers.push(("/api/verify".into(), verified.status));
            wins += usize::from(verified.status == 200);
        }
        if answers.len() > 400 {
            break;
        }
    }
    (answers, wins)
}

async fn oversized_bodies_take_no_instance_out(name: &str, recipe: String) {
    let redis = RedisServer::start();
    let instances = deployment(name, &redis).await;
    let addrs: Vec<SocketAddr> = instances.iter().map(|i| i.addr).collect();
    let nginx = Nginx::start(name, &recipe, &addrs).await;
    let stop = Arc::new(AtomicBool::new(false));
    let stop_player = Arc::clone(&stop);
    let (refused, (answers, wins)) = tokio::join!(
        async {
            let statuses = oversized_bodies(&nginx).await;
            stop.store(true, Ordering::SeqCst);
            statuses
        },
        play(&nginx, stop_player)
    );
    assert_eq!(
        refused,
        vec![413; 20],
        "{name}: every oversized body is a 413"
    );
    let failures: Vec<&(String, u16)> = answers.iter().filter(|(_, s)| *s >= 500).collect();
    assert!(
        failures.is_empty(),
        "{name}: the player saw {failures:?}\nnginx: {}",
        nginx.error_log()
    );
    assert!(
        wins > 0,
        "{name}: the player won through nginx: {answers:?}"
    );
    // No instance was marked down: each still gets its clients (hash $remote_addr) and answers.
    let log = nginx.error_log();
    assert!(
        !log.contains("no live upstreams") && !log.contains("upstream server temporarily disabled"),
        "{name}: nginx took an instance out of rotation:\n{log}"
    );
    for n in 0..30 {
        let status = Http::new(&nginx, client_ip(210 + n))
            .get("/api/health")
            .await
            .status;
        assert_eq!(status, 200, "{name}: a visitor after the bodies");
    }
    drop(nginx);
    drop(instances);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_recipe_holds_against_oversized_bodies() {
    oversized_bodies_take_no_instance_out("nginx-recipe", readme_recipe()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nginx_s_body_limit_the_instances_still_answer_413_readably() {
    let recipe = readme_recipe();
    let without: String = recipe
        .lines()
        .filter(|line| !line.contains("client_max_body_size"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(recipe, without, "the recipe sets client_max_body_size");
    oversized_bodies_take_no_instance_out("nginx-no-body-limit", without).await;
}
