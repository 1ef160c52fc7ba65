//! The example invite-only site (`hashpass_examples::site`) over real HTTP, in axum and in poem,
//! with its accounts in SQLite or PostgreSQL and its redemptions in SQL or Redis: win a code in
//! the race, sign up with it, log in, call `/me`; a code signs up one account, even when a hundred
//! sign-ups race for it; every bad code is refused with its own error; the admin sees, withdraws
//! and widens codes; tokens are refused for a wrong audience, issuer or key and the second they
//! expire.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use hashpass::HashPass;
use hashpass::invite::{InviteCodes, InviteKey};
use hashpass::redemption::RedemptionStore;
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

/// The site's settings: the test secret and `database_url`.
fn site_config(database_url: &str) -> SiteConfig {
    let mut config = SiteConfig::new(SECRET).expect("secret long enough");
    config.database_url = database_url.to_string();
    config
}

/// Each test server's site database, by the server's log directory (the serve functions get
/// only the HashPass instance).
static SITE_DATABASES: std::sync::Mutex<Vec<(std::path::PathBuf, String)>> =
    std::sync::Mutex::new(Vec::new());

fn database_url(hashpass: &HashPass) -> String {
    let databases = SITE_DATABASES.lock().unwrap();
    let (_, url) = databases
        .iter()
        .find(|(dir, _)| *dir == hashpass.config().admin.log_dir)
        .expect("start_site registered the database");
    url.clone()
}

/// The site around `hashpass`, its accounts in the database `start_site` registered.
async fn open_site(hashpass: &HashPass) -> Site {
    Site::open(site_config(&database_url(hashpass)), hashpass)
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
        let app = with_axum::app(site, hashpass);
        adapters::serve_axum(app, listener, stop).await;
    })
}

fn poem_site(
    hashpass: HashPass,
    listener: TcpListener,
    stop: oneshot::Receiver<()>,
) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let site = open_site(&hashpass).await;
        let app = with_poem::app(site, hashpass);
        adapters::serve_poem(app, listener, stop).await;
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
    let dir = temp_dir("invite-site");
    let config = test_config(&dir);
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
    SITE_DATABASES
        .lock()
        .unwrap()
        .push((config.admin.log_dir.clone(), url));
    TestServer::start_custom(serve, config, dir, None, move |builder| {
        builder.redemption_store(store)
    })
    .await
}

async fn sign_up(http: &Http, username: &str, invite_code: &str) -> Answer {
    let form = json!({ "username": username, "password": PASSWORD, "invite_code": invite_code });
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

    // A hundred sign-ups race for one code: one account.
    let contested = server.hashpass.invites().issue().code;
    let answers = futures_util::future::join_all((0..100).map(|i| {
        let (http, contested) = (http.clone(), contested.clone());
        async move { sign_up(&http, &format!("racer{i}"), &contested).await }
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

/// The sign-up page in real Chromium, on a code won through the puzzle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_page_in_chromium() {
    let server = start_site(axum_site, None, None).await;
    let code = win_a_code(&server, client_ip(1)).await;
    hashpass_tests::cases::run_browser_script_with(&server, "join.e2e.mjs", &["--code", &code])
        .await;
    server.shutdown().await;
}
