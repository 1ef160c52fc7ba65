//! The operator's sub-commands of the real `hashpass-server` binary, run as processes against
//! what a real server left behind: `export-audit` writes exactly the records the admin log
//! lists (from the audit files, and from the Redis stream of a shared deployment) without
//! touching the server's state, `verify-code` checks the codes it issued offline, and the
//! binary still serves as before, with a usage error for anything it does not know.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime};

use hashpass::redis::RedisBackend;
use hashpass_tests::cases::win_a_code;
use hashpass_tests::client::{Http, client_ip};
use hashpass_tests::process::{
    build_server_binary, free_port, quick_game_env, server_command, stop, wait_until_answers,
};
use hashpass_tests::redis_server::{RedisServer, unique_prefix};
use hashpass_tests::server::{TestServer, temp_dir, test_config};
use serde_json::Value;
use tokio::process::Command;

/// The invite key of the servers under test.
const SECRET: &str = "5e1f0c2b7a9d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";

/// The binary with `args` in `dir`, with exactly `env` (plus PATH).
fn binary(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = server_command(dir, env.iter().copied());
    command.args(args);
    command
}

/// Runs a sub-command to its end (30 s at most).
async fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    tokio::time::timeout(Duration::from_secs(30), binary(dir, args, env).output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} did not end within 30 s"))
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit status, showing what the binary printed otherwise.
fn assert_status(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}\nstdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// Every record `GET /api/admin/logs` lists, over every file, oldest first, as stored: without
/// the `redemption` state the endpoint adds to each record.
async fn admin_log_records(admin: &Http) -> Vec<Value> {
    let first = admin.admin_get("/api/admin/logs").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let files: Vec<String> = first.json()["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("a name").to_string())
        .collect();
    let mut records = Vec::new();
    // Files are listed current first, then archives newest first; records newest first.
    for file in files.iter().rev() {
        let page = admin
            .admin_get(&format!("/api/admin/logs?file={file}&per_page=200"))
            .await
            .json();
        assert_eq!(page["pages"], 1, "{page}");
        let mut newest_first: Vec<Value> = page["records"].as_array().expect("records").clone();
        newest_first.reverse();
        for mut record in newest_first {
            record
                .as_object_mut()
                .expect("a record")
                .remove("redemption");
            records.push(record);
        }
    }
    records
}

/// The exported JSONL's records, each line checked to be compact JSON.
fn jsonl_records(text: &str) -> Vec<Value> {
    assert!(text.is_empty() || text.ends_with('\n'), "{text:?}");
    text.lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("each line is JSON");
            assert_eq!(line, record.to_string(), "one compact record per line");
            record
        })
        .collect()
}

/// Each entry of `dir` with its size and modification time.
fn listing(dir: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    std::fs::read_dir(dir)
        .expect("a directory")
        .map(|entry| {
            let entry = entry.expect("an entry");
            let meta = entry.metadata().expect("metadata");
            (
                entry.file_name().to_string_lossy().into_owned(),
                (meta.len(), meta.modified().expect("mtime")),
            )
        })
        .collect()
}

/// The current seed, from the admin status.
async fn current_seed(admin: &Http) -> Value {
    admin.admin_get("/api/admin/status").await.json()["current_seed"].clone()
}

/// `code` with one character of its body changed (in the id, so it stays well-formed).
fn tampered(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    let at = 16; // HASHPASS-XXXX-XX|X…: inside the id bytes
    chars[at] = if chars[at] == '7' { '8' } else { '7' };
    chars.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_audit_writes_the_files_records_and_verify_code_checks_the_codes() {
    build_server_binary().await;
    let dir = temp_dir("operator-files");
    let config = test_config(&dir)
        .with_audit_rotation(2usize)
        .with_hmac_secret(Some(SECRET.into()));
    let server = TestServer::start(hashpass_tests::adapters::axum, config, dir.clone()).await;
    assert!(!server.shares_state());
    let admin = Http::new(&server, client_ip(50));
    let mut codes = Vec::new();
    for i in 0..3 {
        codes.push(win_a_code(&server, client_ip(1 + i)).await);
    }
    let expected = admin_log_records(&admin).await;
    let listed: Vec<&str> = expected
        .iter()
        .map(|r| r["invite_code"].as_str().expect("a code"))
        .collect();
    assert_eq!(
        listed, codes,
        "three wins, oldest first, over an archive and the current file"
    );
    let work = temp_dir("operator-files-work");
    check_file_export(&admin, &dir.join("data"), &work, &expected).await;
    check_verify_code(&work, &codes).await;
    check_expired_code(&work, &codes[0]).await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&work);
}

/// `export-audit` of the audit files in `data`, run in `work`: exactly the `expected` records,
/// to a file (atomically) or to standard output, leaving the server's state alone; a missing
/// data directory is an error and is not created.
async fn check_file_export(admin: &Http, data: &Path, work: &Path, expected: &[Value]) {
    assert!(data.join("verify.jsonl").is_file());
    let data_before = listing(data);
    let seed_before = current_seed(admin).await;
    let out = work.join("audit.jsonl");
    let data_dir = data.to_string_lossy().into_owned();
    let env = [("HASHPASS_DATA_DIR", data_dir.as_str())];

    let exported = run(
        work,
        &["export-audit", "--out", &out.to_string_lossy()],
        &env,
    )
    .await;
    assert_status(&exported, 0, "export-audit --out");
    assert_eq!(stdout(&exported), "", "the records go to the file");
    let summary = stderr(&exported);
    assert_eq!(summary.lines().count(), 1, "{summary}");
    assert!(
        summary.contains("exported 3 audit records") && summary.contains("verify.jsonl"),
        "{summary}"
    );
    let text = std::fs::read_to_string(&out).expect("the export");
    assert_eq!(jsonl_records(&text), expected);
    assert_eq!(
        std::fs::read_dir(work).unwrap().count(),
        1,
        "no temporary file left"
    );

    let to_stdout = run(work, &["export-audit"], &env).await;
    assert_status(&to_stdout, 0, "export-audit to stdout");
    assert_eq!(stdout(&to_stdout), text);
    assert!(stderr(&to_stdout).contains("to standard output"));

    // Reading left the server's state alone: its files, its puzzle, its log.
    assert_eq!(listing(data), data_before);
    assert_eq!(current_seed(admin).await, seed_before);
    assert_eq!(admin_log_records(admin).await, expected);

    // A data directory that does not exist is an error, and is not created.
    let missing = work.join("no-such-dir");
    let missing_text = missing.to_string_lossy().into_owned();
    let refused = run(
        work,
        &["export-audit"],
        &[("HASHPASS_DATA_DIR", missing_text.as_str())],
    )
    .await;
    assert_status(&refused, 2, "export-audit of a missing directory");
    assert!(stderr(&refused).contains("HASHPASS_DATA_DIR"));
    assert!(!missing.exists());
}

/// `verify-code` of the won `codes`: valid under the server's key (from HASHPASS_HMAC_SECRET or
/// `--key`), invalid when tampered with or under another key; no key, or one that is not hex,
/// is an error.
async fn check_verify_code(work: &Path, codes: &[String]) {
    let with_secret = [("HASHPASS_HMAC_SECRET", SECRET)];
    for code in codes {
        let checked = run(work, &["verify-code", code], &with_secret).await;
        assert_status(&checked, 0, "verify-code of a won code");
        let printed = stdout(&checked);
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines.len(), 1, "one JSON line");
        let verdict: Value = serde_json::from_str(lines[0]).expect("JSON");
        assert_eq!(verdict["valid"], true, "{verdict}");
        assert_eq!(
            verdict["code_id"].as_str(),
            hashpass::invite::code_id(code).as_deref()
        );
        assert!(verdict["issued_at"].as_u64().is_some(), "{verdict}");
        assert_eq!(verdict["expires_at"], Value::Null, "no lifetime set");
    }
    let by_flag = run(work, &["verify-code", &codes[0], "--key", SECRET], &[]).await;
    assert_status(&by_flag, 0, "verify-code --key");

    let forged = tampered(&codes[0]);
    let rejected = run(work, &["verify-code", &forged], &with_secret).await;
    assert_status(&rejected, 1, "verify-code of a tampered code");
    let verdict: Value = serde_json::from_str(stdout(&rejected).trim()).expect("JSON");
    assert_eq!(
        (&verdict["valid"], &verdict["reason"]),
        (&Value::Bool(false), &Value::from("bad_signature")),
        "{verdict}"
    );
    assert!(verdict["detail"].as_str().is_some_and(|d| !d.is_empty()));
    let other_key = "00112233445566778899aabbccddeeff";
    let wrong_key = run(work, &["verify-code", &codes[0], "--key", other_key], &[]).await;
    assert_status(&wrong_key, 1, "verify-code under another key");

    // No key at all: nothing can be verified (a random per-start key signs nothing we know).
    let keyless = run(work, &["verify-code", &codes[0]], &[]).await;
    assert_status(&keyless, 2, "verify-code without a key");
    assert_eq!(stdout(&keyless), "");
    let message = stderr(&keyless);
    assert!(
        message.contains("HASHPASS_HMAC_SECRET") && message.contains("--key"),
        "{message}"
    );
    let bad_key = run(work, &["verify-code", &codes[0], "--key", "not-hex"], &[]).await;
    assert_status(&bad_key, 2, "verify-code with a key that is not hex");
}

/// A later lifetime expires `code`: still invalid, with the dates shown.
async fn check_expired_code(work: &Path, code: &str) {
    let env = [
        ("HASHPASS_HMAC_SECRET", SECRET),
        ("HASHPASS_INVITE_TTL", "1"),
    ];
    let mut expiring = run(work, &["verify-code", code], &env).await;
    // Issue times are whole seconds of the server's clock: at most 2 s later the code is past
    // a 1 s lifetime.
    if expiring.status.code() == Some(0) {
        tokio::time::sleep(Duration::from_millis(2100)).await;
        expiring = run(work, &["verify-code", code], &env).await;
    }
    assert_status(&expiring, 1, "verify-code of an expired code");
    let verdict: Value = serde_json::from_str(stdout(&expiring).trim()).expect("JSON");
    assert_eq!(verdict["reason"], "expired", "{verdict}");
    assert!(verdict["expires_at"].as_u64().is_some(), "{verdict}");
}

/// Every key of `prefix` in the Redis on `port`, sorted.
async fn redis_keys(port: u16, prefix: &str) -> Vec<String> {
    let output = Command::new("redis-cli")
        .args([
            "-p",
            &port.to_string(),
            "--raw",
            "KEYS",
            &format!("{prefix}*"),
        ])
        .output()
        .await
        .expect("redis-cli runs (it comes with redis-server)");
    assert!(output.status.success());
    let mut keys: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    keys.sort();
    keys
}

/// `export-audit` with `env` naming a Redis, run in `work`: the `expected` records of the stream
/// under `prefix`, to standard output and to a file given as `--out=FILE`.
async fn check_redis_export(work: &Path, env: &[(&str, &str)], prefix: &str, expected: &[Value]) {
    let exported = run(work, &["export-audit"], env).await;
    assert_status(&exported, 0, "export-audit from Redis");
    let summary = stderr(&exported);
    assert!(
        summary.contains("exported 2 audit records") && summary.contains("Redis"),
        "{summary}"
    );
    assert!(summary.contains(&format!("{prefix}audit")), "{summary}");
    let text = stdout(&exported);
    assert_eq!(jsonl_records(&text), expected);

    let out = work.join("export").with_extension("jsonl");
    let to_file = run(
        work,
        &["export-audit", &format!("--out={}", out.display())],
        env,
    )
    .await;
    assert_status(&to_file, 0, "export-audit --out= from Redis");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
}

/// A server in `dir` sharing its state through `redis` under `prefix`, signing with [`SECRET`].
async fn shared_server(redis: &RedisServer, prefix: &str, dir: &Path) -> TestServer {
    let backend = RedisBackend::connect(&redis.url, prefix)
        .await
        .expect("redis reachable");
    let config = test_config(dir).with_hmac_secret(Some(SECRET.into()));
    let serve = hashpass_tests::adapters::axum;
    let server = TestServer::start_shared(serve, config, dir.to_path_buf(), Some(backend)).await;
    assert!(server.shares_state());
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_audit_reads_the_redis_stream_of_a_shared_deployment() {
    build_server_binary().await;
    let redis = RedisServer::start();
    let prefix = unique_prefix("operator");
    let dir = temp_dir("operator-redis");
    let server = shared_server(&redis, &prefix, &dir).await;
    let admin = Http::new(&server, client_ip(50));
    let mut codes = Vec::new();
    for i in 0..2 {
        codes.push(win_a_code(&server, client_ip(1 + i)).await);
    }
    let expected = admin_log_records(&admin).await;
    assert_eq!(expected.len(), 2);
    assert_eq!(expected[1]["invite_code"], codes[1].as_str());
    let keys_before = redis_keys(redis.port, &prefix).await;
    assert!(
        keys_before.contains(&format!("{prefix}audit")),
        "{keys_before:?}"
    );
    let seed_before = current_seed(&admin).await;

    // The data directory holds a decoy file: with Redis configured, the stream is exported.
    let work = temp_dir("operator-redis-work");
    std::fs::write(
        work.join("verify.jsonl"),
        "{\"invite_code\":\"HASHPASS-DECOY\"}\n",
    )
    .unwrap();
    let work_text = work.to_string_lossy().into_owned();
    let env = [
        ("HASHPASS_REDIS_URL", redis.url.as_str()),
        ("HASHPASS_REDIS_PREFIX", prefix.as_str()),
        ("HASHPASS_DATA_DIR", work_text.as_str()),
    ];
    check_redis_export(&work, &env, &prefix, &expected).await;

    // Nothing was written to Redis, nor the puzzle reset.
    assert_eq!(redis_keys(redis.port, &prefix).await, keys_before);
    assert_eq!(current_seed(&admin).await, seed_before);

    // The codes of the deployment verify with its key.
    let checked = run(
        &work,
        &["verify-code", &codes[0]],
        &[("HASHPASS_HMAC_SECRET", SECRET)],
    )
    .await;
    assert_status(&checked, 0, "verify-code of a code won on Redis");

    // An unreachable Redis is an error, not an empty export.
    redis.stop();
    let unreachable = run(&work, &["export-audit"], &env).await;
    assert_status(&unreachable, 2, "export-audit with Redis down");
    assert_eq!(stdout(&unreachable), "");

    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test]
async fn help_and_usage_errors() {
    build_server_binary().await;
    let work = temp_dir("operator-usage");
    for help in [&["help"][..], &["--help"], &["-h"]] {
        let output = run(&work, help, &[]).await;
        assert_status(&output, 0, "help");
        let text = stdout(&output);
        for command in ["serve", "export-audit", "verify-code", "outbox", "help"] {
            assert!(text.contains(&format!("  {command} ")), "{help:?}: {text}");
        }
    }
    let one = run(&work, &["help", "export-audit"], &[]).await;
    assert_status(&one, 0, "help export-audit");
    assert!(stdout(&one).contains("export-audit [--out FILE]"));
    let own = run(&work, &["verify-code", "--help"], &[]).await;
    assert_status(&own, 0, "verify-code --help");
    assert!(stdout(&own).contains("verify-code CODE [--key HEX]"));

    for (args, says) in [
        (&["frobnicate"][..], "unknown sub-command \"frobnicate\""),
        (&["help", "frobnicate"], "unknown sub-command"),
        (&["--frobnicate"], "unknown option \"--frobnicate\""),
        (&["serve", "--framework"], "--framework needs a value"),
        (&["--framework", "rocket"], "unknown framework"),
        (&["export-audit", "--out"], "--out needs a value"),
        (&["export-audit", "extra"], "unexpected argument"),
        (&["verify-code"], "missing CODE"),
        (&["verify-code", "A", "B"], "unexpected argument"),
        (&["verify-code", "A", "--keys", "00"], "unknown option"),
    ] {
        let output = run(&work, args, &[]).await;
        assert_status(&output, 2, &format!("{args:?}"));
        assert_eq!(stdout(&output), "", "{args:?}");
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("usage: hashpass-server"),
            "{args:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// The binary still serves with no sub-command (`--framework poem`, as before) and with
/// `serve`.
#[tokio::test]
async fn serving_is_unchanged() {
    build_server_binary().await;
    let work = temp_dir("operator-serve");
    for args in [
        &["--framework", "poem"][..],
        &["--framework=axum"],
        &["serve", "--framework", "poem"],
        &[],
    ] {
        let port = free_port().to_string();
        let env = quick_game_env(&port, "operator-test-admin-token-0123456789");
        let mut child = binary(&work, args, &env).spawn().expect("the binary runs");
        wait_until_answers(&mut child, &format!("http://127.0.0.1:{port}/api/health")).await;
        let printed = stop(child).await;
        assert!(
            printed.contains("HashPass listening"),
            "{args:?}: {printed}"
        );
        assert_eq!(
            printed.contains("HashPass listening (poem)"),
            args.contains(&"poem"),
            "{args:?}: {printed}"
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// `healthcheck` asks the running server's readiness probe (the address from `HASHPASS_HOST` and
/// `PORT`, the loopback one when it listens everywhere): exit 0 while it serves, 1 with the
/// reason when nothing answers; an orchestrator's health check needs no curl.
#[tokio::test]
async fn healthcheck_exits_0_while_the_server_is_ready_and_1_when_it_is_not() {
    build_server_binary().await;
    let dir = temp_dir("healthcheck");
    let port = free_port().to_string();
    let mut env = quick_game_env(&port, "healthcheck-admin-token-0123456789");
    env.retain(|(name, _)| *name != "HASHPASS_HOST");
    env.push(("HASHPASS_HOST", "0.0.0.0"));
    let mut server = binary(&dir, &[], &env).spawn().unwrap();
    wait_until_answers(&mut server, &format!("http://127.0.0.1:{port}/api/health")).await;

    let ready = run(&dir, &["healthcheck"], &env).await;
    assert_status(&ready, 0, "a serving instance is ready");
    assert!(stdout(&ready).contains("/api/health/ready answered 200"));
    let url = format!("http://127.0.0.1:{port}/api/health/live");
    assert_status(
        &run(&dir, &["healthcheck", "--url", &url], &env).await,
        0,
        "the liveness probe by URL",
    );
    let _ = stop(server).await;

    let down = run(&dir, &["healthcheck"], &env).await;
    assert_status(&down, 1, "nothing listens");
    assert!(
        stderr(&down).contains("cannot connect"),
        "{}",
        stderr(&down)
    );
    let usage = run(&dir, &["healthcheck", "--url", "https://x/"], &env).await;
    assert_status(&usage, 1, "only http:// is probed");
}
