//! The `hashpass-server` binary as an operator deploys it: copied alone into an empty directory
//! and started there, it serves a miner page that wins a code in headless Chromium (the pages
//! are embedded: no `static/`, no `node_modules`); a misconfiguration stops it before it listens,
//! with a message naming the variable; its start-up log shows no secret.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use hashpass_tests::process::{
    check_embedded_pages, free_port, program_command, quick_game_env, stop, wait_until_answers,
};
use tokio::process::{Child, Command};

const ADMIN_TOKEN: &str = "binary-test-admin-token-0123456789";

/// A fresh empty directory holding nothing but a copy of the binary.
fn lone_binary(name: &str) -> (PathBuf, PathBuf) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hashpass-binary-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("hashpass-server");
    std::fs::copy(env!("CARGO_BIN_EXE_hashpass-server"), &binary).unwrap();
    (dir, binary)
}

/// The binary in `dir` with exactly `env` (plus PATH), nothing inherited.
fn command(dir: &Path, binary: &Path, env: &[(&str, &str)]) -> Command {
    program_command(binary, dir, env.iter().copied())
}

/// A quick game on `port` with this test's admin token.
fn quick_game(port: &str) -> Vec<(&'static str, &str)> {
    quick_game_env(port, ADMIN_TOKEN)
}

/// Waits until the server on `port` answers its health check.
async fn wait_until_up(child: &mut Child, port: &str) {
    wait_until_answers(child, &format!("http://127.0.0.1:{port}/api/health")).await;
}

#[tokio::test]
async fn a_lone_binary_serves_a_miner_page_that_wins() {
    let (dir, binary) = lone_binary("pages");
    let port = free_port().to_string();
    let mut child = command(&dir, &binary, &quick_game(&port)).spawn().unwrap();
    wait_until_up(&mut child, &port).await;

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/output/standalone-binary");
    let base = format!("http://127.0.0.1:{port}/");
    let printed =
        check_embedded_pages(child, "the lone binary", &base, ADMIN_TOKEN, &out, &[]).await;
    // Nothing but what the server itself writes appeared beside it.
    let mut entries: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert!(
        !entries.iter().any(|e| e == "static" || e == "node_modules"),
        "{entries:?}"
    );
    assert!(
        printed.contains("HASHPASS_HMAC_SECRET is not set"),
        "no warning about the random invite key:\n{printed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the binary with `env` and expects it to refuse to start, naming `variable`.
async fn refuses(env: &[(&str, &str)], variable: &str) {
    let (dir, binary) = lone_binary("refusal");
    let output: Output = tokio::time::timeout(
        Duration::from_secs(30),
        command(&dir, &binary, env).output(),
    )
    .await
    .expect("a refused start-up ends at once")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{env:?} should stop start-up; stderr: {stderr}"
    );
    assert!(
        stderr.contains(&format!("hashpass-server: {variable}")),
        "{env:?}: the message should name {variable}: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn misconfigurations_stop_start_up_naming_the_variable() {
    let port = free_port().to_string();
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut env = quick_game(&port);
        env.retain(|(name, _)| !extra.iter().any(|(n, _)| n == name));
        env.extend_from_slice(extra);
        env.into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (
            with(&[("TURNSTILE_TEST_MODE", "false")]),
            "TURNSTILE_SITE_KEY",
        ),
        (
            with(&[
                ("TURNSTILE_TEST_MODE", "false"),
                ("TURNSTILE_SITE_KEY", "0x4AAAAAAA-site"),
            ]),
            "TURNSTILE_SECRET_KEY",
        ),
        (with(&[("ADMIN_TOKEN", "x")]), "ADMIN_TOKEN"),
        (with(&[("ADMIN_TOKEN", "short-token-15c")]), "ADMIN_TOKEN"),
        (
            with(&[("ADMIN_TOKEN", "change-me-to-a-long-random-string")]),
            "ADMIN_TOKEN",
        ),
        (
            with(&[("TURNSTILE_TEST_MODE", "treu")]),
            "TURNSTILE_TEST_MODE",
        ),
        (
            with(&[("HASHPASS_UA_FILTER", "maybe")]),
            "HASHPASS_UA_FILTER",
        ),
        (
            with(&[("HASHPASS_DEV_TRACE", "enabled")]),
            "HASHPASS_DEV_TRACE",
        ),
        (
            with(&[("HASHPASS_METRICS_PUBLIC", "2")]),
            "HASHPASS_METRICS_PUBLIC",
        ),
        (with(&[("HASHPASS_HOST", "example.org")]), "HASHPASS_HOST"),
        // Test mode beside a real Turnstile key would run the captcha that lets anyone in.
        (
            with(&[
                ("TURNSTILE_SITE_KEY", "0x4AAAAAAAB5nJ3Yx1mL0Ej2"),
                (
                    "TURNSTILE_SECRET_KEY",
                    "0x4AAAAAAAB5nJ3YxSecretKey0123456789",
                ),
            ]),
            "TURNSTILE_TEST_MODE",
        ),
        (
            with(&[(
                "TURNSTILE_SECRET_KEY",
                "0x4AAAAAAAB5nJ3YxSecretKey0123456789",
            )]),
            "TURNSTILE_TEST_MODE",
        ),
        // Trusting every address lets every client choose its own.
        (
            with(&[("HASHPASS_TRUSTED_PROXIES", "0.0.0.0/0")]),
            "HASHPASS_TRUSTED_PROXIES",
        ),
        (
            with(&[("HASHPASS_TRUSTED_PROXIES", "127.0.0.1/32, ::/0")]),
            "HASHPASS_TRUSTED_PROXIES",
        ),
        // Numbers out of their bounds: a refusal, never a panic.
        (
            with(&[("HASHPASS_SUBMIT_RATE", "4/1e30")]),
            "HASHPASS_SUBMIT_RATE",
        ),
        (
            with(&[("HASHPASS_ADDRESS_SUBMIT_RATE", "12/NaN")]),
            "HASHPASS_ADDRESS_SUBMIT_RATE",
        ),
        (
            with(&[("HASHPASS_VERIFY_FAILURE_MEMORY", "18446744073709551615")]),
            "HASHPASS_VERIFY_FAILURE_MEMORY",
        ),
        (
            with(&[("HASHPASS_INVITE_TTL", "18446744073709551615")]),
            "HASHPASS_INVITE_TTL",
        ),
        (
            with(&[("HASHPASS_MAX_NONCE_SPEED", "inf")]),
            "HASHPASS_MAX_NONCE_SPEED",
        ),
        (
            with(&[("HASHPASS_MAX_BODY_BYTES", "0")]),
            "HASHPASS_MAX_BODY_BYTES",
        ),
        (with(&[("PORT", "65536")]), "PORT"),
        (
            with(&[("HASHPASS_LOG_LEVEL", "loud")]),
            "HASHPASS_LOG_LEVEL",
        ),
    ];
    for (env, variable) in cases {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        refuses(&env, variable).await;
    }
}

#[tokio::test]
async fn the_start_up_log_shows_no_secret() {
    let (dir, binary) = lone_binary("secrets");
    let port = free_port().to_string();
    let secrets = [
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("HASHPASS_HMAC_SECRET", "7d1f0c9e3b5a48261f0e9d8c7b6a5948"),
        (
            "WEBHOOK_URL",
            "http://127.0.0.1:9/hooks/secret-path-token?key=query-secret",
        ),
        ("WEBHOOK_TOKEN", "webhook-bearer-secret"),
        ("WEBHOOK_SECRET", "webhook-signing-secret"),
        ("TURNSTILE_SECRET_KEY", "turnstile-secret-value"),
        ("TURNSTILE_SITE_KEY", "turnstile-site-key"),
    ];
    let mut env = quick_game(&port);
    // Real Turnstile keys: Turnstile, not test mode (which refuses them).
    env.retain(|(name, _)| name != &"ADMIN_TOKEN" && name != &"TURNSTILE_TEST_MODE");
    env.extend_from_slice(&secrets);
    let mut child = command(&dir, &binary, &env).spawn().unwrap();
    wait_until_up(&mut child, &port).await;
    let printed = stop(child).await;
    assert!(printed.contains("starting HashPass"), "{printed}");
    assert!(printed.contains("http://127.0.0.1:9/…"), "{printed}");
    for (name, value) in secrets {
        if name == "TURNSTILE_SITE_KEY" {
            continue; // public by design: the page shows it
        }
        assert!(!printed.contains(value), "{name} printed:\n{printed}");
    }
    for fragment in ["secret-path-token", "query-secret"] {
        assert!(
            !printed.contains(fragment),
            "{fragment} printed:\n{printed}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_originals_development_captcha_settings_still_start() {
    let (dir, binary) = lone_binary("test-keys");
    let port = free_port().to_string();
    let mut env = quick_game(&port);
    env.extend_from_slice(&[
        ("TURNSTILE_SITE_KEY", "1x00000000000000000000AA"),
        (
            "TURNSTILE_SECRET_KEY",
            "1x0000000000000000000000000000000AA",
        ),
    ]);
    let mut child = command(&dir, &binary, &env).spawn().unwrap();
    wait_until_up(&mut child, &port).await;
    let config: serde_json::Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/turnstile/config"))
        .header("user-agent", "Mozilla/5.0")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["testMode"], true, "{config}");
    let printed = stop(child).await;
    assert!(
        printed.contains("TURNSTILE_TEST_MODE is on"),
        "test mode should say that any token passes:\n{printed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The health check of the server on `port`: its `current_seed`, or why there is none.
async fn current_seed(port: &str) -> Result<String, String> {
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/health"))
        .header("user-agent", "Mozilla/5.0")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if answer.status() != 200 {
        return Err(format!("health answered {}", answer.status()));
    }
    let body: serde_json::Value = answer.json().await.map_err(|e| e.to_string())?;
    let seed = body["current_seed"].as_str().ok_or(format!("{body}"))?;
    Ok(seed.to_string())
}

#[tokio::test]
async fn a_rediss_url_reaches_a_tls_only_redis() {
    let (redis, certificates) = hashpass_tests::redis_server::RedisServer::start_tls();
    assert!(redis.url.starts_with("rediss://"), "{}", redis.url);
    let (dir, binary) = lone_binary("rediss");
    let port = free_port().to_string();
    let mut env = quick_game(&port);
    env.push(("HASHPASS_REDIS_URL", &redis.url));
    // The managed service's CA, as an operator would trust it; rustls reads the trust store
    // from here instead of the system's.
    let ca = certificates.ca.display().to_string();
    env.push(("SSL_CERT_FILE", &ca));
    let mut child = command(&dir, &binary, &env).spawn().unwrap();
    wait_until_up(&mut child, &port).await;
    // The puzzle lives in the TLS Redis now: a second instance on it sees the same seed.
    let second_port = free_port().to_string();
    let mut second_env = quick_game(&second_port);
    second_env.push(("HASHPASS_REDIS_URL", &redis.url));
    second_env.push(("SSL_CERT_FILE", &ca));
    let (second_dir, second_binary) = lone_binary("rediss-second");
    let mut second = command(&second_dir, &second_binary, &second_env)
        .spawn()
        .unwrap();
    wait_until_up(&mut second, &second_port).await;
    assert_eq!(
        current_seed(&port).await.unwrap(),
        current_seed(&second_port).await.unwrap()
    );
    let printed = stop(child).await;
    assert!(printed.contains("sharing state through Redis"), "{printed}");
    stop(second).await;

    // Without the CA the certificate is refused: the connection is verified, not just encrypted.
    let refused_port = free_port().to_string();
    let mut refused_env = quick_game(&refused_port);
    refused_env.push(("HASHPASS_REDIS_URL", &redis.url));
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        command(&dir, &binary, &refused_env).output(),
    )
    .await
    .expect("a refused TLS connection ends start-up")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.to_ascii_lowercase().contains("certificate"),
        "not refused for its certificate: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&second_dir);
}

/// Sends a health request on a new connection and keeps it open; what the server answered (its
/// first read), or `None` when the connection was closed without an answer.
fn hold_connection(port: &str) -> (std::net::TcpStream, Option<String>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ =
        stream.write_all(b"GET /api/health HTTP/1.1\r\nhost: x\r\nuser-agent: Mozilla/5.0\r\n\r\n");
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).unwrap_or(0);
    let text = String::from_utf8_lossy(&answer[..read]).into_owned();
    (stream, (read > 0).then_some(text))
}

/// At its open-files limit the server still answers: it raises its soft limit to the hard one at
/// start (and says so), answers a connection it has no descriptor for with a 503 JSON body, logs
/// the shortage once however many connections it refuses, and serves again once sockets close.
#[tokio::test]
async fn out_of_descriptors_new_connections_get_a_clean_503() {
    let (dir, binary) = lone_binary("descriptors");
    let port = free_port().to_string();
    let mut env = quick_game(&port);
    // Every connection comes from 127.0.0.1: no per-address share, so the descriptors run out.
    env.push(("HASHPASS_CONNECTIONS_PER_ADDRESS", "0"));
    let mut command = command(&dir, Path::new("prlimit"), &env);
    command.arg("--nofile=32:128").arg("--").arg(&binary);
    let mut child = command.spawn().unwrap();
    wait_until_up(&mut child, &port).await;
    let port_for_clients = port.clone();
    let (held, answers): (Vec<_>, Vec<_>) = tokio::task::spawn_blocking(move || {
        (0..200).map(|_| hold_connection(&port_for_clients)).unzip()
    })
    .await
    .unwrap();
    let served = answers
        .iter()
        .filter(|a| a.as_deref().is_some_and(|t| t.starts_with("HTTP/1.1 200")))
        .count();
    let refused: Vec<&String> = answers
        .iter()
        .flatten()
        .filter(|t| t.starts_with("HTTP/1.1 503"))
        .collect();
    assert!(
        served > 32,
        "the soft limit (32) was raised to the hard one (128): {served} served"
    );
    assert!(
        served < 128,
        "{served} connections held at a 128-descriptor limit"
    );
    assert!(
        refused.len() > 50,
        "every connection past the limit is answered: {} of {}",
        refused.len(),
        answers.len() - served
    );
    assert!(refused[0].contains(r#"{"detail":"Server at its connection limit, retry"}"#));
    drop(held);
    tokio::time::timeout(Duration::from_secs(5), wait_until_up(&mut child, &port))
        .await
        .expect("the server serves again once the sockets closed");
    let printed = stop(child).await;
    assert_eq!(
        printed.matches("out of file descriptors").count(),
        1,
        "the shortage is logged once:\n{printed}"
    );
    assert!(printed.contains("open-files limit raised"), "{printed}");
    assert!(printed.contains("open_files=128"), "{printed}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `HASHPASS_LOG_FORMAT=json`: every line on standard output and in the log file is one JSON
/// object, and the admin log viewer filters them by level.
#[tokio::test]
async fn json_logs_on_request() {
    let (dir, binary) = lone_binary("json-logs");
    let port = free_port().to_string();
    let mut env = quick_game(&port);
    env.push(("HASHPASS_LOG_FORMAT", "json"));
    let mut child = command(&dir, &binary, &env).spawn().unwrap();
    wait_until_up(&mut child, &port).await;
    let client = reqwest::Client::new();
    let logs: serde_json::Value = client
        .get(format!(
            "http://127.0.0.1:{port}/api/admin/applogs?level=INFO&search=starting"
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let printed = stop(child).await;
    let stdout_lines: Vec<&str> = printed.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!stdout_lines.is_empty(), "{printed}");
    for line in &stdout_lines {
        let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert!(
            record["level"].is_string() && record["fields"].is_object(),
            "{line}"
        );
    }
    let lines = logs["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 1, "{logs}");
    let record: serde_json::Value = serde_json::from_str(lines[0].as_str().unwrap()).unwrap();
    assert_eq!(record["level"], "INFO");
    assert_eq!(record["fields"]["message"], "starting HashPass");
    let _ = std::fs::remove_dir_all(&dir);
}
