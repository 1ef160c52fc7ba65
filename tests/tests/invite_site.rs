//! The example invite-only site (`hashpass_examples::site`) over real HTTP, in axum and in poem,
//! with its accounts in SQLite or PostgreSQL and its redemptions in SQL or Redis: win a code in
//! the race, sign up with it, log in, call `/me`; a code signs up one account, even when a hundred
//! sign-ups race for it; every bad code is refused with its own error; the admin sees, withdraws
//! and widens codes; tokens are refused for a wrong audience, issuer or key and the second they
//! expire. Under abuse: logins are limited per client address (IPv6 by /64) with a 429 and
//! `Retry-After`; password hashing is a bounded queue whose overflow is a 503 with
//! `Retry-After`, shared fairly by address, so one-shot logins from 300 addresses do not turn a
//! visitor's login away; sign-ups racing for one code are refused 409 before any hashing (30 of
//! them on a one-hash queue: one account, 29 409s, no 503); a sign-up activates only the row it
//! wrote, even when another sign-up took its name over midway, and gives its code back when it
//! cannot finish; and the forms are refused with a 415 unless sent as JSON.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use hashpass::invite::{InviteCodes, InviteKey};
use hashpass::redemption::{CodeStatus, RedeemOutcome, RedemptionStore};
use hashpass::{Config, HashPass, StoreError};
use hashpass_examples::site::{Site, SiteConfig, with_axum, with_poem};
use hashpass_tests::adapters;
use hashpass_tests::cases::win_a_code;
use hashpass_tests::client::{Answer, client_ip};
use hashpass_tests::server::temp_dir;
use hashpass_tests::{Http, Serve, TestServer, test_config};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const SECRET: &str = "signing-secret-of-the-test-site-0123456789";
const ISSUER: &str = "hashpass-invite-site";
const AUDIENCE: &str = "hashpass-invite-site:accounts";
const PASSWORD: &str = "correct horse battery staple";

/// The site's settings: the test secret and `database_url` (the limits' defaults otherwise).
fn site_config(database_url: &str) -> SiteConfig {
    let mut config = SiteConfig::new(SECRET).expect("secret long enough");
    config.database_url = database_url.to_string();
    config
}

/// Each test server's site settings, by the server's log directory (the serve functions get
/// only the HashPass instance).
static SITE_CONFIGS: std::sync::Mutex<Vec<(std::path::PathBuf, SiteConfig)>> =
    std::sync::Mutex::new(Vec::new());

fn registered_config(hashpass: &HashPass) -> SiteConfig {
    let configs = SITE_CONFIGS.lock().unwrap();
    let (_, config) = configs
        .iter()
        .find(|(dir, _)| *dir == hashpass.config().admin.log_dir)
        .expect("start_site registered the site's settings");
    config.clone()
}

fn database_url(hashpass: &HashPass) -> String {
    registered_config(hashpass).database_url
}

/// The site around `hashpass`, with the settings `start_site` registered.
async fn open_site(hashpass: &HashPass) -> Site {
    Site::open(registered_config(hashpass), hashpass)
        .await
        .expect("site opens")
}

fn axum_site(
    hashpass: HashPass,
    listener: TcpListener,
    stop: oneshot::Receiver<()>,
) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let site = open_site(&hashpass).await;
        let app = with_axum::app(site, hashpass.clone());
        adapters::serve_axum(app, &hashpass, listener, stop).await;
    })
}

fn poem_site(
    hashpass: HashPass,
    listener: TcpListener,
    stop: oneshot::Receiver<()>,
) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let site = open_site(&hashpass).await;
        let app = with_poem::app(site, hashpass.clone());
        adapters::serve_poem(app, &hashpass, listener, stop).await;
    })
}

/// A test server of the site: accounts in `database_url` (default: a SQLite file in its data
/// directory), HashPass built with `redemptions` (default: the site's SQL store in that
/// database, as the site's binaries build it).
async fn start_site(
    serve: Serve,
    database_url: Option<&str>,
    redemptions: Option<Arc<dyn RedemptionStore>>,
) -> TestServer {
    start_site_with(serve, database_url, redemptions, |config| config, |_| {}).await
}

/// [`start_site`] with HashPass's settings passed through `hashpass` and the site's through
/// `site`.
async fn start_site_with(
    serve: Serve,
    database_url: Option<&str>,
    redemptions: Option<Arc<dyn RedemptionStore>>,
    hashpass: impl FnOnce(Config) -> Config,
    site: impl FnOnce(&mut SiteConfig),
) -> TestServer {
    start_site_at(
        serve,
        temp_dir("invite-site"),
        database_url,
        redemptions,
        hashpass,
        site,
    )
    .await
}

/// [`start_site_with`] in `dir` (the site's data and, by default, database: a server started
/// again on the same `dir` is the same site restarted).
async fn start_site_at(
    serve: Serve,
    dir: std::path::PathBuf,
    database_url: Option<&str>,
    redemptions: Option<Arc<dyn RedemptionStore>>,
    hashpass: impl FnOnce(Config) -> Config,
    site: impl FnOnce(&mut SiteConfig),
) -> TestServer {
    let config = hashpass(test_config(&dir));
    let url = match database_url {
        Some(url) => url.to_string(),
        None => {
            format!("sqlite://{}?mode=rwc", dir.join("site.db").display())
        }
    };
    let store = match redemptions {
        Some(store) => store,
        None => Site::redemption_store(&site_config(&url)).await.unwrap(),
    };
    let mut site_settings = site_config(&url);
    site(&mut site_settings);
    SITE_CONFIGS
        .lock()
        .unwrap()
        .push((config.admin.log_dir.clone(), site_settings));
    TestServer::start_custom(serve, config, dir, None, move |builder| {
        builder.redemption_store(store)
    })
    .await
}

async fn sign_up(http: &Http, username: &str, invite_code: &str) -> Answer {
    sign_up_as(http, username, PASSWORD, invite_code).await
}

async fn sign_up_as(http: &Http, username: &str, password: &str, invite_code: &str) -> Answer {
    let form = json!({ "username": username, "password": password, "invite_code": invite_code });
    http.post("/signup", &form, None).await
}

async fn log_in(http: &Http, username: &str, password: &str) -> Answer {
    let form = json!({ "username": username, "password": password });
    http.post("/login", &form, None).await
}

async fn me(http: &Http, token: Option<&str>) -> Answer {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    http.send("GET", "/me", &headers, Vec::new()).await
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token signed with `secret` carrying `claims`.
fn forge(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// Asserts a refusal's status and code, returning its message.
fn refused(answer: &Answer, status: u16, code: &str) -> String {
    assert_eq!(
        (answer.status, answer.json()["code"].as_str()),
        (status, Some(code)),
        "{}",
        answer.text
    );
    answer.detail()
}

async fn check_site(server: TestServer) {
    let http = Http::new(&server, client_ip(1));

    // The sign-up page and its script are served.
    let page = http.get("/join").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("id=\"signup\""), "{}", page.text);
    assert_eq!(http.get("/join.js").await.status, 200);

    // Win a code in the race.
    let code = win_a_code(&server, client_ip(1)).await;
    let invite_id = server.hashpass.invites().verify(&code).unwrap().id;

    // Sign up with it; the same code signs up nobody else.
    let alice = sign_up(&http, "Alice", &code).await;
    assert_eq!(alice.status, 201, "{}", alice.text);
    assert_eq!(alice.json()["username"], "alice");
    assert_eq!(alice.json()["invite_id"], invite_id.as_str());
    let again = sign_up(&http, "bob", &code).await;
    assert!(refused(&again, 409, "already_used").contains("already been used"));
    let taken = sign_up(&http, "alice", &server.hashpass.invites().issue().code).await;
    assert!(refused(&taken, 409, "username_taken").contains("choose another"));

    // Log in and see the account.
    let wrong = log_in(&http, "alice", "not the password").await;
    let unknown = log_in(&http, "nobody", PASSWORD).await;
    assert_eq!(
        refused(&wrong, 401, "bad_credentials"),
        refused(&unknown, 401, "bad_credentials")
    );
    let login = log_in(&http, "alice", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.json()["token_type"], "Bearer");
    assert_eq!(login.json()["expires_in"], 3600);
    let token = login.json()["access_token"].as_str().unwrap().to_string();
    let account = me(&http, Some(&token)).await;
    assert_eq!(account.status, 200, "{}", account.text);
    assert_eq!(account.json()["username"], "alice");
    assert_eq!(account.json()["invite_id"], invite_id.as_str());

    // Tokens: none, forged, foreign, expired by a second (no leeway) are all refused.
    let none = me(&http, None).await;
    assert!(refused(&none, 401, "bad_token").contains("Log in first"));
    assert_eq!(
        none.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let claims = |iss: &str, aud: &str, exp: u64| json!({ "sub": "alice", "iss": iss, "aud": aud, "iat": now() - 10, "exp": exp });
    // A token made here with the site's secret and claims is accepted, so each refusal below
    // is for the one thing changed.
    let made_here = forge(&claims(ISSUER, AUDIENCE, now() + 600), SECRET);
    assert_eq!(me(&http, Some(&made_here)).await.status, 200);
    let other_audience = forge(&claims(ISSUER, "another-service", now() + 600), SECRET);
    let answer = me(&http, Some(&other_audience)).await;
    assert!(refused(&answer, 401, "bad_token").contains("another service"));
    let other_issuer = forge(&claims("someone-else", AUDIENCE, now() + 600), SECRET);
    let answer = me(&http, Some(&other_issuer)).await;
    assert!(refused(&answer, 401, "bad_token").contains("issued by someone else"));
    let expired = forge(&claims(ISSUER, AUDIENCE, now() - 1), SECRET);
    let answer = me(&http, Some(&expired)).await;
    assert!(refused(&answer, 401, "bad_token").contains("expired"));
    let other_key = forge(
        &claims(ISSUER, AUDIENCE, now() + 600),
        "some-other-secret-0123456789abcdef0123",
    );
    let answer = me(&http, Some(&other_key)).await;
    assert!(refused(&answer, 401, "bad_token").contains("signature"));
    let no_expiry = forge(
        &json!({ "sub": "alice", "iss": ISSUER, "aud": AUDIENCE }),
        SECRET,
    );
    refused(&me(&http, Some(&no_expiry)).await, 401, "bad_token");
    refused(&me(&http, Some("not.a.token")).await, 401, "bad_token");

    // The admin sees who redeemed which code, in the invite list and in the invite log.
    let invites = http.admin_get("/api/admin/invites").await;
    assert_eq!(invites.status, 200, "{}", invites.text);
    let listed = &invites.json()["codes"][0];
    assert_eq!(
        (listed["code_id"].as_str(), listed["state"].as_str()),
        (Some(invite_id.as_str()), Some("used"))
    );
    assert_eq!(listed["uses"][0]["user_id"], "alice");
    let filtered = http
        .admin_get("/api/admin/invites?state=revoked&per_page=1")
        .await
        .json();
    assert_eq!(
        (filtered["total"].as_u64(), filtered["pages"].as_u64()),
        (Some(0), Some(1))
    );
    let answer = http.admin_get("/api/admin/invites?state=lost").await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    let logs = http.admin_get("/api/admin/logs").await.json();
    let record = &logs["records"][0];
    assert_eq!(record["invite_code"], code.as_str());
    assert_eq!(record["redemption"]["state"], "used");
    assert_eq!(record["redemption"]["uses"][0]["user_id"], "alice");
    assert!(record["redemption"]["uses"][0]["used_at"].as_f64().unwrap() > 0.0);

    // The admin withdraws a code: it signs up nobody.
    let withdrawn = server.hashpass.invites().issue().code;
    let revoke = json!({ "invite_code": withdrawn });
    let answer = http.admin_post("/api/admin/invites/revoke", &revoke).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["invite"]["state"], "revoked");
    let again = http.admin_post("/api/admin/invites/revoke", &revoke).await;
    assert_eq!(again.status, 409, "{}", again.text);
    let answer = sign_up(&http, "bob", &withdrawn).await;
    assert!(refused(&answer, 410, "revoked").contains("withdrawn"));
    let revoked = http
        .admin_get("/api/admin/invites?state=revoked")
        .await
        .json();
    assert_eq!(revoked["total"], 1);
    assert_eq!(revoked["codes"][0]["state"], "revoked");

    // The admin lets a code sign up two accounts: two get in, the third is refused.
    let shared = server.hashpass.invites().issue().code;
    let widen = json!({ "invite_code": shared, "max_uses": 2 });
    let answer = http.admin_post("/api/admin/invites/max-uses", &widen).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["invite"]["remaining"], 2);
    assert_eq!(sign_up(&http, "carol", &shared).await.status, 201);
    assert_eq!(sign_up(&http, "dave", &shared).await.status, 201);
    refused(&sign_up(&http, "erin", &shared).await, 409, "already_used");
    let narrow = json!({ "invite_code": shared, "max_uses": 1 });
    let answer = http
        .admin_post("/api/admin/invites/max-uses", &narrow)
        .await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    let status = http
        .admin_post(
            "/api/admin/invites/status",
            &json!({ "invite_code": shared }),
        )
        .await
        .json();
    let users: Vec<&str> = status["invite"]["uses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["carol", "dave"]);
    let bad = json!({ "invite_code": "HASHPASS-nope", "max_uses": 2 });
    let answer = http.admin_post("/api/admin/invites/max-uses", &bad).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    let answer = http
        .admin_post("/api/admin/invites/revoke", &json!({}))
        .await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    let answer = http
        .send("GET", "/api/admin/invites", &[], Vec::new())
        .await;
    assert_eq!(answer.status, 401, "the invite list needs the admin token");

    // Bad forms and bad codes: each its own 4xx.
    let answer = http
        .send(
            "POST",
            "/signup",
            &[("content-type", "application/json")],
            "{",
        )
        .await;
    refused(&answer, 422, "bad_form");
    let huge = format!("{{\"username\": \"{}\"}}", "x".repeat(100_000));
    let answer = http
        .send(
            "POST",
            "/signup",
            &[("content-type", "application/json")],
            huge,
        )
        .await;
    refused(&answer, 422, "bad_form");
    let fresh = server.hashpass.invites().issue().code;
    let form = json!({ "username": "bob", "password": "short", "invite_code": fresh });
    refused(&http.post("/signup", &form, None).await, 422, "bad_form");
    refused(&sign_up(&http, "b", &fresh).await, 422, "bad_form");
    refused(
        &sign_up(&http, "bob", "HASHPASS-nope").await,
        400,
        "malformed",
    );
    let mut tampered = fresh.clone();
    let replacement = if &tampered[20..21] == "0" { "1" } else { "0" };
    tampered.replace_range(20..21, replacement);
    refused(
        &sign_up(&http, "bob", &tampered).await,
        403,
        "bad_signature",
    );

    // A hundred sign-ups from a hundred addresses race for one code: one account.
    let contested = server.hashpass.invites().issue().code;
    let answers = futures_util::future::join_all((0..100).map(|i| {
        let (racer, contested) = (Http::new(&server, client_ip(300 + i)), contested.clone());
        async move { sign_up(&racer, &format!("racer{i}"), &contested).await }
    }))
    .await;
    let winners: Vec<usize> = (0..100).filter(|i| answers[*i].status == 201).collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for answer in &answers {
        if answer.status != 201 {
            refused(answer, 409, "already_used");
        }
    }
    let winner = format!("racer{}", winners[0]);
    assert_eq!(log_in(&http, &winner, PASSWORD).await.status, 200);
    // The losers have no account, and their usernames are free again.
    let loser = format!("racer{}", (winners[0] + 1) % 100);
    refused(
        &log_in(&http, &loser, PASSWORD).await,
        401,
        "bad_credentials",
    );
    let second_try = sign_up(&http, &loser, &fresh).await;
    assert_eq!(second_try.status, 201, "{}", second_try.text);
    assert_eq!(log_in(&http, &loser, PASSWORD).await.status, 200);

    // Sign-ups that crashed midway left pending rows behind. Past the grace period a row whose
    // code was never redeemed frees its username; a recent one still holds it; one whose code
    // was redeemed becomes the account.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&database_url(&server.hashpass))
        .await
        .unwrap();
    let redeemed = server.hashpass.invites().issue().code;
    let redeemed_id = server.hashpass.invites().verify(&redeemed).unwrap().id;
    server
        .hashpass
        .gate()
        .redeem(&redeemed, "phoenix")
        .await
        .unwrap();
    let long_ago = now() as f64 - 3600.0;
    for (username, invite_id, created_at) in [
        ("ghost", "00000000deadbeef", long_ago),
        ("newcomer", "00000000deadbeef", now() as f64),
        ("phoenix", redeemed_id.as_str(), long_ago),
    ] {
        sqlx::query(
            "INSERT INTO site_accounts (username, password_hash, invite_id, created_at, active) \
             VALUES ($1, 'not-a-hash', $2, $3, 0)",
        )
        .bind(username)
        .bind(invite_id)
        .bind(created_at)
        .execute(&db)
        .await
        .unwrap();
    }
    let code = server.hashpass.invites().issue().code;
    assert_eq!(sign_up(&http, "ghost", &code).await.status, 201);
    assert_eq!(log_in(&http, "ghost", PASSWORD).await.status, 200);
    let code = server.hashpass.invites().issue().code;
    refused(
        &sign_up(&http, "newcomer", &code).await,
        409,
        "username_taken",
    );
    refused(
        &sign_up(&http, "phoenix", &code).await,
        409,
        "username_taken",
    );
    let active: i64 =
        sqlx::query_scalar("SELECT active FROM site_accounts WHERE username = 'phoenix'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(active, 1, "the redeemed sign-up was completed");
    db.close().await;

    // The admin rotates the invite key: an unused code from before is refused as such, and a
    // code from another site's key as a forgery.
    let before_rotation = server.hashpass.invites().issue().code;
    let rotated = http
        .admin_post("/api/admin/regenerate-hmac", &json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let answer = sign_up(&http, "frank", &before_rotation).await;
    assert!(refused(&answer, 410, "key_rotated").contains("invite key changed"));
    let elsewhere = InviteCodes::new(InviteKey::random()).issue().code;
    let answer = sign_up(&http, "frank", &elsewhere).await;
    assert!(refused(&answer, 403, "bad_signature").contains("not issued by this site"));

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_site_in_axum() {
    check_site(start_site(axum_site, None, None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_site_in_poem() {
    check_site(start_site(poem_site, None, None).await).await;
}

/// The same site with its accounts and redemptions on a PostgreSQL server the test starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_site_on_postgres() {
    let Some(server) = hashpass_tests::postgres_server::shared() else {
        return;
    };
    let database = hashpass_tests::postgres_server::fresh_database(&server, "site").await;
    check_site(start_site(axum_site, Some(&database), None).await).await;
}

/// The same site with its redemptions in Redis (accounts in SQLite), as a deployment of several
/// HashPass instances would keep them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_site_with_redis_redemptions() {
    let redis = hashpass_tests::redis_server::shared();
    let backend = hashpass::redis::RedisBackend::connect(
        &redis.url,
        hashpass_tests::redis_server::unique_prefix("site"),
    )
    .await
    .expect("redis reachable");
    let store = Arc::new(hashpass::redis::RedisRedemptionStore::new(backend));
    check_site(start_site(poem_site, None, Some(store)).await).await;
}

/// The site keeps what its admin changed across a restart: after a key rotation and a
/// withdrawal, the site started again on the same data directory and database refuses the code
/// from before the rotation as rotated and the withdrawn one as withdrawn, and signs up with the
/// code won after the rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sites_rotation_and_withdrawal_outlive_a_restart() {
    let dir = temp_dir("invite-site-restart");
    let start = |serve: Serve| start_site_at(serve, dir.clone(), None, None, |c| c, |_| {});
    let server = start(axum_site).await;
    let http = Http::new(&server, client_ip(1));
    let before = win_a_code(&server, client_ip(2)).await;
    let rotated = http
        .admin_post("/api/admin/regenerate-hmac", &json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let after = win_a_code(&server, client_ip(3)).await;
    let withdrawn = win_a_code(&server, client_ip(4)).await;
    let revoke = json!({ "invite_code": withdrawn });
    let answer = http.admin_post("/api/admin/invites/revoke", &revoke).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    server.shutdown().await;

    let server = start(poem_site).await;
    let http = Http::new(&server, client_ip(1));
    let answer = sign_up(&http, "frank", &before).await;
    assert!(refused(&answer, 410, "key_rotated").contains("invite key changed"));
    let answer = sign_up(&http, "frank", &withdrawn).await;
    assert!(refused(&answer, 410, "revoked").contains("withdrawn"));
    let answer = sign_up(&http, "frank", &after).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    server.shutdown().await;
}

/// The sign-up page in real Chromium, on a code won through the puzzle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_page_in_chromium() {
    let server = start_site(axum_site, None, None).await;
    let code = win_a_code(&server, client_ip(1)).await;
    hashpass_tests::cases::run_browser_script_with(&server, "join.e2e.mjs", &["--code", &code])
        .await;
    server.shutdown().await;
}

/// The `Retry-After` header's seconds.
fn retry_after(answer: &Answer) -> Option<u64> {
    answer
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// A code from the site's own key, and its id.
fn fresh_code(server: &TestServer) -> (String, String) {
    let code = server.hashpass.invites().issue().code;
    let id = server.hashpass.invites().verify(&code).unwrap().id;
    (code, id)
}

/// Ten logins a minute per client address (the default): the eleventh is refused with a 429
/// and `Retry-After`, whatever its password, while another address still logs in.
async fn check_login_limit(serve: Serve) {
    let server = start_site(serve, None, None).await;
    let (first, second) = (
        Http::new(&server, client_ip(1)),
        Http::new(&server, client_ip(2)),
    );
    let (code, _) = fresh_code(&server);
    assert_eq!(sign_up(&first, "alice", &code).await.status, 201);
    for attempt in 1..=10 {
        let (password, status) = if attempt % 3 == 0 {
            ("not the password", 401)
        } else {
            (PASSWORD, 200)
        };
        let answer = log_in(&first, "alice", password).await;
        assert_eq!(answer.status, status, "attempt {attempt}: {}", answer.text);
    }
    let eleventh = log_in(&first, "alice", PASSWORD).await;
    assert!(refused(&eleventh, 429, "too_many_logins").contains("Too many login attempts"));
    let wait = retry_after(&eleventh).expect("a Retry-After in seconds");
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    assert_eq!(eleventh.json()["retry_after"], wait);
    let other = log_in(&second, "alice", PASSWORD).await;
    assert_eq!(
        other.status, 200,
        "another address is not limited: {}",
        other.text
    );
    // The limit is on logins: the limited address still signs up.
    let (code, _) = fresh_code(&server);
    assert_eq!(sign_up(&first, "bob", &code).await.status, 201);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_limit_in_axum() {
    check_login_limit(axum_site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_limit_in_poem() {
    check_login_limit(poem_site).await;
}

/// Behind a trusted proxy, logins count by the client address it names: IPv6 addresses by
/// their /64, so hopping within one's own /64 gains nothing, while the next /64 is another
/// client.
async fn check_login_limit_by_ipv6_prefix(serve: Serve) {
    let server = start_site_with(
        serve,
        None,
        None,
        |config| config.with_trusted_proxies(vec!["127.0.0.0/8".parse().unwrap()]),
        |_| {},
    )
    .await;
    let http = Http::new(&server, client_ip(1));
    let from = |client: &str| {
        let (http, client) = (http.clone(), client.to_string());
        async move {
            let form = json!({ "username": "nobody", "password": PASSWORD });
            let headers = [
                ("content-type", "application/json"),
                ("cf-connecting-ip", client.as_str()),
            ];
            http.send("POST", "/login", &headers, form.to_string())
                .await
        }
    };
    for host in 1..=10 {
        let answer = from(&format!("2001:db8:a:b::{host:x}")).await;
        refused(&answer, 401, "bad_credentials");
    }
    let same_prefix = from("2001:db8:a:b:ffff:ffff:ffff:ffff").await;
    refused(&same_prefix, 429, "too_many_logins");
    assert!(retry_after(&same_prefix).is_some());
    refused(&from("2001:db8:a:c::1").await, 401, "bad_credentials");
    // An IPv4 client is counted on its own address.
    refused(&from("203.0.113.7").await, 401, "bad_credentials");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_limit_by_ipv6_prefix_in_axum() {
    check_login_limit_by_ipv6_prefix(axum_site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_limit_by_ipv6_prefix_in_poem() {
    check_login_limit_by_ipv6_prefix(poem_site).await;
}

/// With one hash at a time and one waiting, a burst of logins from many addresses (known and
/// unknown names: the decoy hash queues too) is answered at once beyond those two: 503 with
/// `Retry-After`, every other one checked; none waits without end, and the queue frees again.
async fn check_bounded_hashing(serve: Serve) {
    let server = start_site_with(
        serve,
        None,
        None,
        |config| config,
        |site| {
            site.hash_concurrency = 1;
            site.hash_queue = 1;
        },
    )
    .await;
    let http = Http::new(&server, client_ip(1));
    let (code, _) = fresh_code(&server);
    assert_eq!(sign_up(&http, "alice", &code).await.status, 201);
    let answers = futures_util::future::join_all((0..32).map(|i| {
        let http = Http::new(&server, client_ip(10 + i));
        async move {
            let username = if i % 2 == 0 { "alice" } else { "nobody" };
            (username, log_in(&http, username, PASSWORD).await)
        }
    }))
    .await;
    let mut busy = 0;
    for (username, answer) in &answers {
        match answer.status {
            503 => {
                busy += 1;
                assert!(refused(answer, 503, "busy").contains("try again"));
                let wait = retry_after(answer).expect("a Retry-After");
                assert!((1..=30).contains(&wait), "{answer:?}");
            }
            200 => assert_eq!(*username, "alice", "{}", answer.text),
            _ => {
                assert_eq!(*username, "nobody", "{}", answer.text);
                refused(answer, 401, "bad_credentials");
            }
        }
    }
    assert!(
        busy > 0,
        "a burst of 32 overflows a queue of 2: {answers:?}"
    );
    assert!(busy < answers.len(), "the queue checks some: {answers:?}");
    // Every slot was given back: a login now is checked.
    assert_eq!(log_in(&http, "alice", PASSWORD).await.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_hashing_in_axum() {
    check_bounded_hashing(axum_site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_hashing_in_poem() {
    check_bounded_hashing(poem_site).await;
}

/// Thirty sign-ups race for one code on a site that hashes one password at a time with one
/// waiting: the code is claimed before any hashing, so exactly one account is made and the 29
/// others are refused 409 at once — none waits for the hashing queue or is refused by it (503).
async fn check_sign_ups_racing_on_a_small_hash_queue(serve: Serve) {
    let server = start_site_with(
        serve,
        None,
        None,
        |config| config,
        |site| {
            site.hash_concurrency = 1;
            site.hash_queue = 1;
        },
    )
    .await;
    let (code, id) = fresh_code(&server);
    let answers = futures_util::future::join_all((0..30).map(|i| {
        let (http, code) = (Http::new(&server, client_ip(100 + i)), code.clone());
        async move { sign_up(&http, &format!("racer{i}"), &code).await }
    }))
    .await;
    let created: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    assert_eq!(created[0].json()["invite_id"], id.as_str());
    let refusals = answers.iter().filter(|a| a.status == 409).count();
    assert_eq!(refusals, 29, "{answers:?}");
    for answer in answers.iter().filter(|a| a.status == 409) {
        refused(answer, 409, "already_used");
    }
    let status = server.hashpass.gate().status(&code).await.unwrap();
    assert_eq!(status.uses.len(), 1);
    let winner = created[0].json()["username"].as_str().unwrap().to_string();
    assert_eq!(status.uses[0].user_id, winner);
    let http = Http::new(&server, client_ip(1));
    assert_eq!(log_in(&http, &winner, PASSWORD).await.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_racing_on_a_small_hash_queue_in_axum() {
    check_sign_ups_racing_on_a_small_hash_queue(axum_site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_racing_on_a_small_hash_queue_in_poem() {
    check_sign_ups_racing_on_a_small_hash_queue(poem_site).await;
}

/// One-shot logins from 300 addresses at once (wrong passwords and unknown names, each address
/// once) cannot starve the password-hashing queue: it is shared by address, so a visitor's
/// login sent while they wait is checked in its turn (200, not 503), and every one-shot login
/// is checked too. The site's logic is the same in both frameworks; this runs on axum only, as
/// its 300 hashes take a while on a busy machine (hence the long client timeouts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_logins_do_not_starve_a_visitor() {
    let server = start_site_with(
        axum_site,
        None,
        None,
        |config| config,
        |site| site.hash_concurrency = 2,
    )
    .await;
    let patient = |n: u32| Http::with_timeout(&server, client_ip(n), Duration::from_secs(300));
    let visitor = patient(1);
    let (code, _) = fresh_code(&server);
    assert_eq!(sign_up(&visitor, "alice", &code).await.status, 201);
    let flood = futures_util::future::join_all((0..300).map(|i| {
        let http = patient(1000 + i);
        async move {
            let username = if i % 2 == 0 { "alice" } else { "nobody" };
            log_in(&http, username, "a guessed password").await
        }
    }));
    let visit = async {
        // Once the flood is queued.
        tokio::time::sleep(Duration::from_millis(300)).await;
        log_in(&visitor, "alice", PASSWORD).await
    };
    let (flood, visit) = tokio::join!(flood, visit);
    assert_eq!(visit.status, 200, "{}", visit.text);
    for answer in &flood {
        refused(answer, 401, "bad_credentials");
    }
    server.shutdown().await;
}

/// A redemption of a code in `holds` waits there until the test lets it go.
type Hold = (oneshot::Sender<()>, oneshot::Receiver<()>);

/// A redemption store that holds the next redemption of chosen codes just before it is made,
/// so that a test can interleave sign-ups exactly.
struct HeldRedemptions {
    inner: Arc<dyn RedemptionStore>,
    holds: std::sync::Mutex<HashMap<String, Hold>>,
}

impl HeldRedemptions {
    /// Holds the next redemption of `code_id`: the receiver fires when it arrives, the sender
    /// lets it go on.
    fn hold(&self, code_id: &str) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (arrived, on_arrival) = oneshot::channel();
        let (release, on_release) = oneshot::channel();
        self.holds
            .lock()
            .unwrap()
            .insert(code_id.to_string(), (arrived, on_release));
        (on_arrival, release)
    }
}

// By hand what `#[async_trait]` writes (this crate does not depend on it).
impl RedemptionStore for HeldRedemptions {
    fn redeem<'a, 'b, 'c, 'f>(
        &'a self,
        code_id: &'b str,
        user_id: &'c str,
        now: f64,
    ) -> BoxFuture<'f, Result<RedeemOutcome, StoreError>>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let hold = self.holds.lock().unwrap().remove(code_id);
            if let Some((arrived, release)) = hold {
                let _ = arrived.send(());
                let _ = release.await;
            }
            self.inner.redeem(code_id, user_id, now).await
        })
    }

    fn status<'a, 'b, 'f>(
        &'a self,
        code_id: &'b str,
    ) -> BoxFuture<'f, Result<CodeStatus, StoreError>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        self.inner.status(code_id)
    }

    fn release<'a, 'b, 'c, 'f>(
        &'a self,
        code_id: &'b str,
        user_id: &'c str,
        now: f64,
    ) -> BoxFuture<'f, Result<bool, StoreError>>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        Self: 'f,
    {
        self.inner.release(code_id, user_id, now)
    }

    fn revoke<'a, 'b, 'f>(
        &'a self,
        code_id: &'b str,
        now: f64,
    ) -> BoxFuture<'f, Result<bool, StoreError>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        self.inner.revoke(code_id, now)
    }

    fn set_max_uses<'a, 'b, 'f>(
        &'a self,
        code_id: &'b str,
        max_uses: u32,
        now: f64,
    ) -> BoxFuture<'f, Result<Option<CodeStatus>, StoreError>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        self.inner.set_max_uses(code_id, max_uses, now)
    }

    fn list<'a, 'f>(&'a self) -> BoxFuture<'f, Result<Vec<CodeStatus>, StoreError>>
    where
        'a: 'f,
        Self: 'f,
    {
        self.inner.list()
    }
}

/// Two sign-ups for one username with different codes, interleaved exactly: A writes its
/// pending row and stalls just before redeeming its code — past the grace period, so B takes
/// the name over with a pending row of its own and stalls likewise; then A's code is redeemed.
/// A must not activate B's row (it answers 409, the row stays pending, and A's code is free
/// again); B's row then becomes B's account if B's code is good, and is removed, freeing the
/// name, if it was withdrawn meanwhile.
async fn check_racing_sign_ups(serve: Serve) {
    let dir = temp_dir("invite-site-race");
    let url = format!("sqlite://{}?mode=rwc", dir.join("site.db").display());
    let held = Arc::new(HeldRedemptions {
        inner: Site::redemption_store(&site_config(&url)).await.unwrap(),
        holds: std::sync::Mutex::new(HashMap::new()),
    });
    let server = start_site(serve, Some(&url), Some(held.clone())).await;
    let http = Http::new(&server, client_ip(1));
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&url).await.unwrap();
    let row = |username: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_as::<_, (i64, String)>(
                "SELECT active, invite_id FROM site_accounts WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(&db)
            .await
            .unwrap()
        }
    };
    let (password_a, password_b) = ("password of sign-up A", "password of sign-up B");
    for (username, b_code_stays_good) in [("bob", true), ("carol", false)] {
        let (code_a, id_a) = fresh_code(&server);
        let (code_b, id_b) = fresh_code(&server);

        let (a_arrived, release_a) = held.hold(&id_a);
        let a = tokio::spawn({
            let (http, code_a) = (http.clone(), code_a.clone());
            async move { sign_up_as(&http, username, password_a, &code_a).await }
        });
        a_arrived.await.expect("A reaches its redemption");
        assert_eq!(
            row(username).await,
            Some((0, id_a.clone())),
            "A's row is pending"
        );
        // A stalls past the grace period.
        sqlx::query("UPDATE site_accounts SET created_at = created_at - 3600 WHERE username = $1")
            .bind(username)
            .execute(&db)
            .await
            .unwrap();

        let (b_arrived, release_b) = held.hold(&id_b);
        let b = tokio::spawn({
            let (http, code_b) = (http.clone(), code_b.clone());
            async move { sign_up_as(&http, username, password_b, &code_b).await }
        });
        b_arrived.await.expect("B reaches its redemption");
        assert_eq!(
            row(username).await,
            Some((0, id_b.clone())),
            "B took the name over"
        );

        // A's code is redeemed now, but the row under its name is B's: A leaves it alone.
        release_a.send(()).unwrap();
        let a = a.await.unwrap();
        refused(&a, 409, "username_taken");
        assert_eq!(
            row(username).await,
            Some((0, id_b.clone())),
            "A's activation left B's pending row alone"
        );
        assert!(
            server.hashpass.gate().check(&code_a).await.is_ok(),
            "A gave its claim on its code back"
        );

        if !b_code_stays_good {
            assert!(server.hashpass.gate().revoke(&code_b).await.unwrap());
        }
        release_b.send(()).unwrap();
        let b = b.await.unwrap();
        if b_code_stays_good {
            assert_eq!(b.status, 201, "{}", b.text);
            assert_eq!(b.json()["invite_id"], id_b.as_str());
            assert_eq!(row(username).await, Some((1, id_b.clone())));
            refused(
                &log_in(&http, username, password_a).await,
                401,
                "bad_credentials",
            );
            assert_eq!(log_in(&http, username, password_b).await.status, 200);
        } else {
            refused(&b, 410, "revoked");
            assert_eq!(
                row(username).await,
                None,
                "B's refused sign-up left nothing"
            );
            refused(
                &log_in(&http, username, password_b).await,
                401,
                "bad_credentials",
            );
            let (code, _) = fresh_code(&server);
            assert_eq!(sign_up(&http, username, &code).await.status, 201);
        }
    }
    db.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_sign_ups_in_axum() {
    check_racing_sign_ups(axum_site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_sign_ups_in_poem() {
    check_racing_sign_ups(poem_site).await;
}

/// The forms are JSON only: a valid JSON body sent as `text/plain` (what a cross-site HTML
/// form can send with no CORS preflight), as a form encoding, or with no content type is
/// refused with a 415 before anything is done with it; `application/json` in any case and
/// with parameters is accepted.
async fn check_json_only(serve: Serve) {
    let server = start_site(serve, None, None).await;
    let http = Http::new(&server, client_ip(1));
    let (code, _) = fresh_code(&server);
    let signup = json!({ "username": "alice", "password": PASSWORD, "invite_code": code });
    let login = json!({ "username": "alice", "password": PASSWORD });
    for content_type in [
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|t| vec![("content-type", t)])
            .unwrap_or_default();
        for (path, form) in [("/signup", &signup), ("/login", &login)] {
            let answer = http.send("POST", path, &headers, form.to_string()).await;
            let detail = refused(&answer, 415, "unsupported_media_type");
            assert!(detail.contains("application/json"), "{detail}");
        }
    }
    // Nothing was done: the code is unused and signs alice up now.
    let json_with_charset = [("content-type", "Application/JSON; charset=UTF-8")];
    let answer = http
        .send("POST", "/signup", &json_with_charset, signup.to_string())
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let answer = http
        .send("POST", "/login", &json_with_charset, login.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_only_in_axum() {
    check_json_only(axum_site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_only_in_poem() {
    check_json_only(poem_site).await;
}

/// A site whose accounts table predates the sign-up attempt ids gains the column on opening,
/// and its rows carry on: an account keeps its name, a long-pending row frees its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_accounts_table_is_upgraded() {
    let dir = temp_dir("invite-site-old-table");
    let url = format!("sqlite://{}?mode=rwc", dir.join("site.db").display());
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TABLE site_accounts (
            username TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            invite_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            active BIGINT NOT NULL
        )",
    )
    .execute(&db)
    .await
    .unwrap();
    for (username, created_at, active) in [
        ("elder", now() as f64 - 86_400.0, 1),
        ("ghost", now() as f64 - 3600.0, 0),
    ] {
        sqlx::query(
            "INSERT INTO site_accounts (username, password_hash, invite_id, created_at, active) \
             VALUES ($1, 'not-a-hash', '00000000deadbeef', $2, $3)",
        )
        .bind(username)
        .bind(created_at)
        .bind(active)
        .execute(&db)
        .await
        .unwrap();
    }
    let server = start_site(axum_site, Some(&url), None).await;
    let http = Http::new(&server, client_ip(1));
    let (code, _) = fresh_code(&server);
    refused(&sign_up(&http, "elder", &code).await, 409, "username_taken");
    assert_eq!(sign_up(&http, "ghost", &code).await.status, 201);
    assert_eq!(log_in(&http, "ghost", PASSWORD).await.status, 200);
    let attempts: Vec<(String, String)> =
        sqlx::query_as("SELECT username, attempt FROM site_accounts ORDER BY username")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(attempts[0], ("elder".into(), String::new()));
    assert_eq!(attempts[1].0, "ghost");
    assert_eq!(attempts[1].1.len(), 32, "a fresh sign-up's attempt id");
    db.close().await;
    server.shutdown().await;
}
