//! A graceful shutdown against work under way: the webhook worker's round finishes, its record
//! written, before the shutdown returns, and the worker starts no other round.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use hashpass::clock::Clock;
use hashpass::outbox::{Delivery, MemoryOutbox, WebhookOutbox};
use hashpass::webhook::{WebhookError, WebhookEvent, WebhookSink};
use tokio::sync::Notify;

/// A receiver that holds every attempt until released, then refuses it.
#[derive(Default)]
struct HeldReceiver {
    attempts: AtomicUsize,
    started: Notify,
    release: Notify,
}

#[async_trait]
impl WebhookSink for HeldReceiver {
    async fn deliver(&self, _delivery: &Delivery) -> Result<(), WebhookError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        self.release.notified().await;
        Err(WebhookError("HTTP 503".into()))
    }
}

#[tokio::test]
async fn shutdown_waits_for_the_webhook_round_under_way_and_starts_no_other() {
    let receiver = Arc::new(HeldReceiver::default());
    let outbox: Arc<dyn WebhookOutbox> = Arc::new(MemoryOutbox::default());
    let (hp, clock) = instance_with(config(), |builder| {
        builder
            .webhook(receiver.clone())
            .webhook_outbox(outbox.clone())
    })
    .await;
    let _jobs = hp.spawn_jobs();
    let event = WebhookEvent {
        visitor_id: "visitor".into(),
        invite_code: "CODE-1".into(),
    };
    outbox
        .enqueue(Delivery::new(event, clock.now()))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), receiver.started.notified())
        .await
        .expect("the worker attempts the delivery within its 1 s period");

    let shutdown = tokio::spawn({
        let hp = hp.clone();
        async move { hp.shutdown(Duration::from_secs(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !shutdown.is_finished(),
        "the shutdown returned while a delivery attempt was under way"
    );
    receiver.release.notify_one();
    assert!(shutdown.await.unwrap(), "the shutdown finished in time");

    // The failed attempt is on record for the next instance.
    let summary = outbox.summary(10).await.unwrap();
    assert_eq!(summary.pending, 1);
    let delivery = &summary.pending_deliveries[0];
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.last_error.as_deref(), Some("HTTP 503"));

    // Its retry comes due, and two worker periods pass: no other round starts here.
    clock.advance(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 1);
}
