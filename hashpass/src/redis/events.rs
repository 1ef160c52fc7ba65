//! [`EventBus`] over Redis pub/sub: a socket on instance B hears a win on instance A.
//!
//! Publishing goes to Redis; one subscriber task per instance feeds what Redis delivers
//! (including this instance's own events) into a local broadcast channel that the sockets read.
//! When the subscription drops, the task reconnects with a short back-off.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::sync::broadcast;

use super::{RedisBackend, unavailable};
use crate::error::StoreError;
use crate::events::{EVENT_BUFFER, Event, EventBus};

/// Events through a Redis channel.
#[derive(Debug)]
pub struct RedisEventBus {
    backend: RedisBackend,
    channel: String,
    local: broadcast::Sender<Event>,
    subscriber: tokio::task::JoinHandle<()>,
}

impl RedisEventBus {
    /// Subscribes to the deployment's event channel and returns once the subscription is live.
    pub async fn new(backend: RedisBackend) -> Result<Arc<Self>, StoreError> {
        let channel = backend.key("events");
        let local = broadcast::channel(EVENT_BUFFER).0;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let subscriber = tokio::spawn(subscribe_forever(
            backend.clone(),
            channel.clone(),
            local.clone(),
            ready_tx,
        ));
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                subscriber.abort();
                return Err(e);
            }
            Err(_) => {
                return Err(StoreError::Unavailable(
                    "the event subscriber stopped".into(),
                ));
            }
        }
        Ok(Arc::new(Self {
            backend,
            channel,
            local,
            subscriber,
        }))
    }
}

impl Drop for RedisEventBus {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}

async fn subscribe_forever(
    backend: RedisBackend,
    channel: String,
    local: broadcast::Sender<Event>,
    ready: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
) {
    let mut ready = Some(ready);
    loop {
        match backend.client().get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Ok(()));
                    }
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = messages.next().await {
                        match serde_json::from_slice::<Event>(message.get_payload_bytes()) {
                            Ok(event) => {
                                let _ = local.send(event);
                            }
                            Err(e) => tracing::warn!(error = %e, "ignoring an unreadable event"),
                        }
                    }
                    tracing::warn!("Redis event subscription ended; reconnecting");
                }
                Err(e) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(unavailable(e)));
                        return;
                    }
                }
            },
            Err(e) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(unavailable(e)));
                    return;
                }
                tracing::warn!(error = %e, "Redis event subscription failed; retrying");
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, event: Event) -> Result<(), StoreError> {
        let json = serde_json::to_string(&event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.backend.connection();
        conn.publish::<_, _, ()>(&self.channel, json)
            .await
            .map_err(unavailable)
    }

    fn publish_here(&self, event: Event) {
        let _ = self.local.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }
}
