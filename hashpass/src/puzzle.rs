//! The puzzle contract (docs/protocol.md#the-puzzle + docs/protocol.md#client-ip): seed, Argon2d parameters, salt layout,
//! leading-zero counting and the input rules a solution must meet before any hashing.

use serde::{Deserialize, Serialize};

use crate::util::random_bytes;

/// Largest nonce accepted: 2^53 (the largest integer a browser's `Number` holds exactly).
pub const MAX_NONCE: u64 = 1 << 53;

/// Length of a puzzle seed in hex characters (16 random bytes).
pub const SEED_HEX_LEN: usize = 32;

/// Longest `visitorId` accepted (docs/protocol.md#client-ip).
pub const MAX_VISITOR_ID_LEN: usize = 128;

/// Output length of the puzzle hash in bytes.
pub const HASH_LEN: usize = 32;

/// A 32-byte Argon2d output.
pub type PuzzleHash = [u8; HASH_LEN];

/// Argon2d cost parameters of the current puzzle, as published in `/api/puzzle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Argon2Params {
    /// Number of passes (`t`).
    pub time_cost: u32,
    /// Memory in KiB (`m`).
    pub memory_cost: u32,
    /// Lanes (`p`).
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// The original's defaults: t=3, m=65536 KiB (64 MiB), p=1.
    fn default() -> Self {
        Self {
            time_cost: 3,
            memory_cost: 65536,
            parallelism: 1,
        }
    }
}

impl Argon2Params {
    /// Parameters with the given time cost, memory (KiB) and parallelism.
    pub const fn new(time_cost: u32, memory_cost: u32, parallelism: u32) -> Self {
        Self {
            time_cost,
            memory_cost,
            parallelism,
        }
    }

    /// Checks the bounds of docs/protocol.md#admin-api: time 1..16, parallelism 1..16,
    /// memory 8·parallelism..1048576 KiB. Returns the message for a 422.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=16).contains(&self.time_cost) {
            return Err("time_cost must be between 1 and 16".into());
        }
        if !(1..=16).contains(&self.parallelism) {
            return Err("parallelism must be between 1 and 16".into());
        }
        let min_memory = 8 * self.parallelism;
        if !(min_memory..=1_048_576).contains(&self.memory_cost) {
            return Err(format!(
                "memory_cost must be between {min_memory} (8 x parallelism) and 1048576 KiB"
            ));
        }
        Ok(())
    }

    /// Memory one verification with these parameters occupies, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        u64::from(self.memory_cost) * 1024
    }
}

/// A fresh random seed: 16 bytes as 32 lowercase hex characters.
pub fn new_seed() -> String {
    hex::encode(random_bytes::<16>())
}

/// The Argon2 salt of a solution: UTF-8 of `<seed>|<visitorId>|<ip>`.
pub fn salt(seed: &str, visitor_id: &str, ip: &str) -> Vec<u8> {
    format!("{seed}|{visitor_id}|{ip}").into_bytes()
}

/// The Argon2 password of a solution: the nonce in base 10, no sign, no leading zeros.
pub fn password(nonce: u64) -> Vec<u8> {
    nonce.to_string().into_bytes()
}

/// Leading zero bits of a hash read as a big-endian 256-bit integer (256 for all zeros).
pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut zeros = 0;
    for &byte in hash {
        if byte == 0 {
            zeros += 8;
        } else {
            return zeros + byte.leading_zeros();
        }
    }
    zeros
}

/// Whether `visitor_id` keeps the salt unambiguous: `^[A-Za-z0-9_-]{1,128}$` (docs/protocol.md#client-ip).
pub fn is_valid_visitor_id(visitor_id: &str) -> bool {
    !visitor_id.is_empty()
        && visitor_id.len() <= MAX_VISITOR_ID_LEN
        && visitor_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Parses a submitted hash: trimmed, lower-cased, exactly 64 hex characters.
pub fn parse_hash(submitted: &str) -> Option<PuzzleHash> {
    let normalized = submitted.trim().to_ascii_lowercase();
    if normalized.len() != HASH_LEN * 2 {
        return None;
    }
    let mut out = [0u8; HASH_LEN];
    hex::decode_to_slice(&normalized, &mut out).ok()?;
    Some(out)
}

/// The IP a trace claims: the value of the first line starting with `ip=`, trimmed.
pub fn trace_ip(trace_data: &str) -> Option<&str> {
    trace_data
        .lines()
        .find_map(|line| line.strip_prefix("ip="))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn leading_zeros_known_cases() {
        assert_eq!(leading_zero_bits(&[0u8; 32]), 256);
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(leading_zero_bits(&one), 255);
        let mut top = [0u8; 32];
        top[0] = 0x80;
        assert_eq!(leading_zero_bits(&top), 0);
        top[0] = 0x01;
        assert_eq!(leading_zero_bits(&top), 7);
        let mut second = [0u8; 32];
        second[1] = 0x40;
        assert_eq!(leading_zero_bits(&second), 9);
        assert_eq!(leading_zero_bits(&[0xff; 32]), 0);
        for bit in 0..256u32 {
            let mut h = [0u8; 32];
            h[(bit / 8) as usize] = 0x80 >> (bit % 8);
            assert_eq!(leading_zero_bits(&h), bit, "single bit at {bit}");
        }
    }

    proptest! {
        #[test]
        fn leading_zeros_match_big_integer_bit_length(bytes in proptest::array::uniform32(any::<u8>())) {
            // Reference: the bit length of the big-endian integer, computed bit by bit.
            let mut bit_length = 0u32;
            for (i, byte) in bytes.iter().enumerate() {
                if *byte != 0 {
                    bit_length = 256 - (i as u32 * 8) - byte.leading_zeros();
                    break;
                }
            }
            prop_assert_eq!(leading_zero_bits(&bytes), 256 - bit_length);
        }

        #[test]
        fn leading_zeros_of_shifted_one(shift in 0u32..256) {
            // 1 << shift as a 256-bit big-endian integer has 255 - shift leading zeros.
            let mut h = [0u8; 32];
            h[31 - (shift / 8) as usize] = 1 << (shift % 8);
            prop_assert_eq!(leading_zero_bits(&h), 255 - shift);
        }
    }

    #[test]
    fn salt_and_password_layout() {
        assert_eq!(salt("ab", "v-1", "127.0.0.1"), b"ab|v-1|127.0.0.1".to_vec());
        assert_eq!(password(0), b"0".to_vec());
        assert_eq!(password(MAX_NONCE), b"9007199254740992".to_vec());
    }

    #[test]
    fn visitor_id_charset() {
        assert!(is_valid_visitor_id("abcDEF012_-"));
        assert!(is_valid_visitor_id(&"a".repeat(128)));
        assert!(!is_valid_visitor_id(&"a".repeat(129)));
        assert!(!is_valid_visitor_id(""));
        assert!(!is_valid_visitor_id("a|b"));
        assert!(!is_valid_visitor_id("é"));
        assert!(!is_valid_visitor_id("a b"));
    }

    #[test]
    fn hash_parsing() {
        let h = "  00FF".to_string() + &"a".repeat(60) + " ";
        let parsed = parse_hash(&h).unwrap();
        assert_eq!(parsed[0], 0);
        assert_eq!(parsed[1], 0xff);
        assert!(parse_hash(&"g".repeat(64)).is_none());
        assert!(parse_hash(&"a".repeat(63)).is_none());
        assert!(parse_hash("ééé").is_none());
    }

    #[test]
    fn trace_ip_takes_first_ip_line() {
        assert_eq!(trace_ip("fl=1\nip= 1.2.3.4 \nip=5.6.7.8"), Some("1.2.3.4"));
        assert_eq!(trace_ip("fl=1"), None);
    }

    #[test]
    fn seeds_are_fresh_hex() {
        let a = new_seed();
        assert_eq!(a.len(), SEED_HEX_LEN);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(a, new_seed());
    }

    #[test]
    fn params_bounds() {
        assert!(Argon2Params::default().validate().is_ok());
        assert!(Argon2Params::new(0, 65536, 1).validate().is_err());
        assert!(Argon2Params::new(17, 65536, 1).validate().is_err());
        assert!(Argon2Params::new(1, 15, 2).validate().is_err());
        assert!(Argon2Params::new(1, 16, 2).validate().is_ok());
        assert!(Argon2Params::new(1, 1_048_577, 1).validate().is_err());
    }
}
