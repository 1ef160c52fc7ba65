//! What an admin changes outlives a restart without Redis (docs/protocol.md#key-and-rotation):
//! `hashpass-server`, as a real process on its data directory, is rotated, has codes withdrawn
//! and widened, and is killed with SIGKILL and started again: the code won after the rotation
//! still verifies, the one from before it is refused as `key_rotated`, the withdrawn code stays
//! withdrawn and the widened one keeps its uses. A configured key the rotation retired stops
//! start-up naming `HASHPASS_HMAC_SECRET` (exit 2). An instance that keeps these in memory
//! refuses the changes with 409 unless its host opted in to volatile state.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hashpass::HashPass;
use hashpass_tests::cases::win_a_code;
use hashpass_tests::client::{Answer, Http, Reachable, client_ip};
use hashpass_tests::process::{ServerProcess, free_port, quick_game_env, server_command};
use hashpass_tests::server::{ADMIN_TOKEN as ADMIN, Serve, temp_dir};
use serde_json::json;

/// `hashpass-server`'s environment: a quick game, data and logs in `dir`, and `extra`.
fn server_env(dir: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = quick_game_env("0", ADMIN)
        .into_iter()
        .filter(|(k, _)| *k != "PORT" && *k != "HASHPASS_HOST")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (name, sub) in [("HASHPASS_DATA_DIR", "data"), ("HASHPASS_LOG_DIR", "log")] {
        env.push((name.into(), dir.join(sub).to_string_lossy().into_owned()));
    }
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// `POST /api/admin/invites/status` for `code`.
async fn status(admin: &Http, code: &str) -> Answer {
    admin
        .admin_post("/api/admin/invites/status", &json!({ "invite_code": code }))
        .await
}

/// The codes of one run: won before a rotation, after it, withdrawn, and allowed three uses.
struct Codes {
    before: String,
    after: String,
    withdrawn: String,
    widened: String,
}

/// Asserts where each code stands, as the admin sees it (`when` names the moment).
async fn check_codes(admin: &Http, codes: &Codes, when: &str) {
    let before = status(admin, &codes.before).await;
    assert_eq!(
        (before.status, before.json()["code"].as_str()),
        (410, Some("key_rotated")),
        "{when}: the code from before the rotation: {}",
        before.text
    );
    let after = status(admin, &codes.after).await;
    assert_eq!(after.status, 200, "{when}: {}", after.text);
    assert_eq!(after.json()["invite"]["state"], "unused", "{when}");
    let withdrawn = status(admin, &codes.withdrawn).await;
    assert_eq!(withdrawn.status, 200, "{when}: {}", withdrawn.text);
    assert_eq!(withdrawn.json()["invite"]["state"], "revoked", "{when}");
    let widened = status(admin, &codes.widened).await.json();
    assert_eq!(
        (
            &widened["invite"]["max_uses"],
            &widened["invite"]["remaining"]
        ),
        (&json!(3), &json!(3)),
        "{when}: {widened}"
    );
}

/// Wins a code, rotates the key (to `key`, or a random one), wins three more, withdraws one
/// and lets another sign up three accounts.
async fn rotate_and_withdraw(server: &impl Reachable, key: Option<&str>) -> Codes {
    let admin = Http::new(server, client_ip(1));
    let before = win_a_code(server, client_ip(2)).await;
    let body = key.map_or(json!({}), |key| json!({ "hmac_secret": key }));
    let rotated = admin.admin_post("/api/admin/regenerate-hmac", &body).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let codes = Codes {
        before,
        after: win_a_code(server, client_ip(3)).await,
        withdrawn: win_a_code(server, client_ip(4)).await,
        widened: win_a_code(server, client_ip(5)).await,
    };
    let revoke = json!({ "invite_code": codes.withdrawn });
    let answer = admin.admin_post("/api/admin/invites/revoke", &revoke).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let widen = json!({ "invite_code": codes.widened, "max_uses": 3 });
    let answer = admin
        .admin_post("/api/admin/invites/max-uses", &widen)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    check_codes(&admin, &codes, "before the restart").await;
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashpass_server_keeps_a_rotation_and_a_withdrawal_across_a_restart() {
    let dir = temp_dir("admin-state-restart");
    // No HASHPASS_HMAC_SECRET: the first key is random, as on a server set up in a hurry.
    let env = server_env(&dir, &[]);
    let mut server = ServerProcess::start(&dir, &pairs(&env)).await;
    let codes = rotate_and_withdraw(&server, None).await;

    server.restart().await;
    check_codes(
        &Http::new(&server, client_ip(1)),
        &codes,
        "after the restart",
    )
    .await;
    // The operator's offline check reads the same key ring, without --key.
    let later = server.run_tool(&["verify-code", &codes.after]).await;
    assert_eq!(
        later.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&later.stdout)
    );
    let earlier = server.run_tool(&["verify-code", &codes.before]).await;
    assert_eq!(earlier.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&earlier.stdout).contains("\"reason\":\"key_rotated\""));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let data = dir.join("data");
        for file in ["invite-keys.json", "redemptions.json"] {
            let mode = std::fs::metadata(data.join(file))
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file} is private");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_key_the_rotation_retired_stops_start_up() {
    let dir = temp_dir("retired-key");
    let first = "5e1f0c2b7a9d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";
    let second = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let env = server_env(&dir, &[("HASHPASS_HMAC_SECRET", first)]);
    let mut server = ServerProcess::start(&dir, &pairs(&env)).await;
    let codes = rotate_and_withdraw(&server, Some(second)).await;
    server.kill().await;

    // Started again with the key it rotated away from: refused, naming the variable.
    let port = free_port().to_string();
    let mut refused = pairs(&env);
    refused.extend([("PORT", port.as_str()), ("HASHPASS_HOST", "127.0.0.1")]);
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        server_command(&dir, refused).output(),
    )
    .await
    .expect("the refusal comes within 30 s")
    .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("HASHPASS_HMAC_SECRET") && stderr.contains("rotated away"),
        "{stderr}"
    );

    // With the current key it starts, and everything stands as the admin left it.
    let env = server_env(&dir, &[("HASHPASS_HMAC_SECRET", second)]);
    let server = ServerProcess::start(&dir, &pairs(&env)).await;
    check_codes(&Http::new(&server, client_ip(1)), &codes, "on the new key").await;
}

/// An instance served on 127.0.0.1 until dropped.
struct Served {
    addr: SocketAddr,
    hashpass: HashPass,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Reachable for Served {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// `hashpass` served by `serve`.
async fn serve(serve: Serve, hashpass: HashPass) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    tokio::spawn(serve(hashpass.clone(), listener, stopped));
    Served {
        addr,
        hashpass,
        _stop: stop,
    }
}

/// A host's instance with nothing on disk and no Redis.
fn in_memory(dir: &Path) -> hashpass::HashPassBuilder {
    HashPass::builder(hashpass_tests::test_config(dir))
}

async fn volatile_changes_are_refused(adapter: Serve) {
    let dir = temp_dir("volatile");
    let server = serve(adapter, in_memory(&dir).build().await.unwrap()).await;
    let admin = Http::new(&server, client_ip(1));
    let code = win_a_code(&server, client_ip(2)).await;
    let key_before = server.hashpass.invites().ring();

    let rotation = admin
        .admin_post("/api/admin/regenerate-hmac", &json!({}))
        .await;
    assert_eq!(rotation.status, 409, "{}", rotation.text);
    assert!(
        rotation.detail().contains("invite keys in memory only")
            && rotation.detail().contains("HashPassBuilder::on_disk"),
        "{}",
        rotation.text
    );
    let body = json!({ "invite_code": code });
    let withdrawal = admin.admin_post("/api/admin/invites/revoke", &body).await;
    assert_eq!(withdrawal.status, 409, "{}", withdrawal.text);
    assert!(
        withdrawal.detail().contains("redemptions in memory only"),
        "{}",
        withdrawal.text
    );
    let body = json!({ "invite_code": code, "max_uses": 2 });
    let widening = admin.admin_post("/api/admin/invites/max-uses", &body).await;
    assert_eq!(widening.status, 409, "{}", widening.text);
    // Nothing changed.
    assert_eq!(server.hashpass.invites().ring(), key_before);
    let unchanged = status(&admin, &code).await.json();
    assert_eq!(
        (
            &unchanged["invite"]["state"],
            &unchanged["invite"]["max_uses"]
        ),
        (&json!("unused"), &json!(1))
    );

    // A test or a demo that opted in gets them, in memory.
    let opted_in = in_memory(&dir)
        .volatile_admin_state()
        .build()
        .await
        .unwrap();
    let server = serve(adapter, opted_in).await;
    let admin = Http::new(&server, client_ip(1));
    let code = win_a_code(&server, client_ip(2)).await;
    let rotation = admin
        .admin_post("/api/admin/regenerate-hmac", &json!({}))
        .await;
    assert_eq!(rotation.status, 200, "{}", rotation.text);
    assert_eq!(status(&admin, &code).await.status, 410, "rotated away");
    let body = json!({ "invite_code": win_a_code(&server, client_ip(3)).await });
    let withdrawal = admin.admin_post("/api/admin/invites/revoke", &body).await;
    assert_eq!(withdrawal.status, 200, "{}", withdrawal.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volatile_changes_are_refused_in_axum() {
    volatile_changes_are_refused(hashpass_tests::adapters::axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volatile_changes_are_refused_in_poem() {
    volatile_changes_are_refused(hashpass_tests::adapters::poem).await;
}
