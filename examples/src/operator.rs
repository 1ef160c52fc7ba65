//! The sub-commands of `hashpass-server`: serving the race (the default) and the operator's
//! tools beside it — exporting the audit trail as JSONL and verifying an invite code offline.
//!
//! ```text
//! hashpass-server [serve] [--framework axum|poem]
//! hashpass-server export-audit [--out FILE]
//! hashpass-server verify-code CODE [--key HEX]
//! hashpass-server outbox [--limit N]
//! hashpass-server help [SUB-COMMAND]
//! ```
//!
//! Every sub-command reads `.env` and then the environment, as the server does. The tools never
//! build a [`hashpass::HashPass`]: they start no background job, listen nowhere and leave the
//! puzzle state alone, reading the stores directly.
//!
//! Exit status: 0 on success (a valid code), 1 for an invalid code, 2 for a usage error (on
//! standard error, with the sub-command's usage) or a failure (a bad setting, an unreachable
//! store, an unwritable output).
//!
//! The sub-commands are the entries of one table (`COMMANDS`): a new one is one more entry, with
//! its usage line, its summary and the function that runs it; parsing, `help` and the exit
//! status come with it.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use hashpass::audit::{AuditLog, FileAuditLog, LoggedRecord, all_records, to_jsonl, write_jsonl};
use hashpass::config::SecretUrl;
use hashpass::invite::InviteKeyRing;
use hashpass::{HashPass, InviteCodes, InviteError, InviteKey};
use serde_json::{Value, json};

use crate::{Framework, ServerSettings};

/// The program name in messages and usage.
const PROGRAM: &str = "hashpass-server";

/// What a sub-command ends with: its exit status, or why it failed.
type Outcome = Result<ExitCode, Failure>;

/// One sub-command: how it is called, what it does, and the function that runs it.
struct SubCommand {
    /// The word that selects it.
    name: &'static str,
    /// Its arguments, after the name, for the usage text.
    arguments: &'static str,
    /// One line on what it does.
    summary: &'static str,
    /// Runs it with the arguments after its name.
    run: fn(Args) -> LocalBoxFuture<'static, Outcome>,
}

/// Every sub-command, in the order `help` lists them; the first is the default.
const COMMANDS: &[SubCommand] = &[
    SubCommand {
        name: "serve",
        arguments: "[--framework axum|poem]",
        summary: "serve the race, the admin API and the pages (the default; the framework \
                  also from HASHPASS_FRAMEWORK, else axum)",
        run: |args| Box::pin(serve(args)),
    },
    SubCommand {
        name: "export-audit",
        arguments: "[--out FILE]",
        summary: "write the audit trail as JSONL, oldest first, from Redis when a Redis URL is \
                  set, else from the audit files in HASHPASS_DATA_DIR; to FILE (atomically) or \
                  to standard output",
        run: |args| Box::pin(export_audit(args)),
    },
    SubCommand {
        name: "verify-code",
        arguments: "CODE [--key HEX]",
        summary: "check an invite code offline with the key (--key, else the key ring an \
                  admin's rotations left in Redis or HASHPASS_DATA_DIR, else \
                  HASHPASS_HMAC_SECRET) and print the verdict as one JSON line; exit 0 if \
                  valid, 1 if not",
        run: |args| Box::pin(verify_code(args)),
    },
    SubCommand {
        name: "outbox",
        arguments: "[--limit N]",
        summary: "show the webhook outbox (from Redis when a Redis URL is set, else from \
                  HASHPASS_DATA_DIR) as JSON: counts, then up to N (default 100) pending \
                  deliveries, soonest due first, and N failed ones",
        run: |args| Box::pin(show_outbox(args)),
    },
    SubCommand {
        name: "healthcheck",
        arguments: "[--url URL]",
        summary: "ask the server on HASHPASS_HOST:PORT (the loopback address when it listens on \
                  every address) whether it is ready, GET api/health/ready, or the http:// URL \
                  given; exit 0 on 200 within 5 s, else 1 with the reason (for container health \
                  checks: no curl needed)",
        run: |args| Box::pin(healthcheck(args)),
    },
];

/// Why a sub-command did not finish.
#[derive(Debug)]
enum Failure {
    /// The command line is wrong: the message is shown with the sub-command's usage.
    Usage(String),
    /// A setting, a store or the output failed.
    Error(Box<dyn std::error::Error>),
}

impl<E: std::error::Error + 'static> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::Error(Box::new(error))
    }
}

impl Failure {
    /// A failure with this message.
    fn message(text: impl Into<String>) -> Self {
        Failure::Error(text.into().into())
    }
}

/// The arguments after a sub-command's name. Each sub-command takes out the flags and
/// positionals it knows; whatever is left is a usage error.
#[derive(Debug)]
struct Args {
    items: VecDeque<String>,
}

impl Args {
    fn new(items: impl IntoIterator<Item = String>) -> Self {
        Self {
            items: items.into_iter().collect(),
        }
    }

    /// The value of `--flag VALUE` or `--flag=VALUE`, if given (once at most).
    fn value(&mut self, flag: &str) -> Result<Option<String>, Failure> {
        let prefix = format!("{flag}=");
        let mut found = None;
        let mut rest = VecDeque::with_capacity(self.items.len());
        while let Some(item) = self.items.pop_front() {
            let value = if item == flag {
                Some(
                    self.items
                        .pop_front()
                        .ok_or_else(|| Failure::Usage(format!("{flag} needs a value")))?,
                )
            } else if let Some(value) = item.strip_prefix(&prefix) {
                Some(value.to_string())
            } else {
                rest.push_back(item);
                None
            };
            if let Some(value) = value {
                if found.is_some() {
                    return Err(Failure::Usage(format!("{flag} given twice")));
                }
                found = Some(value);
            }
        }
        self.items = rest;
        Ok(found)
    }

    /// The first argument that is not a flag, named `name` in the error when missing (take the
    /// flags' values out first: a value looks like a positional).
    fn positional(&mut self, name: &str) -> Result<String, Failure> {
        let at = self
            .items
            .iter()
            .position(|item| !item.starts_with('-'))
            .ok_or_else(|| Failure::Usage(format!("missing {name}")))?;
        Ok(self.items.remove(at).unwrap_or_default())
    }

    /// Succeeds when nothing is left over.
    fn finish(self) -> Result<(), Failure> {
        match self.items.front() {
            None => Ok(()),
            Some(flag) if flag.starts_with('-') => {
                Err(Failure::Usage(format!("unknown option {flag:?}")))
            }
            Some(extra) => Err(Failure::Usage(format!("unexpected argument {extra:?}"))),
        }
    }
}

/// The usage text: every sub-command with its arguments and what it does.
pub fn usage() -> String {
    let lines: Vec<(String, &str)> = COMMANDS
        .iter()
        .map(|c| (format!("{} {}", c.name, c.arguments), c.summary))
        .chain(std::iter::once((
            "help [SUB-COMMAND]".to_string(),
            "show this text, or one sub-command's usage",
        )))
        .collect();
    let mut text = format!(
        "HashPass: invite codes handed out through a fair race.\n\n\
         usage: {PROGRAM} [SUB-COMMAND] [OPTIONS]   (no sub-command: serve)\n\nsub-commands:\n"
    );
    for (call, summary) in lines {
        text.push_str(&format!("  {call}\n"));
        for line in wrap(summary, 84) {
            text.push_str(&format!("      {line}\n"));
        }
    }
    text.push_str(
        "\nSettings come from .env and the environment, as for serving \
         (docs/protocol.md#environment-variables). Exit status: 0 success, 1 invalid code, \
         2 usage or configuration error.\n",
    );
    text
}

/// `text` in lines of at most `width` characters (a longer word gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// One sub-command's usage line.
fn command_usage(command: &SubCommand) -> String {
    format!("usage: {PROGRAM} {} {}", command.name, command.arguments)
}

/// Runs `hashpass-server` with `args` (the command line after the program name) and returns
/// its exit status. `.env` is read first; it never overrides the real environment.
///
/// No arguments, or a first argument that is an option (`--framework poem`), serves; `help`,
/// `--help` and `-h` print the usage; otherwise the first argument names the sub-command.
pub async fn run(args: impl IntoIterator<Item = String>) -> ExitCode {
    // `.env` never overrides the real environment (as python-dotenv in the original).
    let _ = dotenvy::dotenv();
    let mut args: VecDeque<String> = args.into_iter().collect();
    let first = args.front().cloned();
    let command = match first.as_deref() {
        Some("help" | "--help" | "-h") => {
            args.pop_front();
            return help(args);
        }
        None => &COMMANDS[0],
        Some(option) if option.starts_with('-') => &COMMANDS[0],
        Some(name) => {
            let Some(command) = COMMANDS.iter().find(|c| c.name == name) else {
                eprintln!(
                    "{PROGRAM}: unknown sub-command {name:?}\n\n{}",
                    usage().trim_end()
                );
                return ExitCode::from(2);
            };
            args.pop_front();
            command
        }
    };
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", command_usage(command));
        return ExitCode::SUCCESS;
    }
    match (command.run)(Args::new(args)).await {
        Ok(code) => code,
        Err(Failure::Usage(message)) => {
            eprintln!(
                "{PROGRAM}: {message}\n{}\n(`{PROGRAM} help` lists every sub-command)",
                command_usage(command)
            );
            ExitCode::from(2)
        }
        Err(Failure::Error(error)) => crate::exit_code(PROGRAM, Err(error)),
    }
}

/// `help [SUB-COMMAND]`: the usage on standard output.
fn help(mut args: VecDeque<String>) -> ExitCode {
    match args.pop_front() {
        None => {
            print!("{}", usage());
            ExitCode::SUCCESS
        }
        Some(name) => match COMMANDS.iter().find(|c| c.name == name) {
            Some(command) if args.is_empty() => {
                println!("{}", command_usage(command));
                for line in wrap(command.summary, 84) {
                    println!("  {line}");
                }
                ExitCode::SUCCESS
            }
            _ => {
                eprintln!(
                    "{PROGRAM}: help: unknown sub-command {name:?}\n\n{}",
                    usage().trim_end()
                );
                ExitCode::from(2)
            }
        },
    }
}

/// `healthcheck [--url URL]`: exit 0 when the server answers its readiness probe with 200.
async fn healthcheck(mut args: Args) -> Outcome {
    let url = args.value("--url")?;
    args.finish()?;
    let url = match url {
        Some(url) => url,
        None => {
            let (settings, _) = ServerSettings::from_env()?;
            let host = match settings.host {
                ip if ip.is_unspecified() && ip.is_ipv4() => {
                    std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
                }
                ip if ip.is_unspecified() => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            format!(
                "http://{}/api/health/ready",
                std::net::SocketAddr::new(host, settings.port)
            )
        }
    };
    match probe(&url, Duration::from_secs(5)).await {
        Ok(200) => {
            println!("ready: {url} answered 200");
            Ok(ExitCode::SUCCESS)
        }
        Ok(status) => {
            eprintln!("{PROGRAM}: healthcheck: {url} answered {status}");
            Ok(ExitCode::from(1))
        }
        Err(reason) => {
            eprintln!("{PROGRAM}: healthcheck: {url}: {reason}");
            Ok(ExitCode::from(1))
        }
    }
}

/// One `GET` of an `http://` URL within `timeout`: the status.
async fn probe(url: &str, timeout: Duration) -> Result<u16, String> {
    if !url.starts_with("http://") {
        return Err("only http:// URLs are probed".into());
    }
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    match client.get(url).send().await {
        Ok(answer) => Ok(answer.status().as_u16()),
        Err(e) if e.is_timeout() => Err(format!("no answer within {} s", timeout.as_secs())),
        Err(e) if e.is_connect() => Err(format!("cannot connect: {e}")),
        Err(e) => Err(format!("no answer: {e}")),
    }
}

/// `serve [--framework axum|poem]`: the complete system until SIGINT/SIGTERM.
async fn serve(mut args: Args) -> Outcome {
    let flag = args.value("--framework")?;
    args.finish()?;
    let framework: Framework = match flag {
        Some(name) => name.parse().map_err(Failure::Usage)?,
        None => match std::env::var("HASHPASS_FRAMEWORK")
            .ok()
            .filter(|name| !name.trim().is_empty())
        {
            Some(name) => name
                .parse()
                .map_err(|e| Failure::message(format!("HASHPASS_FRAMEWORK: {e}")))?,
            None => Framework::Axum,
        },
    };
    let (settings, config) = ServerSettings::from_env()?;
    let _log_guard = crate::init_logging(
        &config.admin.log_dir,
        &settings.log_level,
        settings.log_format,
        settings.log_max_file_bytes,
    )
    .map_err(Failure::Error)?;
    tracing::info!(?settings, ?config, "starting HashPass");
    let hashpass = settings
        .stores(HashPass::builder(config))
        .await
        .map_err(Failure::Error)?
        .build()
        .await?;
    crate::serve_standalone(framework, hashpass, settings.addr()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Where an audit trail was read from.
#[derive(Debug, Clone)]
pub enum AuditSource {
    /// The Redis stream every instance of a deployment appends to.
    Redis {
        /// The Redis URL (shown as scheme, host and port only).
        url: SecretUrl,
        /// The deployment's key prefix.
        prefix: String,
    },
    /// `verify.jsonl` and its archives in a directory.
    Files {
        /// The data directory.
        dir: PathBuf,
    },
}

impl std::fmt::Display for AuditSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditSource::Redis { url, prefix } => {
                write!(f, "the Redis stream {prefix}audit at {url:?}")
            }
            AuditSource::Files { dir } => write!(
                f,
                "{} and its archives",
                dir.join(hashpass::audit::CURRENT_FILE).display()
            ),
        }
    }
}

/// The whole audit trail the server with `settings` keeps, oldest first, each record as stored:
/// the Redis stream when a Redis URL is set, else the audit files in the data directory (which
/// must exist). Only reads: nothing is created, written or reset.
pub async fn read_audit_trail(
    settings: &ServerSettings,
) -> Result<(Vec<LoggedRecord>, AuditSource), Box<dyn std::error::Error>> {
    if let (Some(backend), Some(url)) = (settings.redis().await?, &settings.redis_url) {
        let log = hashpass::redis::RedisAuditLog::new(backend);
        let records = all_records(&log as &dyn AuditLog).await?;
        let source = AuditSource::Redis {
            url: url.clone(),
            prefix: settings.redis_prefix.clone(),
        };
        return Ok((records, source));
    }
    let dir = settings.data_dir.clone();
    if !dir.is_dir() {
        // Opening the log would create it: an empty export of a mistyped directory.
        return Err(format!(
            "HASHPASS_DATA_DIR: {} is not a directory (no audit log to export)",
            dir.display()
        )
        .into());
    }
    let log = FileAuditLog::open(&dir)?;
    let records = all_records(&log as &dyn AuditLog).await?;
    Ok((records, AuditSource::Files { dir }))
}

/// `export-audit [--out FILE]`: the audit trail as JSONL to FILE or standard output, and a
/// one-line summary on standard error.
async fn export_audit(mut args: Args) -> Outcome {
    let out = args.value("--out")?.filter(|path| path != "-");
    args.finish()?;
    if out.as_deref() == Some("") {
        return Err(Failure::Usage("--out needs a file name".into()));
    }
    let (settings, _config) = ServerSettings::from_env()?;
    let (records, source) = read_audit_trail(&settings).await.map_err(Failure::Error)?;
    let target = match &out {
        Some(path) => {
            write_jsonl(Path::new(path), &records)
                .await
                .map_err(|e| Failure::message(format!("--out {path}: {e}")))?;
            path.clone()
        }
        None => {
            let text = to_jsonl(&records);
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::message(format!("standard output: {e}")))?;
            "standard output".into()
        }
    };
    let noun = if records.len() == 1 {
        "record"
    } else {
        "records"
    };
    eprintln!(
        "{PROGRAM}: exported {} audit {noun} from {source} to {target}",
        records.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// What `verify-code` found about one code.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether the code verifies.
    pub valid: bool,
    /// The JSON line printed: `valid`, the `code` (trimmed), then the `code_id`, `issued_at` and `expires_at` (Unix
    /// seconds, with `_utc` twins in RFC 3339) when the code is authentic; `reason` and `detail`
    /// when it is refused.
    pub report: Value,
}

/// Checks `code` offline under the ring's current key (a code of one of its retired keys is
/// `key_rotated`), with codes expiring `ttl` seconds after issue (0 = never), as
/// `HASHPASS_INVITE_TTL` says.
pub fn verdict(ring: &InviteKeyRing, ttl: u64, code: &str) -> Verdict {
    let codes = |ttl: u64| {
        let codes = InviteCodes::new(ring.current().clone()).with_ttl(ttl);
        codes.adopt(ring);
        codes
    };
    let code = code.trim();
    let dates = |issued_at: u64, expires_at: Option<u64>| {
        json!({
            "issued_at": issued_at,
            "issued_at_utc": utc(issued_at),
            "expires_at": expires_at,
            "expires_at_utc": expires_at.map(utc),
        })
    };
    let mut report = json!({"valid": true, "code": code});
    let valid = match codes(ttl).verify(code) {
        Ok(invite) => {
            report["code_id"] = invite.id.into();
            extend(&mut report, dates(invite.issued_at, invite.expires_at));
            true
        }
        Err(error) => {
            report["valid"] = false.into();
            report["reason"] = error.code().into();
            report["detail"] = error.to_string().into();
            if error == InviteError::Expired {
                // Authentic but too old: the same key without a lifetime reads its dates.
                if let Ok(invite) = codes(0).verify(code) {
                    report["code_id"] = invite.id.into();
                    extend(
                        &mut report,
                        dates(invite.issued_at, Some(invite.issued_at + ttl)),
                    );
                }
            }
            false
        }
    };
    Verdict { valid, report }
}

/// Adds the fields of the object `more` to the object `report`.
fn extend(report: &mut Value, more: Value) {
    if let (Some(report), Value::Object(more)) = (report.as_object_mut(), more) {
        report.extend(more);
    }
}

/// `secs` (Unix time) as an RFC 3339 UTC timestamp, `2026-01-01T00:00:00Z`.
pub(crate) fn utc(secs: u64) -> String {
    // Days to a civil date (H. Hinnant's algorithm, proleptic Gregorian calendar).
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

/// `verify-code CODE [--key HEX]`: the verdict as one JSON line; exit 0 valid, 1 invalid.
async fn verify_code(mut args: Args) -> Outcome {
    let key_flag = args.value("--key")?;
    let code = args.positional("CODE")?;
    args.finish()?;
    let (settings, config) = ServerSettings::from_env()?;
    let ring = match key_flag {
        Some(hex_key) => InviteKeyRing::new(
            InviteKey::from_hex(&hex_key).map_err(|e| Failure::Usage(format!("--key: {e}")))?,
        ),
        None => match ring_on_record(&settings).await? {
            Some(ring) => ring,
            None => InviteKeyRing::new(config.invites.key()?.ok_or_else(|| {
                Failure::message(
                    "no invite key: pass --key HEX or set HASHPASS_HMAC_SECRET to the server's key \
                     (a server without one signs with a random key per start, which nothing else \
                     can verify)",
                )
            })?),
        },
    };
    let verdict = verdict(&ring, config.invites.ttl, &code);
    println!("{}", verdict.report);
    Ok(if verdict.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The invite key ring an admin's rotations left on record: in Redis when a Redis URL is set,
/// else `invite-keys.json` in the data directory; `None` when there is none. Only reads.
async fn ring_on_record(settings: &ServerSettings) -> Result<Option<InviteKeyRing>, Failure> {
    use hashpass::invite_key_store::{
        FileInviteKeys, INVITE_KEYS_FILE, InPuzzleState, InviteKeyStore,
    };
    let store: Box<dyn InviteKeyStore> = match settings.redis().await? {
        Some(backend) => Box::new(InPuzzleState::durable(std::sync::Arc::new(
            hashpass::redis::RedisPuzzleStore::new(backend),
        ))),
        None if settings.data_dir.join(INVITE_KEYS_FILE).is_file() => {
            Box::new(FileInviteKeys::open(&settings.data_dir)?)
        }
        None => return Ok(None),
    };
    Ok(store.load().await?)
}

/// `outbox [--limit N]`: the webhook outbox as pretty JSON on standard output. Only reads.
async fn show_outbox(mut args: Args) -> Outcome {
    let limit = match args.value("--limit")? {
        None => 100,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| Failure::Usage(format!("--limit {n:?} is not a number")))?,
    };
    args.finish()?;
    let (settings, _config) = ServerSettings::from_env()?;
    let outbox: Box<dyn hashpass::outbox::WebhookOutbox> = match settings.redis().await? {
        Some(backend) => Box::new(hashpass::redis::RedisOutbox::new(backend)),
        None => {
            let dir = settings.data_dir.join(hashpass::outbox::OUTBOX_DIR);
            if !dir.is_dir() {
                return Err(Failure::message(format!(
                    "HASHPASS_DATA_DIR: {} holds no webhook outbox",
                    settings.data_dir.display()
                )));
            }
            Box::new(hashpass::outbox::FileOutbox::open(dir)?)
        }
    };
    let summary = outbox.summary(limit).await?;
    let text = serde_json::to_string_pretty(&summary).expect("a summary serialises");
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Args {
        Args::new(items.iter().map(|s| s.to_string()))
    }

    fn usage_error(result: Result<impl std::fmt::Debug, Failure>) -> String {
        match result {
            Err(Failure::Usage(message)) => message,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn flags_and_positionals() {
        let mut a = args(&["CODE", "--key", "00ff"]);
        assert_eq!(a.value("--key").unwrap().as_deref(), Some("00ff"));
        assert_eq!(a.positional("CODE").unwrap(), "CODE");
        a.finish().unwrap();

        let mut a = args(&["--out=x.jsonl"]);
        assert_eq!(a.value("--out").unwrap().as_deref(), Some("x.jsonl"));
        assert_eq!(a.value("--out").unwrap(), None, "taken out");
        a.finish().unwrap();

        assert!(usage_error(args(&["--out"]).value("--out")).contains("needs a value"));
        assert!(usage_error(args(&["--out", "a", "--out=b"]).value("--out")).contains("twice"));
        let mut a = args(&["--key", "k"]);
        assert_eq!(a.value("--key").unwrap().as_deref(), Some("k"));
        assert!(usage_error(a.positional("CODE")).contains("missing CODE"));
        assert!(usage_error(args(&["--bogus"]).finish()).contains("unknown option \"--bogus\""));
        assert!(usage_error(args(&["extra"]).finish()).contains("unexpected argument"));
    }

    #[test]
    fn usage_lists_every_sub_command() {
        let text = usage();
        for command in COMMANDS {
            assert!(
                text.contains(&format!("{} {}", command.name, command.arguments)),
                "{text}"
            );
        }
        assert!(text.contains("help [SUB-COMMAND]"), "{text}");
        assert_eq!(COMMANDS[0].name, "serve", "the default comes first");
    }

    #[test]
    fn verdicts() {
        let key = InviteKey::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
        // docs/protocol.md#code-format: id 3f9a0c5e7b21d846, issued at 1767225600.
        let code = "HASHPASS-04ZS-M32Y-FCGX-GHK9-APWG-1G9C-X47K-612H-HCRY0";
        let ring = InviteKeyRing::new(key.clone());
        let valid = verdict(&ring, 0, &format!("  {}\n", code.to_lowercase()));
        assert!(valid.valid);
        assert_eq!(
            valid.report.to_string(),
            format!(
                r#"{{"valid":true,"code":"{}","code_id":"3f9a0c5e7b21d846","issued_at":1767225600,"issued_at_utc":"2026-01-01T00:00:00Z","expires_at":null,"expires_at_utc":null}}"#,
                code.to_lowercase()
            )
        );

        let expired = verdict(&ring, 60, code);
        assert!(!expired.valid);
        assert_eq!(expired.report["reason"], "expired");
        assert_eq!(expired.report["code_id"], "3f9a0c5e7b21d846");
        assert_eq!(expired.report["expires_at"], 1_767_225_660);
        assert_eq!(expired.report["expires_at_utc"], "2026-01-01T00:01:00Z");

        let other_key = InviteKey::from_hex("ffeeddccbbaa99887766554433221100").unwrap();
        let forged = verdict(&InviteKeyRing::new(other_key), 0, code);
        assert_eq!(
            (forged.valid, &forged.report["reason"]),
            (false, &json!("bad_signature"))
        );
        assert_eq!(
            forged.report.get("code_id"),
            None,
            "unauthenticated ids are not shown"
        );
        let malformed = verdict(&ring, 0, "HASHPASS-nope");
        assert_eq!(malformed.report["reason"], "malformed");
        assert_eq!(
            malformed.report["detail"],
            InviteError::Malformed.to_string()
        );
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_767_225_599), "2025-12-31T23:59:59Z");
        assert_eq!(utc(u64::from(u32::MAX)), "2106-02-07T06:28:15Z");
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hashpass-operator-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn files_export_as_one_compact_record_per_line() {
        let dir = temp_dir("files");
        std::fs::write(
            dir.join("verify_20260101_000000_000.jsonl"),
            "{\"b\": 1, \"a\": [1, 2]}\n",
        )
        .unwrap();
        std::fs::write(dir.join("verify.jsonl"), "{\"invite_code\": \"x\"}\n[1]\n").unwrap();
        let settings = ServerSettings {
            data_dir: dir.clone(),
            ..ServerSettings::default()
        };
        let (records, source) = read_audit_trail(&settings).await.unwrap();
        assert_eq!(
            to_jsonl(&records),
            "{\"b\":1,\"a\":[1,2]}\n{\"invite_code\":\"x\"}\n",
            "the archive first, lines that are not records skipped"
        );
        assert!(source.to_string().contains("verify.jsonl"), "{source}");
        assert_eq!(to_jsonl(&[]), "");
        std::fs::remove_dir_all(&dir).unwrap();

        let missing = ServerSettings {
            data_dir: dir.join("nope"),
            ..ServerSettings::default()
        };
        let error = read_audit_trail(&missing).await.unwrap_err().to_string();
        assert!(error.starts_with("HASHPASS_DATA_DIR: "), "{error}");
        assert!(!dir.exists(), "nothing is created");
    }
}
