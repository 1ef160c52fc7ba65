//! A host app that forgets to pass the client's address gets a loud, explicit 500 — never every
//! client treated as one address (which would put all visitors under one IP's limits and bans).

use std::time::Duration;

use hashpass::{Config, HashPass};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn instance() -> HashPass {
    HashPass::builder(Config::default().with_turnstile_test_mode(true))
        .build()
        .await
        .unwrap()
}

/// Sends one HTTP/1.1 GET over `stream` and returns the whole answer as text.
async fn get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    path: &str,
) -> String {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn axum_served_without_connect_info_answers_500_saying_what_to_add() {
    let app = axum::Router::new().nest("/invite", hashpass_axum::router(instance().await));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The mistake: `app` instead of `app.into_make_service_with_connect_info::<SocketAddr>()`.
    tokio::spawn(async move { axum::serve(listener, app).await });
    for path in ["/invite/api/health", "/invite/api/puzzle", "/invite/api/ws"] {
        let answer = get(tokio::net::TcpStream::connect(addr).await.unwrap(), path).await;
        assert!(answer.starts_with("HTTP/1.1 500"), "{path}: {answer}");
        assert!(
            answer.contains("into_make_service_with_connect_info::<SocketAddr>()"),
            "{path}: {answer}"
        );
    }
    // The pages need no address and still load.
    let page = get(
        tokio::net::TcpStream::connect(addr).await.unwrap(),
        "/invite/",
    )
    .await;
    assert!(!page.starts_with("HTTP/1.1 500"), "{page}");
}

#[tokio::test]
async fn poem_on_a_unix_socket_answers_500_saying_what_to_change() {
    let dir = hashpass_tests::server::temp_dir("unix-socket");
    let path = dir.join("hashpass.sock");
    let app = poem::Route::new().nest("/invite", hashpass_poem::route(instance().await));
    let listener = poem::listener::UnixListener::bind(path.clone());
    tokio::spawn(async move { poem::Server::new(listener).run(app).await });
    for _ in 0..100 {
        if path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for request in ["/invite/api/health", "/invite/api/ws"] {
        let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
        let answer = get(stream, request).await;
        assert!(answer.starts_with("HTTP/1.1 500"), "{request}: {answer}");
        assert!(answer.contains("TCP listener"), "{request}: {answer}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
