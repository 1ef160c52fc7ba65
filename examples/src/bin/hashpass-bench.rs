//! Load tool: measures a running HashPass server on this machine (127.0.0.1, or a private
//! address of a network namespace here, see `scripts/bench-fanout --split`).
//!
//! Run with (server started with the offline captcha, tiny Argon2 and difficulty 1 for the
//! socket scenarios, see the README's "Measuring" section):
//! `cargo run --release --bin hashpass-bench -- --base http://127.0.0.1:8000 [scenario...]`
//!
//! Scenarios: `health`, `puzzle` (requests/s), `fanout` (at each `--sockets` count, over
//! `--rounds` ≥ 5 rounds: admin `POST /api/admin/reset-puzzle` → PUZZLE_RESET latency on every
//! socket, median / p99 / max / missing; the server's (`--pid`) and the tool's own CPU per
//! delivered frame over the rounds; server memory per idle socket and after the sockets close;
//! needs `--admin-token`; sockets held by lean raw-byte readers on runtimes of their own, see
//! the `fanout` module), `flood` (an honest
//! verify's latency alone and under each `--floods SxK` flood: S sessions on K client addresses
//! sending well-formed wrong hashes as fast as the server's limits let them; the honest verify
//! runs on a thread, runtime and connection of its own, so the flood's event loop never delays
//! it), `claim` (a winning verify's latency). Every loop is bounded.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hashpass::puzzle::Argon2Params;
use hashpass_examples::cpu_seconds;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

// A crate root's modules live beside it (`src/bin/fanout.rs` would be a binary of its own).
#[path = "hashpass-bench/fanout.rs"]
mod fanout;

/// The User-Agent of every request and socket (a browser-like one passes the server's filter).
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) hashpass-bench";

/// The command line.
const USAGE: &str = "usage: hashpass-bench --base URL [--seconds N] [--concurrency N] \
[--sockets 2000,9500] [--rounds N] [--pid PID] [--sockets-base URL] [--admin-token TOKEN] \
[--readers N] [--client-net 127|10] [--floods 8x8,60x6] [health|puzzle|fanout|flood|claim]...
  fanout: per --sockets count, admin reset -> PUZZLE_RESET latency on every socket over \
--rounds (at least 5) rounds, server (--pid) and tool CPU per frame, server memory per idle \
socket; needs --admin-token (default $ADMIN_TOKEN); --readers: N reader threads (default 1)
  --client-net: the first byte of the clients' source addresses (default 127; 10 when the tool \
runs in a network namespace that routes 10.0.0.0/8 to itself, as scripts/bench-fanout --split does)";

/// What the command line asked for.
#[derive(Clone)]
struct Options {
    /// The server, `http://IP:PORT` on this machine (see [`on_this_machine`]).
    base: String,
    /// `base`'s address.
    addr: SocketAddr,
    /// Duration of the rate scenarios.
    seconds: u64,
    /// Connections of the rate scenarios.
    concurrency: usize,
    /// The fan-out's socket counts.
    sockets: Vec<usize>,
    /// Rounds of the fan-out (at least 5), claim and flood scenarios.
    rounds: usize,
    /// The server's process, for its CPU and memory.
    pid: Option<u32>,
    /// Where the fan-out's sockets connect (another instance of the deployment); the admin
    /// reset always goes to `addr`.
    sockets_addr: Option<SocketAddr>,
    /// The admin token the fan-out resets the puzzle with.
    admin_token: Option<String>,
    /// The runtimes that hold the fan-out's sockets.
    readers: fanout::Readers,
    /// The flood scenario's floods: (sessions, addresses).
    floods: Vec<(usize, usize)>,
    /// The scenarios to run, in order.
    scenarios: Vec<String>,
}

/// Reads the command line.
fn options() -> Result<Options, String> {
    let mut o = Options {
        base: "http://127.0.0.1:8000".into(),
        addr: "127.0.0.1:8000".parse().unwrap(),
        seconds: 5,
        concurrency: 32,
        sockets: vec![2000, 9500],
        rounds: 20,
        pid: None,
        sockets_addr: None,
        admin_token: std::env::var("ADMIN_TOKEN").ok().filter(|t| !t.is_empty()),
        readers: fanout::Readers(1),
        floods: vec![(8, 8), (60, 6)],
        scenarios: Vec::new(),
    };
    let mut client_net = 127;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--base" => o.base = value()?,
            "--seconds" => o.seconds = number("--seconds", &value()?)?,
            "--concurrency" => o.concurrency = number("--concurrency", &value()?)?,
            "--sockets" => o.sockets = list(&value()?, |s| number("--sockets", s))?,
            "--floods" => o.floods = list(&value()?, parse_flood)?,
            "--rounds" => o.rounds = number("--rounds", &value()?)?,
            "--pid" => o.pid = Some(number("--pid", &value()?)?),
            "--admin-token" => o.admin_token = Some(value()?),
            "--readers" => o.readers = fanout::Readers::parse(&value()?)?,
            "--client-net" => {
                client_net = match value()?.as_str() {
                    "127" => 127,
                    "10" => 10,
                    other => return Err(format!("--client-net must be 127 or 10, not {other}")),
                }
            }
            "--sockets-base" => o.sockets_addr = Some(target("--sockets-base", &value()?)?),
            "-h" | "--help" => return Err(USAGE.into()),
            other if !other.starts_with('-') => o.scenarios.push(other.to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    o.addr = target("--base", &o.base)?;
    CLIENT_NET
        .set(client_net)
        .map_err(|_| "the client addresses were chosen twice")?;
    if o.scenarios.is_empty() {
        o.scenarios = ["health", "puzzle", "fanout", "flood"]
            .map(String::from)
            .to_vec();
    }
    Ok(o)
}

/// `text` (trimmed) as the number `flag` takes.
fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.trim().parse().map_err(|e| format!("{flag}: {e}"))
}

/// The comma-separated items of `text`, each read by `item`.
fn list<T>(text: &str, item: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    text.split(',').map(item).collect()
}

/// The address of `base`, `http://IP:PORT` on this machine (see [`on_this_machine`]).
fn target(flag: &str, base: &str) -> Result<SocketAddr, String> {
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let addr = host
        .parse()
        .map_err(|e| format!("{flag} must be http://IP:PORT on this machine: {e}"))?;
    on_this_machine(addr)?;
    Ok(addr)
}

/// Refuses a target that cannot be this machine: the tool loads a server on a loopback address,
/// or on a private IPv4 address (one of a network namespace on this machine).
fn on_this_machine(addr: SocketAddr) -> Result<(), String> {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() || ip.is_private() => Ok(()),
        IpAddr::V6(ip) if ip.is_loopback() => Ok(()),
        _ => Err(format!(
            "the load tool only targets this machine (a loopback or private address), not {addr}"
        )),
    }
}

/// `SxK`: S sessions on K addresses.
fn parse_flood(text: &str) -> Result<(usize, usize), String> {
    let (sessions, addresses) = text
        .trim()
        .split_once('x')
        .ok_or_else(|| format!("--floods: {text:?} is not SESSIONSxADDRESSES"))?;
    let number = |v: &str| {
        v.parse::<usize>()
            .map_err(|e| format!("--floods {text:?}: {e}"))
    };
    let (sessions, addresses) = (number(sessions)?, number(addresses)?);
    if sessions == 0 || addresses == 0 || addresses > sessions {
        return Err(format!(
            "--floods {text:?}: need 1 <= addresses <= sessions"
        ));
    }
    Ok((sessions, addresses))
}

/// The `n`-th client address: 127.1.x.y, distinct per socket (Linux routes 127/8 to loopback).
/// With `--client-net 10`: 10.x.y.z, for a tool in a network namespace that routes 10/8 to itself.
fn client_ip(n: usize) -> IpAddr {
    IpAddr::from([
        *CLIENT_NET.get().unwrap_or(&127),
        1 + (n / 62_500) as u8,
        ((n / 250) % 250) as u8,
        (n % 250 + 1) as u8,
    ])
}

/// The first byte of every client address, set once from `--client-net`.
static CLIENT_NET: std::sync::OnceLock<u8> = std::sync::OnceLock::new();

/// An HTTP client whose connections come from `ip`.
fn http(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip)
        .user_agent(UA)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A player socket with a full WebSocket client.
type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a player socket to `addr` from `ip` with captcha `token`.
async fn open_socket_to(addr: SocketAddr, ip: IpAddr, token: &str) -> Result<Ws, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(ip, 0))
        .map_err(|e| e.to_string())?;
    let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let mut request = format!("ws://{addr}/api/ws?token={token}")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert("user-agent", UA.parse().expect("header"));
    let (ws, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Connects and returns the socket with its session token.
async fn session(o: &Options, ip: IpAddr) -> Result<(Ws, String), String> {
    session_at(o.addr, ip, "bench-captcha-token").await
}

/// Connects to `addr` from `ip` with captcha `token`; the socket and its session token.
async fn session_at(addr: SocketAddr, ip: IpAddr, token: &str) -> Result<(Ws, String), String> {
    let mut ws = open_socket_to(addr, ip, token).await?;
    while let Some(Ok(msg)) = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .map_err(|_| "no SESSION_TOKEN")?
    {
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            if v["type"] == "SESSION_TOKEN" {
                return Ok((ws, v["token"].as_str().unwrap_or_default().to_string()));
            }
        }
    }
    Err("socket closed before SESSION_TOKEN".into())
}

/// The `p` quantile (0..=1, nearest rank) of `sorted`; NaN when empty.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

/// Requests/s of `make`'s request over `--seconds` with `--concurrency` connections.
async fn rate(
    o: &Options,
    label: &str,
    make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
    client: reqwest::Client,
) {
    let make = Arc::new(make);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let mut workers = Vec::new();
    for _ in 0..o.concurrency {
        let (make, done, failed, client) =
            (make.clone(), done.clone(), failed.clone(), client.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match make(&client).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let ok = done.load(Ordering::Relaxed);
    println!(
        "{label}: {:.0} requests/s ({ok} ok, {} failed, {} connections, {} s)",
        ok as f64 / o.seconds as f64,
        failed.load(Ordering::Relaxed),
        o.concurrency,
        o.seconds
    );
}

/// A nonce reaching `zeros` leading zeros, and its hash in hex.
fn solve(params: Argon2Params, seed: &str, visitor: &str, ip: IpAddr, zeros: u32) -> (u64, String) {
    let (nonce, hash) = hashpass::verify::solve(params, seed, visitor, &ip.to_string(), zeros, 0)
        .expect("solution");
    (nonce, hex::encode(hash))
}

/// A player with a session: its address, HTTP client, session token and socket.
struct Solver {
    /// Its client address.
    ip: IpAddr,
    /// Its HTTP client, from `ip`.
    client: reqwest::Client,
    /// Its session token.
    token: String,
    /// Its visitor id.
    visitor: String,
    /// Its socket, held so the session stays live.
    _ws: Ws,
}

impl Solver {
    /// Player `n`, from `client_ip(n)`.
    async fn new(o: &Options, n: usize) -> Result<Self, String> {
        let ip = client_ip(n);
        let (ws, token) = session(o, ip).await?;
        Ok(Self {
            ip,
            client: http(ip),
            token,
            visitor: format!("bench{n}"),
            _ws: ws,
        })
    }

    /// POSTs `body` to `path` with the session token: the status and the JSON answer.
    async fn post(&self, o: &Options, path: &str, body: &Value) -> Result<(u16, Value), String> {
        let r = self
            .client
            .post(format!("{}{path}", o.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or_default()))
    }

    /// A winning verify body for the current puzzle.
    async fn winning_body(&self, o: &Options) -> Result<Value, String> {
        let (_, p) = self
            .post(o, "/api/puzzle", &json!({ "visitorId": self.visitor }))
            .await?;
        let params = Argon2Params::new(
            p["time_cost"].as_u64().unwrap_or(3) as u32,
            p["memory_cost"].as_u64().unwrap_or(65536) as u32,
            p["parallelism"].as_u64().unwrap_or(1) as u32,
        );
        let seed = p["seed"].as_str().ok_or("no seed")?.to_string();
        let (ip, visitor, zeros) = (
            self.ip,
            self.visitor.clone(),
            p["difficulty"].as_u64().unwrap_or(1) as u32,
        );
        let (nonce, hash) =
            tokio::task::spawn_blocking(move || solve(params, &seed, &visitor, ip, zeros))
                .await
                .map_err(|e| e.to_string())?;
        Ok(
            json!({ "visitorId": self.visitor, "nonce": nonce, "submittedSeed": p["seed"], "traceData": format!("ip={}", self.ip), "hash": hash }),
        )
    }
}

/// The resident memory of process `pid`, KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Latency of a winning verify at the server's parameters (tiny ones make it the claim itself:
/// checks, one hash, the compare-and-swap, the audit write).
async fn claim(o: &Options) -> Result<(), String> {
    let solver = Solver::new(o, 300_000).await?;
    let mut latencies = Vec::new();
    for _ in 0..o.rounds.max(1) {
        let body = solver.winning_body(o).await?;
        let start = Instant::now();
        let (status, answer) = solver.post(o, "/api/verify", &body).await?;
        if status != 200 {
            return Err(format!("verify answered {status} {answer}"));
        }
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "claim: winning verify median {:.2} ms, p99 {:.2} ms ({} rounds)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len()
    );
    Ok(())
}

/// `rounds` honest wins, each from a fresh address and session, the verify alone timed (ms).
/// Runs on a thread and runtime of its own, so a flood's tasks never delay it.
async fn honest_rounds(o: &Options, first: usize, rounds: usize) -> Result<Vec<f64>, String> {
    let o = o.clone();
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut latencies = Vec::new();
            for round in 0..rounds {
                let honest = Solver::new(&o, first + round).await?;
                let body = honest.winning_body(&o).await?;
                let start = Instant::now();
                let (status, answer) = honest.post(&o, "/api/verify", &body).await?;
                let elapsed = start.elapsed().as_secs_f64() * 1000.0;
                if status != 200 {
                    return Err(format!("honest verify answered {status} {answer}"));
                }
                latencies.push(elapsed);
            }
            latencies.sort_by(f64::total_cmp);
            Ok(latencies)
        })
    })
    .await
    .map_err(|e| e.to_string())?
}

/// A running flood: tasks sending wrong hashes, and the statuses they were answered with.
struct Flood {
    /// Tells the tasks to stop.
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// The sending tasks.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// How many answers of each status.
    statuses: Arc<std::sync::Mutex<std::collections::BTreeMap<u16, u64>>>,
}

impl Flood {
    /// `sessions` sessions spread over `addresses` client addresses, each sending well-formed
    /// wrong hashes for the current seed, waiting only as long as a refusal's `Retry-After`.
    async fn start(o: &Options, sessions: usize, addresses: usize) -> Result<Self, String> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let statuses = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
        let mut tasks = Vec::new();
        for n in 0..sessions {
            let ip = client_ip(150_000 + n % addresses);
            // One socket per address at a time: the session outlives its socket (grace). The
            // server may not have seen the previous socket close yet: retry for a moment.
            let mut opened = Err(String::new());
            for _ in 0..100 {
                opened = session(o, ip).await;
                if opened.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let (mut ws, token) = opened?;
            let _ = futures_util::SinkExt::close(&mut ws).await;
            let (stop, statuses, base) = (stop.clone(), statuses.clone(), o.base.clone());
            tasks.push(tokio::spawn(async move {
                let client = http(ip);
                let visitor = format!("flood{n}");
                for attempt in 0..1_000_000u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let puzzle = client.post(format!("{base}/api/puzzle")).bearer_auth(&token).json(&json!({ "visitorId": visitor })).send().await;
                    let p: Value = match puzzle {
                        Ok(r) => r.json().await.unwrap_or_default(),
                        Err(_) => continue,
                    };
                    let body = json!({ "visitorId": visitor, "nonce": attempt, "submittedSeed": p["seed"], "traceData": format!("ip={ip}"), "hash": format!("00{}", "5a".repeat(31)) });
                    let Ok(r) = client.post(format!("{base}/api/verify")).bearer_auth(&token).json(&body).send().await else {
                        continue;
                    };
                    let status = r.status().as_u16();
                    *statuses.lock().unwrap().entry(status).or_default() += 1;
                    let wait = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
                    match (status, wait) {
                        (401, _) => break, // revoked by the session budget
                        (_, Some(seconds)) => tokio::time::sleep(Duration::from_secs(seconds.min(10))).await,
                        _ => {}
                    }
                }
            }));
        }
        Ok(Self {
            stop,
            tasks,
            statuses,
        })
    }

    /// Stops the flood; the statuses it was answered with.
    async fn stop(self) -> std::collections::BTreeMap<u16, u64> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        self.statuses.lock().unwrap().clone()
    }
}

/// Median, min and max of sorted latencies.
fn summary(latencies: &[f64]) -> String {
    format!(
        "median {:.0} ms, min {:.0} ms, max {:.0} ms ({} rounds)",
        percentile(latencies, 0.5),
        latencies.first().copied().unwrap_or(f64::NAN),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len()
    )
}

/// The flood scenario: an honest verify alone and under each `--floods` flood.
async fn flood(o: &Options) -> Result<(), String> {
    let rounds = o.rounds.max(5);
    let server = o.pid.map(|pid| pid.to_string());
    let cpu = |who: Option<&str>| who.and_then(cpu_seconds).unwrap_or(f64::NAN);
    let alone = honest_rounds(o, 100_000, rounds).await?;
    let unloaded = percentile(&alone, 0.5);
    println!("flood: honest verify alone: {}", summary(&alone));
    for (k, &(sessions, addresses)) in o.floods.iter().enumerate() {
        let flood = Flood::start(o, sessions, addresses).await?;
        // Let the flood fill the queues before the honest solver comes.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (client_before, server_before) = (cpu(Some("self")), cpu(server.as_deref()));
        let under = honest_rounds(o, 110_000 + k * 1000, rounds).await;
        let (client_after, server_after) = (cpu(Some("self")), cpu(server.as_deref()));
        let statuses = flood.stop().await;
        let under = under?;
        println!(
            "flood: honest verify under {sessions} sessions on {addresses} addresses: {} = {:.2}x alone",
            summary(&under),
            percentile(&under, 0.5) / unloaded
        );
        println!(
            "flood:   flood answers by status {statuses:?}; CPU during the rounds: load tool {:.1} s, server {:.1} s",
            client_after - client_before,
            server_after - server_before
        );
    }
    Ok(())
}

/// Runs the scenarios in order; a failed one is reported and the next runs.
#[tokio::main]
async fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    for scenario in o.scenarios.clone() {
        let result = match scenario.as_str() {
            "health" => {
                let url = format!("{}/api/health", o.base);
                rate(
                    &o,
                    "GET /api/health",
                    move |c| c.get(&url),
                    http(client_ip(200_000)),
                )
                .await;
                Ok(())
            }
            "puzzle" => match Solver::new(&o, 200_001).await {
                Ok(s) => {
                    let (url, token, visitor) = (
                        format!("{}/api/puzzle", o.base),
                        s.token.clone(),
                        s.visitor.clone(),
                    );
                    rate(
                        &o,
                        "POST /api/puzzle",
                        move |c| {
                            c.post(&url)
                                .bearer_auth(&token)
                                .json(&json!({ "visitorId": visitor }))
                        },
                        s.client.clone(),
                    )
                    .await;
                    Ok(())
                }
                Err(e) => Err(e),
            },
            "fanout" => fanout::fanout(&o).await,
            "flood" => flood(&o).await,
            "claim" => claim(&o).await,
            other => Err(format!("unknown scenario {other}")),
        };
        if let Err(e) = result {
            eprintln!("{scenario}: {e}");
        }
    }
}
