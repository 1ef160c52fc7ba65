//! The bounded parsers of setting values, one per kind: a whole number, whole seconds, a decimal
//! number, a rate and a list of trusted networks. Each takes the variable's name, its trimmed
//! text and the bounds the caller documents (docs/protocol.md#environment-variables), and gives
//! either a value within them or a [`ConfigError`] naming the variable and saying what it
//! accepts. None of them panics on any text: durations are built only from bounded values, with
//! the conversions that cannot fail.

use std::fmt::Display;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use super::{ConfigError, IpNet};

/// The window of a rate written as a bare count (`HASHPASS_SUBMIT_RATE=4`): 10 seconds.
pub(super) const DEFAULT_RATE_WINDOW_SECS: f64 = 10.0;

/// At most this much of a refused value is repeated in the error message.
const SHOWN_CHARS: usize = 40;

/// `text` as an error message repeats it: quoted, and cut after [`SHOWN_CHARS`] characters.
fn shown(text: &str) -> String {
    if text.chars().count() <= SHOWN_CHARS {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{head:?}…")
    }
}

/// A whole number within `bounds`.
pub(super) fn whole<T>(name: &str, text: &str, bounds: &RangeInclusive<T>) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Display,
{
    text.parse::<T>()
        .ok()
        .filter(|value| bounds.contains(value))
        .ok_or_else(|| {
            ConfigError::new(
                name,
                format!(
                    "must be a whole number from {} to {} (got {})",
                    bounds.start(),
                    bounds.end(),
                    shown(text)
                ),
            )
        })
}

/// A whole number of seconds within `bounds`.
pub(super) fn seconds(
    name: &str,
    text: &str,
    bounds: &RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    text.parse::<u64>()
        .ok()
        .filter(|secs| bounds.contains(secs))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            ConfigError::new(
                name,
                format!(
                    "must be a whole number of seconds from {} to {} (got {})",
                    bounds.start(),
                    bounds.end(),
                    shown(text)
                ),
            )
        })
}

/// A finite decimal number within `bounds` (`NaN` and the infinities are refused).
pub(super) fn decimal(
    name: &str,
    text: &str,
    bounds: &RangeInclusive<f64>,
) -> Result<f64, ConfigError> {
    text.parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && bounds.contains(value))
        .ok_or_else(|| {
            ConfigError::new(
                name,
                format!(
                    "must be a number from {} to {} (got {})",
                    bounds.start(),
                    bounds.end(),
                    shown(text)
                ),
            )
        })
}

/// The bounds of a rate: its count and its window in seconds.
#[derive(Debug, Clone)]
pub struct RateBounds {
    /// Calls allowed per window (0 usually means "no limit").
    pub count: RangeInclusive<u32>,
    /// Length of the window, seconds.
    pub window_secs: RangeInclusive<f64>,
}

/// A rate `N/S` (N calls per S seconds, S may have decimals) or `N` (per 10 s): the count and
/// the window, each within `bounds`.
pub(super) fn rate(
    name: &str,
    text: &str,
    bounds: &RateBounds,
) -> Result<(u32, Duration), ConfigError> {
    let refused = || {
        ConfigError::new(
            name,
            format!(
                "must be N/S (N calls per S seconds) or N (per {DEFAULT_RATE_WINDOW_SECS} s), \
                 N a whole number from {} to {} and S a number of seconds from {} to {} (got {})",
                bounds.count.start(),
                bounds.count.end(),
                bounds.window_secs.start(),
                bounds.window_secs.end(),
                shown(text)
            ),
        )
    };
    let (count, window) = match text.split_once('/') {
        Some((count, window)) => (count.trim(), Some(window.trim())),
        None => (text, None),
    };
    let count = whole(name, count, &bounds.count).map_err(|_| refused())?;
    let window = match window {
        Some(window) => decimal(name, window, &bounds.window_secs).map_err(|_| refused())?,
        None => DEFAULT_RATE_WINDOW_SECS,
    };
    let window = Duration::try_from_secs_f64(window).map_err(|_| refused())?;
    Ok((count, window))
}

/// A comma-separated list of networks (CIDRs or bare addresses) whose client-IP header is
/// believed. A list that trusts every address of a family (`0.0.0.0/0`, `::/0`, a /0 written
/// any other way, or networks that together cover the family) is refused: every client could
/// then choose its own address.
pub(super) fn trusted_networks(name: &str, text: &str) -> Result<Vec<IpNet>, ConfigError> {
    let networks = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<IpNet>().map_err(|e| ConfigError::new(name, e)))
        .collect::<Result<Vec<_>, _>>()?;
    refuse_trusting_everyone(name, &networks)?;
    Ok(networks)
}

/// Refuses `networks` when they trust every address of IPv4 or of IPv6, alone or together.
pub(super) fn refuse_trusting_everyone(name: &str, networks: &[IpNet]) -> Result<(), ConfigError> {
    for (family, v4) in [("IPv4", true), ("IPv6", false)] {
        let ranges = networks
            .iter()
            .filter(|net| net.addr.is_ipv4() == v4)
            .map(address_range);
        let all = if v4 { u128::from(u32::MAX) } else { u128::MAX };
        if covers_all(ranges, all) {
            return Err(ConfigError::new(
                name,
                format!(
                    "trusts every {family} address ({}): every client could then choose its own \
                     address by sending the client-IP header (HASHPASS_CLIENT_IP_HEADER); list \
                     only your proxies' addresses, such as Cloudflare's published ranges or \
                     127.0.0.1/32 for a proxy on the same machine",
                    if v4 { "0.0.0.0/0" } else { "::/0" }
                ),
            ));
        }
    }
    Ok(())
}

/// The first and last address of `net`, as numbers.
fn address_range(net: &IpNet) -> (u128, u128) {
    let (addr, bits) = match net.addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let host_bits = bits - u32::from(net.prefix);
    let hosts = u128::MAX.checked_shr(128 - host_bits).unwrap_or(0);
    (addr & !hosts, (addr & !hosts) | hosts)
}

/// Whether the ranges together cover every number from 0 to `all`.
fn covers_all(ranges: impl Iterator<Item = (u128, u128)>, all: u128) -> bool {
    let mut ranges: Vec<(u128, u128)> = ranges.collect();
    ranges.sort_unstable();
    let mut next = 0u128; // the first number not covered yet
    for (first, last) in ranges {
        if first > next {
            return false;
        }
        if last >= all {
            return true;
        }
        next = next.max(last + 1);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBMIT: RateBounds = RateBounds {
        count: 0..=1_000_000,
        window_secs: 0.001..=86_400.0,
    };

    #[test]
    fn whole_numbers_within_their_bounds() {
        assert_eq!(whole("N", "7", &(1u32..=64)), Ok(7));
        assert_eq!(whole("N", "64", &(1u32..=64)), Ok(64));
        for refused in [
            "0",
            "65",
            "-1",
            "1.5",
            "seven",
            "99999999999999999999999",
            "",
        ] {
            let e = whole("HASHPASS_X", refused, &(1u32..=64)).unwrap_err();
            assert_eq!(e.name, "HASHPASS_X", "{refused}");
            assert!(e.message.contains("from 1 to 64"), "{e}");
        }
    }

    #[test]
    fn seconds_within_their_bounds() {
        assert_eq!(seconds("S", "0", &(0..=600)), Ok(Duration::ZERO));
        assert_eq!(
            seconds("S", "600", &(0..=600)),
            Ok(Duration::from_secs(600))
        );
        for refused in ["601", "18446744073709551616", "1e3", "-5", "NaN"] {
            let e = seconds("S", refused, &(0..=600)).unwrap_err();
            assert!(e.message.contains("seconds from 0 to 600"), "{e}");
        }
    }

    #[test]
    fn decimals_are_finite_and_within_their_bounds() {
        assert_eq!(decimal("D", "2.5", &(0.0..=10.0)), Ok(2.5));
        assert_eq!(decimal("D", "1e1", &(0.0..=10.0)), Ok(10.0));
        for refused in ["NaN", "inf", "-inf", "-0.5", "10.01", "1e400", "x"] {
            assert!(decimal("D", refused, &(0.0..=10.0)).is_err(), "{refused}");
        }
    }

    #[test]
    fn rates_have_a_bounded_count_and_window() {
        let secs = |s| Duration::from_secs(s);
        assert_eq!(rate("R", "4/10", &SUBMIT), Ok((4, secs(10))));
        assert_eq!(rate("R", "8", &SUBMIT), Ok((8, secs(10))));
        assert_eq!(rate("R", "0", &SUBMIT), Ok((0, secs(10))));
        assert_eq!(
            rate("R", "3 / 0.5", &SUBMIT),
            Ok((3, Duration::from_millis(500)))
        );
        // The start-up panic of the issue, and its relatives.
        for refused in [
            "4/1e30",
            "4/0",
            "4/-1",
            "4/NaN",
            "4/inf",
            "4/",
            "/10",
            "4/10/2",
            "-4/10",
            "4.5/10",
            "1000001/10",
            "4/86400.5",
            "4/0.0001",
            "x/y",
        ] {
            let e = rate("HASHPASS_SUBMIT_RATE", refused, &SUBMIT).unwrap_err();
            assert_eq!(e.name, "HASHPASS_SUBMIT_RATE");
            assert!(e.message.contains("from 0.001 to 86400"), "{refused}: {e}");
        }
    }

    #[test]
    fn a_network_list_that_trusts_everyone_is_refused() {
        let nets = |text| trusted_networks("HASHPASS_TRUSTED_PROXIES", text);
        assert_eq!(nets("10.0.0.0/8, ::1").unwrap().len(), 2);
        assert_eq!(nets(" , ").unwrap(), vec![]);
        assert!(nets("0.0.0.0/1").is_ok(), "half of IPv4 is not all of it");
        assert!(nets("::/1, 8000::/2").is_ok());
        for everyone in [
            "0.0.0.0/0",
            "::/0",
            "10.0.0.0/8, 0.0.0.0/0",
            "1.2.3.4/0",
            "0.0.0.0/00",
            "2001:db8::1/0",
            "::ffff:0.0.0.0/96",
            "::ffff:10.0.0.0/96",
            "0.0.0.0/1, 128.0.0.0/1",
            "128.0.0.0/2, 0.0.0.0/1, 192.0.0.0/2",
            "::/1, 8000::/1",
        ] {
            let e = nets(everyone).unwrap_err();
            assert_eq!(e.name, "HASHPASS_TRUSTED_PROXIES");
            assert!(
                e.message
                    .contains("every client could then choose its own address"),
                "{everyone}: {e}"
            );
        }
        assert!(nets("1.2.3.4/40").is_err());
        assert!(
            nets("::ffff:1.2.3.4/64").is_err(),
            "a mapped address needs /96 or longer"
        );
    }

    #[test]
    fn long_values_are_cut_in_the_message() {
        let long = "9".repeat(10_000);
        let e = whole("N", &long, &(1u32..=2)).unwrap_err();
        assert!(e.message.len() < 200, "{e}");
    }
}
