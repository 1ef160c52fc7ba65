//! The settings only the example servers read: where to listen, how much to log, where the
//! files go and which Redis to share. The library never reads them; a host site has its own.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use hashpass::config::{ConfigError, SecretUrl, Variables};
use hashpass::{Config, HashPassBuilder};

/// The example servers' own settings, beside the library's [`Config`].
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// `HASHPASS_HOST`: the address to bind (`0.0.0.0`, every IPv4 interface).
    pub host: IpAddr,
    /// `PORT`: where to listen (8000).
    pub port: u16,
    /// `HASHPASS_LOG_LEVEL`: the lowest level logged (`INFO`), unless `RUST_LOG` says otherwise:
    /// `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` or `OFF` in any case, and the original's
    /// `WARNING` and `CRITICAL` (read as `WARN` and `ERROR`).
    pub log_level: String,
    /// `HASHPASS_LOG_FORMAT`: `text` (the default) or `json`, one JSON object per line, on
    /// standard output and in the log files alike.
    pub log_format: LogFormat,
    /// `HASHPASS_LOG_MAX_FILE_MB`: the largest a daily log file grows, in bytes (64 MiB; read
    /// in MiB, 1–65536); the rest of a full day's lines go to standard output only.
    pub log_max_file_bytes: u64,
    /// `HASHPASS_DATA_DIR`: where the audit log, the blacklist, the webhook outbox, the invite
    /// key ring and the redemptions are kept (`.`); one process owns it.
    pub data_dir: PathBuf,
    /// `HASHPASS_REDIS_URL` or `REDIS_URL`: share state through Redis (several instances).
    pub redis_url: Option<SecretUrl>,
    /// `HASHPASS_REDIS_PREFIX`: prefix of every key, so deployments can share a Redis
    /// (`hashpass:`).
    pub redis_prefix: String,
}

const MIB: u64 = 1024 * 1024;

/// The largest `HASHPASS_LOG_MAX_FILE_MB` accepted: 64 GiB a file.
const MAX_LOG_FILE_MIB: u64 = 65_536;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines: time, level, target, message and fields.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`).
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not a log format (use text or json)")),
        }
    }
}

/// The level `text` names, as the log filter writes it; `None` for anything else.
fn log_level(text: &str) -> Option<&'static str> {
    Some(match text.to_ascii_uppercase().as_str() {
        "TRACE" => "TRACE",
        "DEBUG" => "DEBUG",
        "INFO" => "INFO",
        "WARN" | "WARNING" => "WARN",
        "ERROR" | "CRITICAL" => "ERROR",
        "OFF" => "OFF",
        _ => return None,
    })
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8000,
            log_level: "INFO".into(),
            log_format: LogFormat::Text,
            log_max_file_bytes: 64 * MIB,
            data_dir: PathBuf::from("."),
            redis_url: None,
            redis_prefix: "hashpass:".into(),
        }
    }
}

impl ServerSettings {
    /// Every variable [`ServerSettings::read`] reads.
    pub const VARIABLES: &[&str] = &[
        "HASHPASS_HOST",
        "PORT",
        "HASHPASS_LOG_LEVEL",
        "HASHPASS_LOG_FORMAT",
        "HASHPASS_LOG_MAX_FILE_MB",
        "HASHPASS_DATA_DIR",
        "HASHPASS_REDIS_URL",
        "REDIS_URL",
        "HASHPASS_REDIS_PREFIX",
    ];

    /// Reads the settings from `vars`, starting from the defaults.
    pub fn read<F: Fn(&str) -> Option<String>>(vars: &Variables<F>) -> Result<Self, ConfigError> {
        let mut settings = Self::default();
        if let Some(host) = vars.text("HASHPASS_HOST") {
            settings.host = host.parse().map_err(|_| {
                ConfigError::new(
                    "HASHPASS_HOST",
                    format!(
                        "{host:?} is not an IP address (0.0.0.0 for every interface, 127.0.0.1 behind a local proxy)"
                    ),
                )
            })?;
        }
        settings.port = vars.whole("PORT", 1..=u16::MAX)?.unwrap_or(settings.port);
        if let Some(level) = vars.text("HASHPASS_LOG_LEVEL") {
            settings.log_level = log_level(&level)
                .ok_or_else(|| {
                    ConfigError::new(
                        "HASHPASS_LOG_LEVEL",
                        format!(
                            "{level:?} is not a log level (use TRACE, DEBUG, INFO, WARN, ERROR or OFF)"
                        ),
                    )
                })?
                .into();
        }
        if let Some(format) = vars.text("HASHPASS_LOG_FORMAT") {
            settings.log_format = format
                .parse()
                .map_err(|e| ConfigError::new("HASHPASS_LOG_FORMAT", e))?;
        }
        if let Some(mib) = vars.whole("HASHPASS_LOG_MAX_FILE_MB", 1..=MAX_LOG_FILE_MIB)? {
            settings.log_max_file_bytes = mib * MIB;
        }
        if let Some(dir) = vars.text("HASHPASS_DATA_DIR") {
            settings.data_dir = dir.into();
        }
        settings.redis_url = vars
            .text("HASHPASS_REDIS_URL")
            .or_else(|| vars.text("REDIS_URL"))
            .map(SecretUrl::from);
        if let Some(prefix) = vars.text("HASHPASS_REDIS_PREFIX") {
            settings.redis_prefix = prefix;
        }
        Ok(settings)
    }

    /// Reads the process environment: these settings and the library's [`Config`].
    pub fn from_env() -> Result<(Self, Config), ConfigError> {
        let vars = Variables::from_env();
        Ok((Self::read(&vars)?, Config::read(&vars)?))
    }

    /// The address to listen on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The Redis of the Redis URL, under the key prefix, connected; `None` when no URL is set.
    pub async fn redis(
        &self,
    ) -> Result<Option<hashpass::redis::RedisBackend>, hashpass::StoreError> {
        match &self.redis_url {
            Some(url) => {
                let prefix = self.redis_prefix.clone();
                Ok(Some(
                    hashpass::redis::RedisBackend::connect(url.expose(), prefix).await?,
                ))
            }
            None => Ok(None),
        }
    }

    /// `builder` with its state on disk in the data directory (audit log, blacklist, outbox, key
    /// ring, redemptions) and, when a Redis URL is set, every shared store in that Redis.
    pub async fn stores(
        &self,
        builder: HashPassBuilder,
    ) -> Result<HashPassBuilder, Box<dyn std::error::Error>> {
        let builder = builder.on_disk(&self.data_dir);
        let Some(backend) = self.redis().await? else {
            return Ok(builder);
        };
        tracing::info!(prefix = %self.redis_prefix, "sharing state through Redis");
        Ok(builder.redis(backend).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<ServerSettings, ConfigError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        ServerSettings::read(&Variables::new(|k| map.get(k).map(|v| v.to_string())))
    }

    #[test]
    fn reads_the_servers_own_variables() {
        let s = read(&[
            ("PORT", "9000"),
            ("HASHPASS_HOST", "::1"),
            ("REDIS_URL", "redis://user:pw@127.0.0.1:6379/0"),
            ("HASHPASS_DATA_DIR", "state"),
        ])
        .unwrap();
        assert_eq!(s.addr().to_string(), "[::1]:9000");
        assert_eq!(s.data_dir, PathBuf::from("state"));
        assert!(!format!("{s:?}").contains("pw"), "{s:?}");
        let prefixed = read(&[
            ("HASHPASS_REDIS_URL", "redis://a"),
            ("REDIS_URL", "redis://b"),
        ])
        .unwrap();
        assert_eq!(prefixed.redis_url.unwrap().expose(), "redis://a");
        assert_eq!(read(&[]).unwrap().addr().to_string(), "0.0.0.0:8000");
    }

    #[test]
    fn the_log_format_is_text_or_json() {
        assert_eq!(read(&[]).unwrap().log_format, LogFormat::Text);
        let json = read(&[("HASHPASS_LOG_FORMAT", " JSON ")]).unwrap();
        assert_eq!(json.log_format, LogFormat::Json);
        let error = read(&[("HASHPASS_LOG_FORMAT", "xml")]).unwrap_err();
        assert!(error.to_string().contains("HASHPASS_LOG_FORMAT"), "{error}");
    }

    #[test]
    fn the_log_file_cap_is_read_in_mib() {
        assert_eq!(read(&[]).unwrap().log_max_file_bytes, 64 * MIB);
        let one = read(&[("HASHPASS_LOG_MAX_FILE_MB", "1")]).unwrap();
        assert_eq!(one.log_max_file_bytes, MIB);
        for bad in ["0", "65537", "-1", "ten", "1.5", "99999999999999999999999"] {
            let error = read(&[("HASHPASS_LOG_MAX_FILE_MB", bad)]).unwrap_err();
            assert_eq!(error.name, "HASHPASS_LOG_MAX_FILE_MB", "{bad}: {error}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        let name = |pairs: &[(&str, &str)]| read(pairs).unwrap_err().name;
        assert_eq!(name(&[("PORT", "eighty")]), "PORT");
        assert_eq!(name(&[("PORT", "0")]), "PORT");
        assert_eq!(name(&[("PORT", "65536")]), "PORT");
        assert_eq!(name(&[("PORT", "-80")]), "PORT");
        assert_eq!(name(&[("HASHPASS_HOST", "localhost:80")]), "HASHPASS_HOST");
        assert_eq!(
            name(&[("HASHPASS_LOG_LEVEL", "verbose")]),
            "HASHPASS_LOG_LEVEL"
        );
        assert_eq!(read(&[("PORT", "65535")]).unwrap().port, 65535);
    }

    #[test]
    fn log_levels_are_the_known_ones() {
        for (text, level) in [
            ("info", "INFO"),
            ("Debug", "DEBUG"),
            ("WARNING", "WARN"),
            ("critical", "ERROR"),
            ("off", "OFF"),
        ] {
            let settings = read(&[("HASHPASS_LOG_LEVEL", text)]).unwrap();
            assert_eq!(settings.log_level, level, "{text}");
        }
    }

    const VARIABLES: &[&str] = ServerSettings::VARIABLES;

    #[test]
    fn env_example_reads_and_documents_every_variable() {
        let example = include_str!("../../.env.example");
        let docs = include_str!("../../docs/protocol.md");
        let mut vars: HashMap<&str, &str> = example
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .collect();
        // Its placeholder token is refused on purpose; with a real one it reads as it is.
        vars.insert("ADMIN_TOKEN", "a-real-admin-token-0123456789");
        let lookup = Variables::new(|k: &str| vars.get(k).map(|v| v.to_string()));
        ServerSettings::read(&lookup).unwrap();
        let config = Config::read(&lookup).unwrap();
        assert!(
            config.captcha.offline() && !config.captcha.test_mode,
            "as shipped, test mode is not set"
        );
        for name in hashpass::config::VARIABLES.iter().chain(VARIABLES) {
            assert!(mentions(example, name), "{name} is not in .env.example");
            assert!(
                mentions(docs, &format!("`{name}`")),
                "{name} is not in docs/protocol.md"
            );
        }
    }

    /// Whether `text` names `name` as a whole word (`REDIS_URL` is not in `HASHPASS_REDIS_URL`).
    fn mentions(text: &str, name: &str) -> bool {
        let part_of_name =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        text.match_indices(name).any(|(at, _)| {
            !part_of_name(text[..at].chars().next_back())
                && !part_of_name(text[at + name.len()..].chars().next())
        })
    }

    proptest::proptest! {
        /// No text in any of the servers' own variables panics: reading answers settings or an
        /// error naming one of them.
        #[test]
        fn no_environment_panics(vars in proptest::collection::hash_map(
            proptest::sample::select(VARIABLES),
            proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                "[ 0-9a-fA-F.:/+-]{0,24}",
                "[a-zA-Z]{0,10}",
            ],
            0..6,
        )) {
            if let Err(e) = read(&vars.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()) {
                proptest::prop_assert!(VARIABLES.contains(&e.name.as_str()), "{e}");
            }
        }
    }
}
