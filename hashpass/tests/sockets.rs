//! The player socket driver against sockets that misbehave: a client whose sends stall is
//! closed after the send timeout without holding up anyone else.

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use common::*;
use futures_util::{Sink, Stream};
use hashpass::adapter::{WsIncoming, WsOutgoing};

/// A client that never sends and accepts `limit` frames, after which every send stalls forever.
struct StalledClient {
    accepted: Arc<AtomicUsize>,
    limit: usize,
}

impl Stream for StalledClient {
    type Item = Result<WsIncoming, std::io::Error>;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Pending
    }
}

impl Sink<WsOutgoing> for StalledClient {
    type Error = std::io::Error;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.accepted.load(Ordering::SeqCst) < self.limit {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
    fn start_send(self: Pin<&mut Self>, _: WsOutgoing) -> Result<(), Self::Error> {
        self.accepted.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_socket_is_closed_and_cleaned_up() {
    let (hp, _clock) = instance(config().with_ws_send_timeout(Duration::from_millis(200))).await;
    let svc = Arc::clone(hp.service());
    let ip = ip(1);
    let admission = svc.admit_player(ip, Some("captcha"), true).await.unwrap();
    assert_eq!(svc.connections().players_of(ip), 1);
    let accepted = Arc::new(AtomicUsize::new(0));
    // SESSION_TOKEN and one reset get through; the next send stalls.
    let client = StalledClient {
        accepted: Arc::clone(&accepted),
        limit: 2,
    };
    let driver = tokio::spawn({
        let hp = hp.clone();
        async move { hp.run_player(admission, client).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..3 {
        hp.admin().reset_puzzle().await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("the driver gave up on the stalled socket")
        .unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(svc.connections().players_of(ip), 0, "slot released");
    let sessions = svc.seams().sessions.list().await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(
        sessions[0].connection.is_none() && sessions[0].disconnected_at.is_some(),
        "session marked disconnected"
    );
    assert!(
        svc.metrics()
            .render(Default::default())
            .contains("hashpass_sockets_closed_slow_total 1")
    );
}
