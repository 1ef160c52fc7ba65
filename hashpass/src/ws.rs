//! The WebSocket protocols (docs/protocol.md#player-websocket, docs/protocol.md#admin-websocket, docs/protocol.md#how-a-solution-is-checked) as framework-free drivers: an adapter
//! upgrades the connection, maps its frames to [`WsIncoming`] / [`WsOutgoing`], and hands the
//! socket to [`run_player`] or [`run_admin`]. Everything else — messages, events, close codes,
//! slow-client handling, clean-up — happens here, once for every framework.

use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Sleep;

use crate::admin::AdminService;
use crate::clock::{monotonic_instant, monotonic_millis};
use crate::coalesce::Coalesced;
use crate::events::Event;
use crate::hashrate::validate_rate;
use crate::message_budget::MessageBudget;
use crate::service::{PlayerAdmission, PuzzleService};
use crate::session::ConnectionId;
use crate::wire;

/// Longest text frame accepted, in characters (docs/protocol.md#messages-from-the-client).
pub(crate) const MAX_MESSAGE_CHARS: usize = 4096;

/// Period of the admin socket's STATUS_UPDATE (docs/protocol.md#admin-websocket).
pub(crate) const ADMIN_STATUS_PERIOD: Duration = Duration::from_secs(2);

/// A player socket writes its mining declarations, and its hashrate reports, to the shared
/// stores at most once per this interval each, in milliseconds (docs/protocol.md#message-rate).
pub(crate) const DECLARATION_INTERVAL_MS: u64 = 1_000;

/// Close reason of a socket that sent more frames than its budget (docs/protocol.md#message-rate).
pub(crate) const TOO_MANY_MESSAGES: &str = "Too many messages";

/// How long a socket closed for flooding is still read (and its frames dropped) while its client
/// answers the close (docs/protocol.md#message-rate).
const FLOOD_CLOSE_DRAIN: Duration = Duration::from_secs(2);

/// A frame from the client, as the adapter saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsIncoming {
    /// A text frame.
    Text(String),
    /// A binary frame (ignored, docs/protocol.md#how-a-solution-is-checked).
    Binary,
    /// Ping/pong and other control frames (ignored).
    Control,
    /// The client closed.
    Close,
}

/// A frame for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsOutgoing {
    /// A text frame.
    Text(Arc<str>),
    /// A close frame.
    Close {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// What a player's text frame asks for (docs/protocol.md#messages-from-the-client).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PlayerMessage {
    /// `ping` or `{"type":"ping"}`.
    Ping,
    /// `{"type":"mining_start"}`.
    MiningStart,
    /// `{"type":"mining_stop"}`.
    MiningStop,
    /// `{"type":"hashrate","payload":{"rate":x}}` with a valid rate.
    Hashrate(f64),
    /// Longer than [`MAX_MESSAGE_CHARS`]: answered with ERROR and close 1009.
    TooLarge,
    /// Anything else: ignored, the connection stays open (docs/protocol.md#how-a-solution-is-checked).
    Ignored,
}

/// Classifies a player's text frame.
pub(crate) fn parse_player_message(text: &str) -> PlayerMessage {
    if text.len() > MAX_MESSAGE_CHARS && text.chars().count() > MAX_MESSAGE_CHARS {
        return PlayerMessage::TooLarge;
    }
    if text == "ping" {
        return PlayerMessage::Ping;
    }
    let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
        return PlayerMessage::Ignored;
    };
    match message.get("type").and_then(Value::as_str) {
        Some("ping") => PlayerMessage::Ping,
        Some("mining_start") => PlayerMessage::MiningStart,
        Some("mining_stop") => PlayerMessage::MiningStop,
        Some("hashrate") => message
            .get("payload")
            .and_then(|p| p.get("rate"))
            .and_then(validate_rate)
            .map_or(PlayerMessage::Ignored, PlayerMessage::Hashrate),
        _ => PlayerMessage::Ignored,
    }
}

/// What a player socket does with an event.
#[derive(Debug, Clone, PartialEq)]
enum Reaction {
    Send(Arc<str>),
    Close(u16, String),
    Nothing,
}

fn react(event: Event, me: &PlayerIdentity) -> Reaction {
    match event {
        Event::Broadcast { message, .. } => Reaction::Send(message),
        Event::ToSession { token, message } if token == me.token => Reaction::Send(message),
        Event::CloseIp { ip, code, reason } if ip == me.ip => Reaction::Close(code, reason),
        Event::CloseAll { code, reason } => Reaction::Close(code, reason),
        Event::CloseConnection {
            connection,
            code,
            reason,
        } if connection == me.connection => Reaction::Close(code, reason),
        _ => Reaction::Nothing,
    }
}

struct PlayerIdentity {
    ip: std::net::IpAddr,
    connection: ConnectionId,
    token: String,
}

/// Resolves once the instance begins its graceful shutdown (at once if it already has).
async fn wait_for_shutdown(draining: &mut tokio::sync::watch::Receiver<bool>) {
    if draining.wait_for(|d| *d).await.is_err() {
        // The service is gone: nothing will ever shut this socket down from here.
        std::future::pending::<()>().await;
    }
}

/// The close frame of a graceful shutdown: 1001, so the page reconnects (elsewhere).
fn going_away() -> WsOutgoing {
    WsOutgoing::Close {
        code: wire::CLOSE_GOING_AWAY,
        reason: wire::SHUTTING_DOWN.into(),
    }
}

/// Sends one frame within the send timeout; false when the socket failed or is too slow.
/// A send that completes at once (room in the socket: nearly always) arms no timer.
async fn send<S>(socket: &mut S, frame: WsOutgoing, timeout: Duration) -> bool
where
    S: Sink<WsOutgoing> + Unpin,
{
    use std::task::Poll;
    let mut sending = std::pin::pin!(socket.send(frame));
    let sent_at_once = std::future::poll_fn(|cx| match sending.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(Some(result.is_ok())),
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    if let Some(sent) = sent_at_once {
        return sent;
    }
    // The socket is full: wait for room, at most `timeout` (boxed, so the timer takes no room
    // in every idle socket's state).
    let waiting = Box::pin(tokio::time::timeout(timeout, sending));
    matches!(waiting.await, Ok(Ok(())))
}

/// One socket in this many records the broadcast lag: the histogram still shows the spread,
/// without every socket of a fan-out touching its shared counters.
const LAG_SAMPLE: u64 = 16;

/// Drives an admitted player socket until it closes; cleans up after it.
pub(crate) async fn run_player<S, E>(
    service: Arc<PuzzleService>,
    admission: PlayerAdmission,
    mut socket: S,
) where
    S: Stream<Item = Result<WsIncoming, E>> + Sink<WsOutgoing> + Unpin + Send,
{
    let PlayerAdmission {
        ip,
        connection,
        reconnect_token,
        slot,
    } = admission;
    let timeout = service.config.network.ws_send_timeout;
    // Subscribe before anything else, so no reset published from here on is missed.
    let mut events = service.seams.events.subscribe();

    // Joining and leaving run once per socket: boxed, their state is held only while they run,
    // not for the socket's whole life.
    let joined = Box::pin(join_session(
        &service,
        &mut socket,
        ip,
        connection,
        reconnect_token,
        timeout,
    ));
    let Some(token) = joined.await else {
        return;
    };
    let now = now_millis();
    let mut player = PlayerSocket {
        service: &service,
        socket: &mut socket,
        me: PlayerIdentity {
            ip,
            connection,
            token,
        },
        budget: MessageBudget::new(
            service.config.network.ws_message_rate.unwrap_or_default(),
            now,
        ),
        mining: Coalesced::new(now),
        rate: Coalesced::new(now),
        write_timer: None,
    };

    player.serve(&mut events).await;
    Box::pin(service.player_left(connection, &player.me.token)).await;
    drop(slot);
}

/// Registers the player's session and sends its greeting, if any: the session token, or `None`
/// when the socket is done (closed with 1011 if the session store is down).
async fn join_session<S>(
    service: &PuzzleService,
    socket: &mut S,
    ip: std::net::IpAddr,
    connection: ConnectionId,
    reconnect_token: Option<String>,
    timeout: Duration,
) -> Option<String>
where
    S: Sink<WsOutgoing> + Unpin,
{
    match service.player_joined(ip, connection, reconnect_token).await {
        Ok((token, None)) => Some(token),
        Ok((token, Some(greeting))) => {
            if !send(socket, WsOutgoing::Text(greeting.into()), timeout).await {
                service.player_left(connection, &token).await;
                return None;
            }
            Some(token)
        }
        Err(e) => {
            tracing::error!(error = %e, "session store unavailable at connect");
            let close = WsOutgoing::Close {
                code: 1011,
                reason: "Service unavailable".into(),
            };
            let _ = send(socket, close, timeout).await;
            None
        }
    }
}

/// A mining declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mining {
    Started,
    Stopped,
}

/// Now, in the milliseconds the socket's pacing counts in.
fn now_millis() -> u64 {
    monotonic_millis(tokio::time::Instant::now())
}

/// A joined player's socket, with what answering its messages and events needs.
struct PlayerSocket<'a, S> {
    service: &'a PuzzleService,
    socket: &'a mut S,
    me: PlayerIdentity,
    /// The frames it may still send (unused without a limit).
    budget: MessageBudget,
    /// Its newest mining declaration not yet written to the shared store.
    mining: Coalesced<Mining>,
    /// Its newest hashrate report not yet written.
    rate: Coalesced<f64>,
    /// Fires when a held declaration or report is due (boxed, and only while one is held: an
    /// idle socket carries no timer).
    write_timer: Option<Pin<Box<Sleep>>>,
}

/// Resolves when `timer` fires; never without one.
fn fired(timer: &mut Option<Pin<Box<Sleep>>>) -> impl std::future::Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| match timer {
        Some(timer) => timer.as_mut().poll(cx),
        None => std::task::Poll::Pending,
    })
}

impl<S> PlayerSocket<'_, S>
where
    S: Sink<WsOutgoing> + Unpin,
{
    /// Answers the player's frames and passes on its events until the socket is to close.
    async fn serve<E>(&mut self, events: &mut broadcast::Receiver<Event>)
    where
        S: Stream<Item = Result<WsIncoming, E>>,
    {
        // A shutdown that began before this socket subscribed is not among its events.
        if *self.service.draining().borrow() {
            let _ = send(self.socket, going_away(), self.timeout()).await;
            return;
        }
        loop {
            let flow = tokio::select! {
                frame = self.socket.next() => match frame {
                    Some(Ok(WsIncoming::Close) | Err(_)) | None => ControlFlow::Break(()),
                    Some(Ok(_)) if !self.within_budget() => Box::pin(self.close_flood::<E>()).await,
                    // Boxed: a client's message is rare beside the events, and its handling
                    // (store calls) would otherwise size every idle socket's state.
                    Some(Ok(WsIncoming::Text(text))) => Box::pin(self.on_text(&text)).await,
                    Some(Ok(WsIncoming::Binary | WsIncoming::Control)) => ControlFlow::Continue(()),
                },
                event = events.recv() => self.on_event(event).await,
                () = fired(&mut self.write_timer) => {
                    Box::pin(self.write_due()).await;
                    ControlFlow::Continue(())
                }
            };
            if flow.is_break() {
                break;
            }
        }
    }

    /// How long a send may take before the socket counts as too slow.
    fn timeout(&self) -> Duration {
        self.service.config.network.ws_send_timeout
    }

    /// Takes a frame from the socket's budget; false when it has none left.
    fn within_budget(&mut self) -> bool {
        match self.service.config.network.ws_message_rate {
            Some(rate) => self.budget.take(rate, now_millis()),
            None => true,
        }
    }

    /// Closes a socket that sent more frames than its budget with 1008, then reads and drops
    /// what the client still sends, up to its own close frame and for at most
    /// [`FLOOD_CLOSE_DRAIN`]: a connection closed with unread data is reset, and the reset can
    /// overtake the close frame, so the client would never learn why.
    async fn close_flood<E>(&mut self) -> ControlFlow<()>
    where
        S: Stream<Item = Result<WsIncoming, E>>,
    {
        crate::client_log::client_warn!(ip = %self.me.ip, token = %crate::session::preview(&self.me.token), "socket closed: too many messages");
        self.service.metrics.flooding_socket();
        let close = WsOutgoing::Close {
            code: wire::CLOSE_POLICY,
            reason: TOO_MANY_MESSAGES.into(),
        };
        if send(self.socket, close, self.timeout()).await {
            let drain = async {
                while let Some(Ok(frame)) = self.socket.next().await {
                    if frame == WsIncoming::Close {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(FLOOD_CLOSE_DRAIN, drain).await;
        }
        ControlFlow::Break(())
    }

    /// A mining declaration: written at once, or held until its interval ends.
    async fn declare_mining(&mut self, mining: Mining) {
        if let Some(mining) = self
            .mining
            .offer(mining, now_millis(), DECLARATION_INTERVAL_MS)
        {
            self.write_mining(mining).await;
        }
        self.arm_write_timer();
    }

    /// A hashrate report: written at once, or held until its interval ends.
    async fn declare_rate(&mut self, rate: f64) {
        if let Some(rate) = self.rate.offer(rate, now_millis(), DECLARATION_INTERVAL_MS) {
            self.write_rate(rate).await;
        }
        self.arm_write_timer();
    }

    /// Writes the held declaration and report whose interval has ended.
    async fn write_due(&mut self) {
        let now = now_millis();
        if let Some(mining) = self.mining.due(now, DECLARATION_INTERVAL_MS) {
            self.write_mining(mining).await;
        }
        if let Some(rate) = self.rate.due(now, DECLARATION_INTERVAL_MS) {
            self.write_rate(rate).await;
        }
        self.arm_write_timer();
    }

    async fn write_mining(&mut self, mining: Mining) {
        let connection = self.me.connection;
        match mining {
            Mining::Started => self.service.mining_started(connection).await,
            Mining::Stopped => self.service.mining_stopped(connection).await,
        }
    }

    async fn write_rate(&mut self, rate: f64) {
        (self.service)
            .hashrate_reported(self.me.connection, self.me.ip, rate)
            .await;
    }

    /// Sets the write timer to the earliest held update's deadline, or drops it.
    fn arm_write_timer(&mut self) {
        let deadline = match (self.mining.deadline(), self.rate.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (deadline, &mut self.write_timer) {
            (None, timer) => *timer = None,
            (Some(deadline), Some(timer)) => timer.as_mut().reset(monotonic_instant(deadline)),
            (Some(deadline), timer) => {
                *timer = Some(Box::pin(tokio::time::sleep_until(monotonic_instant(
                    deadline,
                ))));
            }
        }
    }

    /// Answers a text frame; breaks when the socket is to close.
    async fn on_text(&mut self, text: &str) -> ControlFlow<()> {
        let service = self.service;
        match parse_player_message(text) {
            PlayerMessage::TooLarge => {
                let error = WsOutgoing::Text(wire::error("Message too large").into());
                let _ = send(self.socket, error, self.timeout()).await;
                let close = WsOutgoing::Close {
                    code: wire::CLOSE_TOO_BIG,
                    reason: "Message too large".into(),
                };
                let _ = send(self.socket, close, self.timeout()).await;
                return ControlFlow::Break(());
            }
            PlayerMessage::Ping => {
                let pong = wire::pong(service.connections.players());
                return self.deliver(pong.into()).await;
            }
            PlayerMessage::MiningStart => self.declare_mining(Mining::Started).await,
            PlayerMessage::MiningStop => self.declare_mining(Mining::Stopped).await,
            PlayerMessage::Hashrate(rate) => self.declare_rate(rate).await,
            PlayerMessage::Ignored => {}
        }
        ControlFlow::Continue(())
    }

    /// Passes on an event meant for this player; breaks when the socket is to close.
    async fn on_event(&mut self, event: Result<Event, RecvError>) -> ControlFlow<()> {
        let event = match event {
            Ok(event) => event,
            Err(RecvError::Lagged(_)) => {
                self.service.metrics.slow_socket();
                let close = WsOutgoing::Close {
                    code: wire::CLOSE_POLICY,
                    reason: "Too slow".into(),
                };
                let _ = send(self.socket, close, Duration::from_millis(100)).await;
                return ControlFlow::Break(());
            }
            Err(RecvError::Closed) => return ControlFlow::Break(()),
        };
        if let Event::Broadcast {
            puzzle_version: Some(_),
            published_at,
            ..
        } = &event
            && self.me.connection.is_multiple_of(LAG_SAMPLE)
        {
            let lag = self.service.now() - published_at;
            self.service.metrics.broadcast_lag_seconds.observe(lag);
        }
        match react(event, &self.me) {
            Reaction::Send(message) => self.deliver(message).await,
            Reaction::Close(code, reason) => {
                let close = WsOutgoing::Close { code, reason };
                let _ = send(self.socket, close, self.timeout()).await;
                ControlFlow::Break(())
            }
            Reaction::Nothing => ControlFlow::Continue(()),
        }
    }

    /// Sends a text frame; breaks, counting a slow socket, when it fails or is too slow.
    async fn deliver(&mut self, message: Arc<str>) -> ControlFlow<()> {
        if send(self.socket, WsOutgoing::Text(message), self.timeout()).await {
            ControlFlow::Continue(())
        } else {
            self.service.metrics.slow_socket();
            ControlFlow::Break(())
        }
    }
}

/// Drives an authenticated admin socket: a STATUS_UPDATE every 2 s until it closes.
pub(crate) async fn run_admin<S, E>(
    service: Arc<PuzzleService>,
    admin: Arc<AdminService>,
    mut socket: S,
) where
    S: Stream<Item = Result<WsIncoming, E>> + Sink<WsOutgoing> + Unpin + Send,
{
    let _slot = service.connections.admin();
    let timeout = service.config.network.ws_send_timeout;
    let mut ticks = tokio::time::interval(ADMIN_STATUS_PERIOD);
    let mut draining = service.draining();
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(WsIncoming::Close) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            () = wait_for_shutdown(&mut draining) => {
                let _ = send(&mut socket, going_away(), timeout).await;
                break;
            }
            _ = ticks.tick() => {
                let update = match admin.status_with_hashrate().await {
                    Ok((status, total)) => wire::status_update(&status, total),
                    Err(e) => {
                        tracing::warn!(error = %e, "admin status unavailable");
                        continue;
                    }
                };
                if !send(&mut socket, WsOutgoing::Text(update.into()), timeout).await {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket with no state of its own, so the future's size is the driver's alone.
    struct NoSocket;

    impl Stream for NoSocket {
        type Item = Result<WsIncoming, ()>;
        fn poll_next(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Pending
        }
    }

    impl Sink<WsOutgoing> for NoSocket {
        type Error = ();
        fn poll_ready(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn start_send(self: std::pin::Pin<&mut Self>, _: WsOutgoing) -> Result<(), ()> {
            Ok(())
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn an_idle_player_socket_is_small() {
        let hashpass =
            crate::HashPass::builder(crate::Config::default().with_turnstile_test_mode(true))
                .without_background_jobs()
                .build()
                .await
                .unwrap();
        let service = Arc::clone(hashpass.service());
        let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let admission = PlayerAdmission {
            ip,
            connection: 1,
            reconnect_token: None,
            slot: service.connections.reserve_unlimited(ip),
        };
        let driver = run_player(service, admission, NoSocket);
        let size = std::mem::size_of_val(&driver);
        eprintln!("player socket driver: {size} bytes");
        assert!(size <= 800, "the player socket's driver takes {size} bytes");
    }

    /// A socket driven by the test: frames in through a channel, frames out into a list.
    struct ScriptedSocket {
        incoming: tokio::sync::mpsc::UnboundedReceiver<WsIncoming>,
        outgoing: Arc<std::sync::Mutex<Vec<WsOutgoing>>>,
    }

    impl Stream for ScriptedSocket {
        type Item = Result<WsIncoming, ()>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            self.incoming.poll_recv(cx).map(|frame| frame.map(Ok))
        }
    }

    impl Sink<WsOutgoing> for ScriptedSocket {
        type Error = ();
        fn poll_ready(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn start_send(self: std::pin::Pin<&mut Self>, frame: WsOutgoing) -> Result<(), ()> {
            self.outgoing.lock().unwrap().push(frame);
            Ok(())
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// The in-memory hashrate store, counting its writes.
    #[derive(Default)]
    struct CountingHashrate {
        inner: crate::hashrate::MemoryHashrateStore,
        reports: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl crate::hashrate::HashrateStore for CountingHashrate {
        async fn report(
            &self,
            connection: ConnectionId,
            ip: std::net::IpAddr,
            rate: f64,
            overspeed: bool,
            now: f64,
        ) -> Result<(), crate::error::StoreError> {
            self.reports
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner
                .report(connection, ip, rate, overspeed, now)
                .await
        }
        async fn remove(&self, connection: ConnectionId) -> Result<(), crate::error::StoreError> {
            self.inner.remove(connection).await
        }
        async fn fresh(
            &self,
            now: f64,
            stale: Duration,
        ) -> Result<Vec<crate::hashrate::MinerReport>, crate::error::StoreError> {
            self.inner.fresh(now, stale).await
        }
        async fn clear(&self) -> Result<(), crate::error::StoreError> {
            self.inner.clear().await
        }
        async fn push_chart(
            &self,
            point: crate::puzzle_store::ChartPoint,
        ) -> Result<(), crate::error::StoreError> {
            self.inner.push_chart(point).await
        }
        async fn chart(
            &self,
        ) -> Result<Vec<crate::puzzle_store::ChartPoint>, crate::error::StoreError> {
            self.inner.chart().await
        }
    }

    /// A player socket on a fresh in-memory instance with `rate` as its message budget: the
    /// service, the hashrate store, the frames' sender and the frames sent back.
    async fn scripted_player(
        rate: Option<crate::message_budget::MessageRate>,
    ) -> (
        Arc<PuzzleService>,
        Arc<CountingHashrate>,
        tokio::sync::mpsc::UnboundedSender<WsIncoming>,
        Arc<std::sync::Mutex<Vec<WsOutgoing>>>,
        tokio::task::JoinHandle<()>,
    ) {
        let hashrate = Arc::new(CountingHashrate::default());
        let config = crate::Config::default()
            .with_turnstile_test_mode(true)
            .with_ws_message_rate(rate);
        let hashpass = crate::HashPass::builder(config)
            .hashrate_store(hashrate.clone())
            .without_background_jobs()
            .build()
            .await
            .unwrap();
        let service = Arc::clone(hashpass.service());
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let admission = PlayerAdmission {
            ip,
            connection: 1,
            reconnect_token: None,
            slot: service.connections.reserve_unlimited(ip),
        };
        let (frames, incoming) = tokio::sync::mpsc::unbounded_channel();
        let outgoing = Arc::new(std::sync::Mutex::new(Vec::new()));
        let socket = ScriptedSocket {
            incoming,
            outgoing: Arc::clone(&outgoing),
        };
        let driver = tokio::spawn(run_player(Arc::clone(&service), admission, socket));
        (service, hashrate, frames, outgoing, driver)
    }

    fn text(frame: &str) -> WsIncoming {
        WsIncoming::Text(frame.to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_declarations_costs_two_writes_and_keeps_the_last() {
        let (service, hashrate, frames, _, driver) = scripted_player(None).await;
        for i in 0..10_000u32 {
            frames
                .send(text(&format!(
                    r#"{{"type":"hashrate","payload":{{"rate":{i}}}}}"#
                )))
                .unwrap();
            let mining = if i % 2 == 0 {
                "mining_start"
            } else {
                "mining_stop"
            };
            frames
                .send(text(&format!(r#"{{"type":"{mining}"}}"#)))
                .unwrap();
        }
        frames.send(text(r#"{"type":"mining_start"}"#)).unwrap();
        frames
            .send(text(r#"{"type":"hashrate","payload":{"rate":42.5}}"#))
            .unwrap();
        // The whole burst arrives within the first interval: the first report went out at once,
        // the last is held for the interval's end.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let reports = || hashrate.reports.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(reports(), 1);
        let now = service.now();
        let stale = Duration::from_secs(10);
        let seed = service.state().await.unwrap().seed;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            reports(),
            2,
            "one write at the start, one at the interval's end"
        );
        let fresh = service.seams.hashrate.fresh(now, stale).await.unwrap();
        assert_eq!(fresh.iter().map(|r| r.rate).collect::<Vec<_>>(), [42.5]);
        let mining = service.seams.puzzles.mining_time(&seed, now).await.unwrap();
        assert_eq!(
            mining.active_miners, 1,
            "the last declaration (mining_start) holds"
        );
        // Nothing more is written while the socket is quiet.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(reports(), 2);
        // A final mining_stop in a new burst is not lost either.
        frames.send(text(r#"{"type":"mining_start"}"#)).unwrap();
        frames.send(text(r#"{"type":"mining_stop"}"#)).unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let mining = service.seams.puzzles.mining_time(&seed, now).await.unwrap();
        assert_eq!(mining.active_miners, 0);
        drop(frames);
        driver.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_is_closed_with_1008() {
        let rate = crate::message_budget::MessageRate::DEFAULT;
        let (_, hashrate, frames, outgoing, driver) = scripted_player(Some(rate)).await;
        for _ in 0..1_000 {
            // The sender may find the socket gone part-way: that is the point.
            let _ = frames.send(text("ping"));
        }
        tokio::time::timeout(Duration::from_secs(5), driver)
            .await
            .expect("the flooding socket is closed")
            .unwrap();
        let sent = outgoing.lock().unwrap().clone();
        let pongs = sent
            .iter()
            .filter(|f| matches!(f, WsOutgoing::Text(t) if t.contains("PONG")))
            .count();
        assert_eq!(pongs, rate.burst as usize, "the burst is answered, no more");
        assert_eq!(
            sent.last(),
            Some(&WsOutgoing::Close {
                code: wire::CLOSE_POLICY,
                reason: TOO_MANY_MESSAGES.into()
            })
        );
        assert_eq!(
            hashrate.reports.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_honest_pace_is_never_closed() {
        let rate = crate::message_budget::MessageRate::DEFAULT;
        let (_, _, frames, outgoing, driver) = scripted_player(Some(rate)).await;
        // Ten minutes of the page at its busiest: a report every 2 s, a ping every 10 s, and a
        // visitor toggling pause ten times a second.
        for tenth in 0..6_000u32 {
            let mining = if tenth % 2 == 0 {
                "mining_stop"
            } else {
                "mining_start"
            };
            frames
                .send(text(&format!(r#"{{"type":"{mining}"}}"#)))
                .unwrap();
            if tenth % 20 == 0 {
                frames
                    .send(text(r#"{"type":"hashrate","payload":{"rate":3.5}}"#))
                    .unwrap();
            }
            if tenth % 100 == 0 {
                frames.send(text("ping")).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!driver.is_finished(), "the socket is still open");
        let closes = outgoing
            .lock()
            .unwrap()
            .iter()
            .filter(|f| matches!(f, WsOutgoing::Close { .. }))
            .count();
        assert_eq!(closes, 0);
        drop(frames);
        driver.await.unwrap();
    }

    #[test]
    fn player_messages() {
        assert_eq!(parse_player_message("ping"), PlayerMessage::Ping);
        assert_eq!(
            parse_player_message(r#"{"type":"ping"}"#),
            PlayerMessage::Ping
        );
        assert_eq!(
            parse_player_message(r#"{"type":"mining_start"}"#),
            PlayerMessage::MiningStart
        );
        assert_eq!(
            parse_player_message(r#"{"type":"mining_stop"}"#),
            PlayerMessage::MiningStop
        );
        assert_eq!(
            parse_player_message(r#"{"type":"hashrate","payload":{"rate":2.5,"timestamp":1}}"#),
            PlayerMessage::Hashrate(2.5)
        );
        for ignored in [
            r#"{"type":"hashrate","payload":"x"}"#,
            r#"{"type":"hashrate","payload":{"rate":-1}}"#,
            r#"{"type":"hashrate","payload":{"rate":true}}"#,
            r#"{"type":"hashrate","payload":{"rate":1e300}}"#,
            r#"{"type":"hashrate"}"#,
            r#"[1,2]"#,
            "PING",
            "{not json",
            r#"{"type":42}"#,
            "\u{0}\u{fffd}",
        ] {
            assert_eq!(
                parse_player_message(ignored),
                PlayerMessage::Ignored,
                "{ignored}"
            );
        }
    }

    #[test]
    fn size_limit_counts_characters() {
        assert_eq!(
            parse_player_message(&"a".repeat(4097)),
            PlayerMessage::TooLarge
        );
        assert_eq!(
            parse_player_message(&"a".repeat(4096)),
            PlayerMessage::Ignored
        );
        // 4096 three-byte characters are within the limit.
        assert_eq!(
            parse_player_message(&"é".repeat(4096)),
            PlayerMessage::Ignored
        );
        assert_eq!(
            parse_player_message(&"é".repeat(4097)),
            PlayerMessage::TooLarge
        );
    }

    #[test]
    fn events_reach_the_right_sockets() {
        let me = PlayerIdentity {
            ip: "1.1.1.1".parse().unwrap(),
            connection: 7,
            token: "t".into(),
        };
        let msg: Arc<str> = Arc::from("m");
        assert_eq!(
            react(
                Event::ToSession {
                    token: "u".into(),
                    message: msg.clone()
                },
                &me
            ),
            Reaction::Nothing
        );
        assert_eq!(
            react(
                Event::ToSession {
                    token: "t".into(),
                    message: msg.clone()
                },
                &me
            ),
            Reaction::Send(msg)
        );
        assert_eq!(
            react(
                Event::CloseIp {
                    ip: "2.2.2.2".parse().unwrap(),
                    code: 1000,
                    reason: "x".into()
                },
                &me
            ),
            Reaction::Nothing
        );
        assert_eq!(
            react(
                Event::CloseConnection {
                    connection: 7,
                    code: 1008,
                    reason: "r".into()
                },
                &me
            ),
            Reaction::Close(1008, "r".into())
        );
    }
}
