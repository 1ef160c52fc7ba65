//! A host site's invite-only sign-up over real HTTP, in axum and in poem: the `ValidInvite`
//! extractor admits only a valid, unredeemed code, each refusal with its own status, and a code
//! signs up one account.

use std::net::SocketAddr;
use std::sync::Arc;

use hashpass::clock::FakeClock;
use hashpass::gate::InviteGate;
use hashpass::invite::{InviteCodes, InviteKey};
use hashpass::redemption::MemoryRedemptionStore;

fn gate(clock: &FakeClock) -> (InviteGate, Arc<InviteCodes>) {
    let codes = Arc::new(
        InviteCodes::new(InviteKey::from_hex("00112233445566778899aabbccddeeff").unwrap())
            .with_ttl(600)
            .with_clock(Arc::new(clock.clone())),
    );
    let gate = InviteGate::new(Arc::clone(&codes), Arc::new(MemoryRedemptionStore::new()))
        .with_clock(Arc::new(clock.clone()));
    (gate, codes)
}

/// Signs up `user` with `code` (None: no header); returns status and body.
async fn sign_up(addr: SocketAddr, code: Option<&str>, user: &str) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/signup"))
        .header("x-user", user);
    if let Some(code) = code {
        request = request.header("x-invite-code", code);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

async fn check_site(addr: SocketAddr, codes: &InviteCodes, gate: &InviteGate, clock: &FakeClock) {
    let code = codes.issue().code;
    let (status, body) = sign_up(addr, Some(&code), "alice").await;
    assert_eq!(
        (status, body["user"].as_str()),
        (200, Some("alice")),
        "{body}"
    );
    let (status, body) = sign_up(addr, Some(&code), "bob").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_used")),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("already been used")
    );
    let (status, body) = sign_up(addr, None, "bob").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("malformed")));
    // One character inside the id changed (not the version byte in front, nor the last
    // character, whose spare bit must stay zero).
    let mut forged = codes.issue().code;
    let replacement = if &forged[20..21] == "0" { "1" } else { "0" };
    forged.replace_range(20..21, replacement);
    let (status, body) = sign_up(addr, Some(&forged), "bob").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("bad_signature"))
    );
    let withdrawn = codes.issue().code;
    assert!(gate.revoke(&withdrawn).await.unwrap());
    let (status, body) = sign_up(addr, Some(&withdrawn), "bob").await;
    assert_eq!((status, body["code"].as_str()), (410, Some("revoked")));
    let stale = codes.issue().code;
    clock.advance_secs(601.0);
    let (status, body) = sign_up(addr, Some(&stale), "bob").await;
    assert_eq!((status, body["code"].as_str()), (410, Some("expired")));
    // Issued before the key was rotated; and well-formed but issued by another site's key.
    let before_rotation = codes.issue().code;
    codes.rotate(&InviteKey::random());
    let (status, body) = sign_up(addr, Some(&before_rotation), "bob").await;
    assert_eq!((status, body["code"].as_str()), (410, Some("key_rotated")));
    let elsewhere = InviteCodes::new(InviteKey::random()).issue().code;
    let (status, body) = sign_up(addr, Some(&elsewhere), "bob").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("bad_signature"))
    );
    // 100 concurrent sign-ups with one fresh code: one account.
    let fresh = codes.issue().code;
    let answers = futures_util::future::join_all((0..100).map(|i| {
        let fresh = fresh.clone();
        async move { sign_up(addr, Some(&fresh), &format!("user{i}")).await.0 }
    }))
    .await;
    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        1,
        "{answers:?}"
    );
    assert!(answers.iter().all(|s| *s == 200 || *s == 409));
}

mod axum_site {
    use axum::extract::{FromRef, State};
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Response};
    use hashpass::gate::InviteGate;
    use hashpass_axum::ValidInvite;

    #[derive(Clone, Debug)]
    pub struct Site {
        pub gate: InviteGate,
    }

    impl FromRef<Site> for InviteGate {
        fn from_ref(site: &Site) -> InviteGate {
            site.gate.clone()
        }
    }

    pub(crate) async fn signup(
        State(site): State<Site>,
        headers: HeaderMap,
        invite: ValidInvite,
    ) -> Response {
        let user = headers
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("anonymous")
            .to_string();
        match site.gate.redeem(&invite.code, &user).await {
            Ok(r) => axum::Json(serde_json::json!({ "user": r.user_id })).into_response(),
            Err(rejection) => {
                let e = hashpass::ApiError::from(rejection);
                (e.status, axum::Json(e.body)).into_response()
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_sign_up_is_gated_by_one_use_codes() {
    let clock = FakeClock::default();
    let (gate, codes) = gate(&clock);
    let app = axum::Router::new()
        .route("/signup", axum::routing::post(axum_site::signup))
        .with_state(axum_site::Site { gate: gate.clone() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    check_site(addr, &codes, &gate, &clock).await;
}

mod poem_site {
    use hashpass::gate::InviteGate;
    use hashpass_poem::ValidInvite;
    use poem::web::{Data, Json};
    use poem::{IntoResponse, Request, Response, handler};

    #[handler]
    pub(crate) async fn signup(
        req: &Request,
        invite: ValidInvite,
        Data(gate): Data<&InviteGate>,
    ) -> Response {
        let user = req
            .headers()
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("anonymous")
            .to_string();
        match gate.redeem(&invite.code, &user).await {
            Ok(r) => Json(serde_json::json!({ "user": r.user_id })).into_response(),
            Err(rejection) => {
                let e = hashpass::ApiError::from(rejection);
                Json(e.body).with_status(e.status).into_response()
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poem_sign_up_is_gated_by_one_use_codes() {
    use poem::EndpointExt;
    let clock = FakeClock::default();
    let (gate, codes) = gate(&clock);
    let app = poem::Route::new()
        .at("/signup", poem::post(poem_site::signup))
        .data(gate.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run(app)
            .await
            .unwrap()
    });
    check_site(addr, &codes, &gate, &clock).await;
}
