//! The `fanout` scenario: admin reset → PUZZLE_RESET on every held socket, and what it costs.
//!
//! For each `--sockets` count:
//! - **Readers.** That many sockets open to `--sockets-base` (else `--base`), each from its own
//!   127.x.y.z address with a fresh captcha token, and read their SESSION_TOKEN greeting once.
//!   From then on a socket is held by a lean reader: it reads raw bytes from the TCP stream
//!   (server frames are unmasked) into a small buffer of its own, looks for the bytes
//!   `PUZZLE_RESET` (a match split across reads included) and, on a match, stores the time in
//!   the socket's preallocated slot. It answers nothing, parses nothing else, allocates nothing
//!   per frame and sends on no channel. The readers are threads of their own (`--readers`),
//!   apart from the trigger, each polling its sockets in a loop that never sleeps in the kernel
//!   while frames arrive: it naps [`NAP`] when none is ready, so that the server's sends never
//!   wake it. On loopback a send runs the receiver's side inside the sender's system call, and
//!   a reader blocked in `epoll_wait` would be woken (and the sender preempted) once per frame,
//!   on the server's account: a client on another machine costs the server no such wake-up.
//!   An arrival is so recorded up to one nap (and the timer's slack) late.
//! - **Trigger.** Each round, on a thread, runtime and HTTP connection of its own: the clock is
//!   read just before `POST /api/admin/reset-puzzle` (which must answer 200), then the round
//!   waits until every socket saw the frame or 5 s passed; the rest are missing.
//! - **Report.** Latency median / p99 / max / missing over all deliveries and each round's
//!   median; the server's CPU (`/proc/PID/stat`, `--pid`) and the tool's own CPU per delivered
//!   frame over the rounds only; server RSS per idle socket, and 10 s after the sockets closed.
//!
//! One ordinary socket, the watcher, counts the other broadcasts (NETWORK_HASHRATE every 5 s)
//! that fall in the measured interval, so that the server's CPU is divided by every frame it
//! delivered in it, not only the resets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::{Options, UA, client_ip, cpu_seconds, percentile, rss_kib, session_at};

/// The bytes that mark a PUZZLE_RESET frame.
const MARK: &[u8] = b"PUZZLE_RESET";
/// Bytes a reader keeps from one read to the next, so that a split mark is still found.
const CARRY: usize = MARK.len() - 1;
/// The readers' read buffer (a PUZZLE_RESET frame is about 200 bytes).
const READ_BUFFER: usize = 512;
/// A reader's pause when none of its sockets is ready, while frames are arriving.
const NAP: Duration = Duration::from_micros(50);
/// How long after its last frame a reader keeps napping rather than waiting in the kernel.
const BUSY: Duration = Duration::from_millis(20);
/// A reader's wait in the kernel when no frame has come for [`BUSY`]: also how soon it sees
/// that it is to stop.
const IDLE_WAIT: Duration = Duration::from_millis(20);
/// How long a round waits for its frames; a socket that has not seen it by then is missing.
const ROUND_TIMEOUT: Duration = Duration::from_secs(5);
/// Quiet time before each round.
const PAUSE: Duration = Duration::from_millis(200);
/// How often the trigger looks at the slots while a round is under way.
const POLL: Duration = Duration::from_millis(1);
/// Sockets being opened at once, over all reader runtimes.
const OPENING: usize = 64;
/// Longest wait for one socket's handshake and greeting.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the sockets stay open and idle before the server's memory is read.
const SETTLE: Duration = Duration::from_secs(1);
/// How long after the sockets closed the server's memory is read again.
const AFTER_CLOSE: Duration = Duration::from_secs(10);

/// How many reader threads hold the sockets (`--readers`), each every N-th of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Readers(pub(super) usize);

impl Readers {
    /// Reads `N` (N ≥ 1).
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        match text.trim().parse() {
            Ok(0) => Err("--readers: at least one thread".into()),
            Ok(n) => Ok(Self(n)),
            Err(e) => Err(format!("--readers {text:?}: {e} (a number of threads)")),
        }
    }
}

impl std::fmt::Display for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            1 => write!(f, "1 reader thread"),
            n => write!(f, "{n} reader threads"),
        }
    }
}

/// What the readers write and the trigger reads.
struct Board {
    /// The zero of every time on the board.
    epoch: Instant,
    /// Per socket: when it last saw PUZZLE_RESET, in ns since `epoch` (0: not since cleared).
    arrivals: Box<[AtomicU64]>,
    /// Readers whose socket closed or failed.
    closed: AtomicUsize,
}

impl Board {
    /// A board for `count` sockets.
    fn new(count: usize) -> Self {
        Self {
            epoch: Instant::now(),
            arrivals: (0..count).map(|_| AtomicU64::new(0)).collect(),
            closed: AtomicUsize::new(0),
        }
    }

    /// Now, in ns since the epoch (never 0).
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// The last bytes a socket's set-up read past its greeting (at most [`CARRY`] of them).
struct Carry {
    /// The bytes.
    bytes: [u8; CARRY],
    /// How many of them count.
    len: usize,
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w[0] == needle[0] && w == needle)
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A complete server frame at the start of `bytes`: (opcode, payload start, frame end);
/// `None` while it is incomplete.
fn frame(bytes: &[u8]) -> Result<Option<(u8, usize, usize)>, String> {
    let [first, second, rest @ ..] = bytes else {
        return Ok(None);
    };
    if second & 0x80 != 0 {
        return Err("the server sent a masked frame".into());
    }
    let (len, start): (usize, usize) = match second & 0x7f {
        126 => match rest {
            [a, b, ..] => (usize::from(u16::from_be_bytes([*a, *b])), 4),
            _ => return Ok(None),
        },
        127 => match rest.get(..8) {
            Some(len) => (
                usize::try_from(u64::from_be_bytes(len.try_into().expect("8 bytes")))
                    .map_err(|_| "oversized frame")?,
                10,
            ),
            None => return Ok(None),
        },
        n => (usize::from(n), 2),
    };
    let end = start.checked_add(len).ok_or("oversized frame")?;
    Ok((bytes.len() >= end).then_some((first & 0x0f, start, end)))
}

/// Reads more of the set-up's bytes into `got`.
async fn read_more(stream: &mut TcpStream, got: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 1024];
    match stream.read(&mut chunk).await {
        Ok(0) => Err("the server closed the socket".into()),
        Ok(n) => {
            got.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Opens the player socket of client `n` to `addr` with captcha `token`: the WebSocket
/// handshake (the answer's status and accept key checked) and the SESSION_TOKEN greeting,
/// read once. Returns the raw stream and what was read past the greeting.
async fn open_lean(addr: SocketAddr, n: usize, token: &str) -> Result<(TcpStream, Carry), String> {
    let socket = tokio::net::TcpSocket::new_v4()
        .map_err(|e| format!("socket: {e} (is ulimit -n above the socket count?)"))?;
    socket
        .bind(SocketAddr::new(client_ip(n), 0))
        .map_err(|e| format!("bind {}: {e}", client_ip(n)))?;
    let mut stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut got = handshake(&mut stream, addr, token).await?;
    read_greeting(&mut stream, &mut got).await?;
    let mut carry = Carry {
        bytes: [0; CARRY],
        len: got.len().min(CARRY),
    };
    carry.bytes[..carry.len].copy_from_slice(&got[got.len() - carry.len..]);
    Ok((stream, carry))
}

/// Sends the upgrade request for `/api/ws?token=TOKEN` and checks the answer's status and
/// accept key; returns what was read past the answer's head.
async fn handshake(
    stream: &mut TcpStream,
    addr: SocketAddr,
    token: &str,
) -> Result<Vec<u8>, String> {
    let key = generate_key();
    let request = format!(
        "GET /api/ws?token={token} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {UA}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let mut got = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(at) = find(&got, b"\r\n\r\n") {
            break at + 4;
        }
        if got.len() > 16 * 1024 {
            return Err("the handshake's answer has no end".into());
        }
        read_more(stream, &mut got).await?;
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("the handshake was answered {status:?}"));
    }
    let accept = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| value.trim())
    });
    if accept != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(format!(
            "the handshake's Sec-WebSocket-Accept is {accept:?}"
        ));
    }
    got.drain(..head_end);
    Ok(got)
}

/// Reads frames (`got` holds the first bytes) up to and including the SESSION_TOKEN greeting;
/// leaves in `got` what was read past it. A close frame before it is an error.
async fn read_greeting(stream: &mut TcpStream, got: &mut Vec<u8>) -> Result<(), String> {
    loop {
        let Some((opcode, start, end)) = frame(got)? else {
            read_more(stream, got).await?;
            continue;
        };
        match opcode {
            0x8 => {
                let payload = &got[start..end];
                let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default());
                return Err(format!("closed before SESSION_TOKEN: {code:?} {reason}"));
            }
            0x1 if contains(&got[start..end], b"\"SESSION_TOKEN\"") => {
                got.drain(..end);
                return Ok(());
            }
            _ => {
                got.drain(..end);
            }
        }
    }
}

/// Looks for the mark in the first `end` bytes of `buffer`, then moves their last [`CARRY`]
/// bytes to its front, so that a mark split across reads is found by the next one: (found,
/// bytes kept).
fn scan(buffer: &mut [u8], end: usize) -> (bool, usize) {
    let found = contains(&buffer[..end], MARK);
    let kept = end.min(CARRY);
    buffer.copy_within(end - kept..end, 0);
    (found, kept)
}

/// A socket held by a reader.
struct Held {
    /// The stream, non-blocking, registered with the reader's poll under its index.
    stream: mio::net::TcpStream,
    /// The socket's slot on the board.
    slot: usize,
    /// The bytes kept from its last read (a mark may be split across reads).
    carry: Carry,
    /// Whether it is still open.
    open: bool,
}

/// Opens the sockets of `slots` on the current runtime, at most `at_once` at a time: each
/// with its slot and the bytes read past its greeting.
async fn open_group(
    addr: SocketAddr,
    slots: Vec<usize>,
    tag: String,
    at_once: usize,
) -> Result<Vec<(usize, TcpStream, Carry)>, String> {
    let mut opening = futures_util::stream::iter(slots)
        .map(|slot| {
            let token = format!("bench-{tag}-{slot}");
            async move {
                let opened = tokio::time::timeout(OPEN_TIMEOUT, open_lean(addr, slot + 1, &token))
                    .await
                    .unwrap_or_else(|_| Err("no SESSION_TOKEN in time".into()));
                (slot, opened)
            }
        })
        .buffer_unordered(at_once.max(1));
    let mut opened = Vec::new();
    while let Some((slot, result)) = opening.next().await {
        let (stream, carry) = result.map_err(|e| format!("socket {}: {e}", slot + 1))?;
        opened.push((slot, stream, carry));
    }
    Ok(opened)
}

/// One reader thread's sockets and the poll that watches them.
struct Reader {
    /// The poll, each socket registered under its index in `held`.
    poll: mio::Poll,
    /// The sockets.
    held: Vec<Held>,
}

impl Reader {
    /// Takes the opened sockets off the runtime that opened them.
    fn new(opened: Vec<(usize, TcpStream, Carry)>) -> Result<Self, String> {
        let poll = mio::Poll::new().map_err(|e| format!("poll: {e}"))?;
        let mut held = Vec::with_capacity(opened.len());
        for (index, (slot, stream, carry)) in opened.into_iter().enumerate() {
            let stream = stream.into_std().map_err(|e| e.to_string())?;
            let mut stream = mio::net::TcpStream::from_std(stream);
            poll.registry()
                .register(&mut stream, mio::Token(index), mio::Interest::READABLE)
                .map_err(|e| format!("poll: {e}"))?;
            held.push(Held {
                stream,
                slot,
                carry,
                open: true,
            });
        }
        Ok(Self { poll, held })
    }

    /// Reads every socket as its bytes come until `stop`, storing each PUZZLE_RESET's arrival
    /// on `board`; while frames are arriving it polls and naps instead of waiting in the
    /// kernel (see the module's documentation).
    fn read_until(mut self, stop: &AtomicBool, board: &Board) {
        let mut events = mio::Events::with_capacity(1024);
        let mut buffer = [0u8; READ_BUFFER];
        let mut last_frame: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            let busy = last_frame.is_some_and(|at| at.elapsed() < BUSY);
            let wait = if busy { Duration::ZERO } else { IDLE_WAIT };
            if self.poll.poll(&mut events, Some(wait)).is_err() {
                continue;
            }
            if events.is_empty() {
                if busy {
                    std::thread::sleep(NAP);
                }
                continue;
            }
            last_frame = Some(Instant::now());
            for event in &events {
                if let Some(held) = self.held.get_mut(event.token().0) {
                    read_all(held, &mut buffer, board);
                }
            }
        }
    }
}

/// Reads what `held` has until it would block (its readiness is edge-triggered); stores the
/// time in its slot when a read completes the mark; counts it closed on its end or an error.
fn read_all(held: &mut Held, buffer: &mut [u8; READ_BUFFER], board: &Board) {
    use std::io::Read;
    while held.open {
        let kept = held.carry.len;
        buffer[..kept].copy_from_slice(&held.carry.bytes[..kept]);
        let end = match held.stream.read(&mut buffer[kept..]) {
            Ok(0) => {
                held.open = false;
                board.closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(n) => kept + n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                held.open = false;
                board.closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let (found, kept) = scan(buffer, end);
        held.carry.bytes[..kept].copy_from_slice(&buffer[..kept]);
        held.carry.len = kept;
        if found {
            board.arrivals[held.slot].store(board.now(), Ordering::Relaxed);
        }
    }
}

/// The reader threads; closing them closes every socket.
struct ReaderPool {
    /// Tells every reader to stop; its sockets close with it.
    stop: Arc<AtomicBool>,
    /// The readers' threads.
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ReaderPool {
    /// Opens `board`'s sockets to `addr` on `readers` threads; returns once every socket has
    /// its greeting (or on the first failure, with every socket closed).
    fn open(
        readers: Readers,
        addr: SocketAddr,
        board: &Arc<Board>,
        tag: &str,
    ) -> Result<Self, String> {
        let groups = readers.0;
        let count = board.arrivals.len();
        let (report, reports) = std::sync::mpsc::channel();
        let mut pool = Self {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        for group in 0..groups {
            let (report, board, tag) = (report.clone(), Arc::clone(board), tag.to_string());
            let stop = Arc::clone(&pool.stop);
            let slots: Vec<usize> = (group..count).step_by(groups).collect();
            let thread = std::thread::Builder::new()
                .name(format!("bench-readers-{group}"))
                .spawn(move || {
                    // The sockets are opened on a runtime, then read without one.
                    let opened = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())
                        .and_then(|runtime| {
                            runtime.block_on(open_group(addr, slots, tag, OPENING / groups))
                        })
                        .and_then(Reader::new);
                    match opened {
                        Ok(reader) => {
                            let _ = report.send(Ok(()));
                            drop(report);
                            reader.read_until(&stop, &board);
                        }
                        Err(e) => {
                            let _ = report.send(Err(e));
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
            pool.threads.push(thread);
        }
        drop(report);
        for _ in 0..groups {
            let failed = match reports.recv() {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(_) => "a reader thread failed".into(),
            };
            pool.close();
            return Err(failed);
        }
        Ok(pool)
    }

    /// Closes every socket and ends the readers.
    fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// One ordinary socket that counts every frame it gets, so the measured interval's other
/// broadcasts are known.
struct Watcher {
    /// PUZZLE_RESET frames seen.
    resets: Arc<AtomicU64>,
    /// Other text frames seen (NETWORK_HASHRATE and the like).
    others: Arc<AtomicU64>,
    /// Whether the socket is still open.
    open: Arc<AtomicBool>,
    /// Its reading task.
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Opens the watcher to `addr` from client 0 with captcha `token`.
    async fn start(addr: SocketAddr, token: &str) -> Result<Self, String> {
        let (mut ws, _) = session_at(addr, client_ip(0), token)
            .await
            .map_err(|e| format!("the watcher socket: {e}"))?;
        let resets = Arc::new(AtomicU64::new(0));
        let others = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicBool::new(true));
        let (r, x, o) = (resets.clone(), others.clone(), open.clone());
        let task = tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Text(text) = msg {
                    let counter = if text.contains("PUZZLE_RESET") {
                        &r
                    } else {
                        &x
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            o.store(false, Ordering::Relaxed);
        });
        Ok(Self {
            resets,
            others,
            open,
            task,
        })
    }

    /// (PUZZLE_RESET frames, other frames) so far.
    fn seen(&self) -> (u64, u64) {
        (
            self.resets.load(Ordering::Relaxed),
            self.others.load(Ordering::Relaxed),
        )
    }
}

/// The admin connection that resets the puzzle.
struct Trigger {
    /// Its client (one kept-alive connection).
    client: reqwest::Client,
    /// `POST` here.
    url: String,
    /// The admin token.
    token: String,
}

impl Trigger {
    /// A client for `base`, its connection opened by a health check.
    async fn new(base: &str, token: String) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .user_agent(UA)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let health = client
            .get(format!("{base}/api/health"))
            .send()
            .await
            .map_err(|e| format!("health: {e}"))?;
        if !health.status().is_success() {
            return Err(format!("health answered {}", health.status()));
        }
        let _ = health.bytes().await;
        Ok(Self {
            client,
            url: format!("{base}/api/admin/reset-puzzle"),
            token,
        })
    }

    /// Resets the puzzle; anything but 200 is an error.
    async fn reset(&self) -> Result<(), String> {
        let answer = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .map_err(|e| format!("reset-puzzle: {e}"))?;
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        if status != reqwest::StatusCode::OK {
            return Err(format!("reset-puzzle answered {status} {text}"));
        }
        Ok(())
    }
}

/// One round's outcome.
struct Round {
    /// Each delivery's latency, ms, sorted.
    latencies: Vec<f64>,
    /// Sockets that did not see the frame within [`ROUND_TIMEOUT`].
    missing: usize,
}

/// What the rounds of one socket count measured.
struct Rounds {
    /// Each round.
    rounds: Vec<Round>,
    /// Wall time from the first round's start to the last one's end.
    elapsed: Duration,
    /// The tool's CPU seconds over that time.
    client_cpu: Option<f64>,
    /// The server's CPU seconds over that time.
    server_cpu: Option<f64>,
    /// The same by the scheduler's clock.
    server_run: Option<f64>,
    /// Frames the watcher saw in that time: (PUZZLE_RESET, others).
    watched: (u64, u64),
}

/// Runs `count` rounds ([`one_round`]), with the CPU both sides spent and the frames the
/// watcher saw over them.
async fn rounds(
    trigger: &Trigger,
    board: &Board,
    watcher: &Watcher,
    pid: Option<u32>,
    count: usize,
) -> Result<Rounds, String> {
    let server = pid.map(|pid| pid.to_string());
    let server_cpu = || server.as_deref().and_then(cpu_seconds);
    let server_run = || pid.and_then(run_seconds);
    let began = Instant::now();
    let (client_before, server_before, run_before, watched_before) = (
        cpu_seconds("self"),
        server_cpu(),
        server_run(),
        watcher.seen(),
    );
    let mut rounds = Vec::with_capacity(count);
    for round in 0..count {
        tokio::time::sleep(PAUSE).await;
        let measured = one_round(trigger, board)
            .await
            .map_err(|e| format!("round {}: {e}", round + 1))?;
        rounds.push(measured);
    }
    let spent = |before: Option<f64>, now: Option<f64>| Some(now? - before?);
    let watched = watcher.seen();
    Ok(Rounds {
        rounds,
        elapsed: began.elapsed(),
        client_cpu: spent(client_before, cpu_seconds("self")),
        server_cpu: spent(server_before, server_cpu()),
        server_run: spent(run_before, server_run()),
        watched: (watched.0 - watched_before.0, watched.1 - watched_before.1),
    })
}

/// One round: clear the slots, read the clock, reset, wait for every socket (or the timeout),
/// collect the latencies.
async fn one_round(trigger: &Trigger, board: &Board) -> Result<Round, String> {
    for slot in board.arrivals.iter() {
        slot.store(0, Ordering::Relaxed);
    }
    let start = board.now();
    trigger.reset().await?;
    let deadline = start + u64::try_from(ROUND_TIMEOUT.as_nanos()).unwrap_or(u64::MAX);
    loop {
        let arrived = board
            .arrivals
            .iter()
            .filter(|slot| slot.load(Ordering::Relaxed) >= start)
            .count();
        if arrived == board.arrivals.len() || board.now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let mut latencies: Vec<f64> = board
        .arrivals
        .iter()
        .map(|slot| slot.load(Ordering::Relaxed))
        .filter(|&at| at >= start && at <= deadline)
        .map(|at| (at - start) as f64 / 1e6)
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(Round {
        missing: board.arrivals.len() - latencies.len(),
        latencies,
    })
}

/// The CPU seconds of `pid`'s threads by the scheduler's own clock (`/proc/PID/task/*/schedstat`,
/// nanoseconds on the CPU), beside `/proc/PID/stat`'s, which samples whole ticks: a cross-check.
fn run_seconds(pid: u32) -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let schedstat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

/// `µs per frame (s)`, or `unknown`.
fn per_frame(cpu: Option<f64>, frames: u64) -> String {
    match cpu {
        Some(cpu) if frames > 0 => {
            format!("{:.1} µs per frame ({cpu:.2} s)", cpu * 1e6 / frames as f64)
        }
        _ => "unknown".into(),
    }
}

/// The fan-out scenario (see the module's documentation).
pub(super) async fn fanout(o: &Options) -> Result<(), String> {
    let token = o
        .admin_token
        .clone()
        .ok_or("fanout resets the puzzle as the admin: give --admin-token (or ADMIN_TOKEN)")?;
    let addr = o.sockets_addr.unwrap_or(o.addr);
    let start_rss = o.pid.and_then(rss_kib);
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let watcher = Watcher::start(addr, &format!("bench-{run}-watcher")).await?;
    let o = o.clone();
    tokio::task::spawn_blocking(move || {
        let result = measure(&o, addr, token, run, start_rss, &watcher);
        watcher.task.abort();
        result
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Every socket count in turn, the trigger on this thread and a runtime of its own; `run`
/// makes this run's captcha tokens fresh.
fn measure(
    o: &Options,
    addr: SocketAddr,
    token: String,
    run: u128,
    start_rss: Option<u64>,
    watcher: &Watcher,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let trigger = runtime.block_on(Trigger::new(&o.base, token))?;
    let rounds_wanted = o.rounds.max(5);
    for &count in &o.sockets {
        if count == 0 {
            continue;
        }
        let before = o.pid.and_then(rss_kib);
        let board = Arc::new(Board::new(count));
        let opening = Instant::now();
        let pool = ReaderPool::open(o.readers, addr, &board, &format!("{run}-{count}"))?;
        let opened = opening.elapsed();
        std::thread::sleep(SETTLE);
        let idle = o.pid.and_then(rss_kib);
        println!(
            "fanout {count}: {count} sockets open in {:.1} s, held by {}",
            opened.as_secs_f64(),
            o.readers
        );
        if let (Some(before), Some(idle)) = (before, idle) {
            println!(
                "fanout {count}: server RSS {before} KiB before, {idle} KiB with the sockets open and idle: {:.2} KiB per idle socket",
                (idle as f64 - before as f64) / count as f64
            );
        }
        let closed_before = board.closed.load(Ordering::Relaxed);
        let measured = runtime.block_on(rounds(&trigger, &board, watcher, o.pid, rounds_wanted));
        let closed = board.closed.load(Ordering::Relaxed);
        pool.close();
        let measured = measured?;
        report(count, &measured, closed - closed_before, watcher);
        std::thread::sleep(AFTER_CLOSE);
        if let (Some(start), Some(before), Some(after)) =
            (start_rss, before, o.pid.and_then(rss_kib))
        {
            println!(
                "fanout {count}: server RSS {} s after the sockets closed {after} KiB ({:+} KiB from {start} KiB at the start, {:+} KiB from {before} KiB before these sockets)",
                AFTER_CLOSE.as_secs(),
                after as i64 - start as i64,
                after as i64 - before as i64,
            );
        }
    }
    Ok(())
}

/// Prints one socket count's figures.
fn report(count: usize, m: &Rounds, closed: usize, watcher: &Watcher) {
    let mut all: Vec<f64> = m
        .rounds
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    all.sort_by(f64::total_cmp);
    let missing: usize = m.rounds.iter().map(|r| r.missing).sum();
    let medians: Vec<f64> = m
        .rounds
        .iter()
        .map(|r| percentile(&r.latencies, 0.5))
        .collect();
    let list = |values: &mut dyn Iterator<Item = f64>| {
        values
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "fanout {count}: reset → PUZZLE_RESET over {} rounds: median {:.1} ms, p99 {:.1} ms, max {:.1} ms, missing {missing} ({} deliveries)",
        m.rounds.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN),
        all.len(),
    );
    let mut sorted = medians.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "fanout {count}:   per round: median {} ms (median of them {:.1}); p99 {} ms; missing {}",
        list(&mut medians.iter().copied()),
        percentile(&sorted, 0.5),
        list(&mut m.rounds.iter().map(|r| percentile(&r.latencies, 0.99))),
        m.rounds
            .iter()
            .map(|r| r.missing.to_string())
            .collect::<Vec<_>>()
            .join(" "),
    );
    report_cpu(count, m, all.len() as u64, (count - closed) as u64);
    if closed > 0 {
        println!("fanout {count}: WARNING: {closed} sockets closed during the rounds");
    }
    if !watcher.open.load(Ordering::Relaxed) {
        println!(
            "fanout {count}: WARNING: the watcher socket closed; other broadcasts may be uncounted"
        );
    }
}

/// Prints the CPU per frame of one socket count's rounds, `delivered` PUZZLE_RESET frames
/// having reached the readers, `readers_open` of them still open at the end.
fn report_cpu(count: usize, m: &Rounds, delivered: u64, readers_open: u64) {
    // Every frame the server delivered in the interval: the readers' resets, the watcher's
    // frames, and each other broadcast to every reader still open.
    let (watched_resets, watched_others) = m.watched;
    let frames = delivered + watched_resets + watched_others + watched_others * readers_open;
    if let Some(run) = m.server_run.filter(|_| frames > 0) {
        println!(
            "fanout {count}: the server's CPU by the scheduler's clock: {:.1} µs per frame",
            run * 1e6 / frames as f64
        );
    }
    println!(
        "fanout {count}: CPU over the rounds ({:.2} s): server {}, load tool {}; {frames} frames delivered ({} PUZZLE_RESET to the readers, {watched_others} other broadcast(s) to {readers_open} readers, {} to the watcher)",
        m.elapsed.as_secs_f64(),
        per_frame(m.server_cpu, frames),
        per_frame(m.client_cpu, frames),
        delivered,
        watched_resets + watched_others,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` to [`scan`] the way [`read_all`] reads them: which reads complete a mark.
    fn feed(chunks: &[&[u8]]) -> Vec<bool> {
        let mut buffer = [0u8; READ_BUFFER];
        let mut kept = 0;
        chunks
            .iter()
            .map(|chunk| {
                let end = kept + chunk.len();
                buffer[kept..end].copy_from_slice(chunk);
                let found;
                (found, kept) = scan(&mut buffer, end);
                found
            })
            .collect()
    }

    #[test]
    fn a_mark_is_found_whole_split_or_byte_by_byte_and_only_once() {
        let frame: &[u8] = b"\x81\x7e\x00\xc8{\"type\": \"PUZZLE_RESET\", \"seed\": \"ab\"}";
        assert_eq!(feed(&[frame]), [true]);
        assert_eq!(feed(&[b"{\"type\": \"NETWORK_HASHRATE\"}"]), [false]);
        let at = find(frame, MARK).unwrap();
        for cut in at + 1..at + MARK.len() {
            assert_eq!(
                feed(&[&frame[..cut], &frame[cut..]]),
                [false, true],
                "cut at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = frame.chunks(1).collect();
        let found = feed(&bytes);
        assert_eq!(found.iter().filter(|&&f| f).count(), 1);
        assert!(found[at + MARK.len() - 1]);
        // Two frames in one read count as one arrival; the next frame is found again.
        assert_eq!(feed(&[&[frame, frame].concat(), frame]), [true, true]);
    }

    #[test]
    fn frames_are_framed_by_their_length() {
        assert_eq!(frame(b"\x81").unwrap(), None);
        assert_eq!(frame(b"\x81\x03abc").unwrap(), Some((1, 2, 5)));
        assert_eq!(frame(b"\x81\x03ab").unwrap(), None);
        let long = [&[0x81, 126, 0, 200][..], &[b'x'; 200]].concat();
        assert_eq!(frame(&long).unwrap(), Some((1, 4, 204)));
        assert_eq!(frame(&long[..100]).unwrap(), None);
        assert!(frame(b"\x81\x83abcd").is_err(), "masked");
        assert_eq!(frame(b"\x88\x02\x03\xe8").unwrap(), Some((8, 2, 4)));
    }

    #[test]
    fn readers_are_a_number_of_threads() {
        assert_eq!(Readers::parse("1"), Ok(Readers(1)));
        assert_eq!(Readers::parse(" 3 "), Ok(Readers(3)));
        assert!(Readers::parse("0").is_err() && Readers::parse("pool:2").is_err());
    }
}
