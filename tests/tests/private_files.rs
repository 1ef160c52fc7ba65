//! What `hashpass-server` keeps on disk holds invite codes and client addresses, so it is private
//! (docs/protocol.md#files): a real server process started over the files an older
//! version left world-readable (the audit log, the blacklist, the logs, an outbox delivery named
//! by its invite code) tightens them to 0600 in 0700 directories, renames the delivery by the
//! code's id, and writes everything new privately — the audit record and the pending webhook
//! delivery of a code won now, today's log file.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use hashpass::invite::{InviteCodes, InviteKey};
use hashpass::outbox::{Delivery, file_name};
use hashpass::private_files::{DIR_MODE, FILE_MODE, mode_of};
use hashpass::webhook::WebhookEvent;
use hashpass_tests::client::{Player, client_ip};
use hashpass_tests::process::{ServerProcess, quick_game_env};
use hashpass_tests::server::temp_dir;
use hashpass_tests::webhook_receiver::WebhookReceiver;

const ADMIN: &str = "private-files-admin-token-0123456789";

fn write_open(path: &Path, contents: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::set_permissions(
        path.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    mode_of(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_on_disk_is_private_and_outbox_files_do_not_name_codes() {
    let receiver = WebhookReceiver::start().await;
    receiver.answer(503);
    let dir = temp_dir("private-files");
    let (data, logs) = (dir.join("data"), dir.join("log"));
    let pending = data.join("webhook-outbox/pending");
    // What an older version left: world-readable files, a delivery named by its code.
    let old_code = InviteCodes::new(InviteKey::random()).issue().code;
    let old_delivery = Delivery::new(
        WebhookEvent {
            visitor_id: "an-earlier-winner".into(),
            invite_code: old_code.clone(),
        },
        // Recent, so that its failed attempts do not give it up.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64(),
    );
    write_open(
        &pending.join(format!("{old_code}.json")),
        &serde_json::to_vec(&old_delivery).unwrap(),
    );
    write_open(&data.join("blacklist.json"), b"[\"192.0.2.9\"]");
    write_open(&data.join("verify.jsonl"), b"");
    write_open(&logs.join("hashpass.log.2020-01-01"), b"an old line\n");

    let (data_text, logs_text) = (data.to_string_lossy(), logs.to_string_lossy());
    let url = receiver.url();
    let mut env = quick_game_env("0", ADMIN);
    env.retain(|(k, _)| *k != "PORT" && *k != "HASHPASS_HOST");
    env.extend([
        ("HASHPASS_DATA_DIR", &*data_text),
        ("HASHPASS_LOG_DIR", &*logs_text),
        ("WEBHOOK_URL", url.as_str()),
    ]);
    let server = ServerProcess::start(&dir, &env).await;
    let player = Player::connect(&server, client_ip(1)).await;
    let puzzle = player.puzzle().await.json();
    let won = player.verify(&player.solution(&puzzle).await).await;
    assert_eq!(won.status, 200, "{}", won.text);
    let code = won.json()["invite_code"].as_str().unwrap().to_string();
    assert!(
        receiver
            .wait_until(Duration::from_secs(10), |d| !d.is_empty())
            .await,
        "the delivery was attempted (and refused: it stays pending)"
    );

    let mut expected = vec![file_name(&code), file_name(&old_code)];
    expected.sort();
    let deliveries: Vec<String> = names(&pending)
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(deliveries, expected);
    for name in names(&pending) {
        assert!(
            !name.contains("HASHPASS"),
            "{name}: an outbox file named by a code"
        );
        assert_eq!(mode(&pending.join(&name)), FILE_MODE, "{name}");
    }
    for owned in [&pending, &data.join("webhook-outbox/failed"), &logs] {
        assert_eq!(mode(owned), DIR_MODE, "{}", owned.display());
    }
    let audit = std::fs::read_to_string(data.join("verify.jsonl")).unwrap();
    assert!(audit.contains(&code), "the win is on record");
    for file in [data.join("verify.jsonl"), data.join("blacklist.json")] {
        assert_eq!(mode(&file), FILE_MODE, "{}", file.display());
    }
    let log_files: Vec<String> = names(&logs)
        .into_iter()
        .filter(|n| n.starts_with("hashpass.log"))
        .collect();
    assert!(
        log_files.len() >= 2,
        "today's log and the old one: {log_files:?}"
    );
    for name in log_files {
        assert_eq!(mode(&logs.join(&name)), FILE_MODE, "{name}");
    }
    drop(player);
    server.terminate(Duration::from_secs(20)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
