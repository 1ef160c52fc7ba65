//! Invite codes (docs/protocol.md#invite-codes): HMAC-SHA256-authenticated tokens a host site holding the key
//! verifies offline.
//!
//! Layout (23 bytes): version `1`, an 8-byte random id (the handle for single-use redemption),
//! the issue time as 4 big-endian bytes of Unix seconds, and the first 10 bytes (80 bits) of
//! HMAC-SHA256 over the preceding 13. Text form: `HASHPASS-` and the bytes in Crockford base32,
//! in dash-separated groups (`HASHPASS-XXXX-XXXX-…-XXXXX`, 54 characters). Input is read
//! case-insensitively with Crockford's aliases (`O`→`0`, `I`/`L`→`1`) and any grouping.

use std::sync::{Arc, RwLock};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::clock::{SharedClock, SystemClock};
use crate::util::{random_bytes, read_lock, write_lock};

const PREFIX: &str = "HASHPASS-";
const VERSION: u8 = 1;
const ID_LEN: usize = 8;
const SIGNED_LEN: usize = 1 + ID_LEN + 4;
const TAG_LEN: usize = 10;
const CODE_LEN: usize = SIGNED_LEN + TAG_LEN;
/// Base32 characters of a code body: ceil(23 · 8 / 5).
const BODY_CHARS: usize = (CODE_LEN * 8).div_ceil(5);
/// Longest text accepted before decoding is even tried.
const MAX_INPUT: usize = 128;
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The invite key: at least 128 bits. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct InviteKey {
    bytes: Vec<u8>,
    /// HMAC-SHA256 with the key already absorbed: each tag starts from a copy.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for InviteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InviteKey({} bits)", self.bits())
    }
}

/// Why a key was refused (texts as the original's admin endpoint, docs/protocol.md#admin-api).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteKeyError {
    /// Not hexadecimal.
    #[error("Invalid hex string")]
    InvalidHex,
    /// Fewer than 128 bits.
    #[error("HMAC secret must be at least 128-bit (32 hex chars)")]
    TooShort,
}

/// Keys compare in constant time.
impl PartialEq for InviteKey {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.bytes.ct_eq(&other.bytes))
    }
}

/// Serialised as hex (kept in the shared puzzle state when an admin rotates it).
impl serde::Serialize for InviteKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(&self.bytes))
    }
}

impl<'de> serde::Deserialize<'de> for InviteKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

impl InviteKey {
    /// A key from hex text (at least 32 hex characters).
    pub fn from_hex(hex_key: &str) -> Result<Self, InviteKeyError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| InviteKeyError::InvalidHex)?;
        if bytes.len() < 16 {
            return Err(InviteKeyError::TooShort);
        }
        Ok(Self::from_bytes(bytes))
    }

    /// 32 random bytes.
    pub fn random() -> Self {
        Self::from_bytes(random_bytes::<32>().to_vec())
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        let mac = Hmac::<Sha256>::new_from_slice(&bytes).expect("HMAC accepts keys of any length");
        Self { bytes, mac }
    }

    /// Key length in bits.
    pub fn bits(&self) -> usize {
        self.bytes.len() * 8
    }

    fn tag(&self, signed: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(signed);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }
}

/// Why a code was refused. Each message tells the user what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// Not a HashPass code at all.
    #[error("This is not a HashPass invite code: check that you copied all of it")]
    Malformed,
    /// Altered, or not issued under any key this instance knows.
    #[error("This invite code is not valid: it was altered, or not issued by this site")]
    BadSignature,
    /// Authentic, but issued under a key an admin has since rotated away.
    #[error(
        "This invite code was issued before the invite key changed and no longer works: ask for a new one"
    )]
    KeyRotated,
    /// Older than the configured lifetime.
    #[error("This invite code has expired: win a new one")]
    Expired,
}

impl InviteError {
    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            InviteError::Malformed => "malformed",
            InviteError::BadSignature => "bad_signature",
            InviteError::KeyRotated => "key_rotated",
            InviteError::Expired => "expired",
        }
    }
}

/// A freshly issued code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedInvite {
    /// The text form.
    pub code: String,
    /// The random id, hex.
    pub id: String,
    /// Issue time (Unix seconds).
    pub issued_at: u64,
}

/// What a valid code says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedInvite {
    /// The random id, hex: the key for single-use redemption.
    pub id: String,
    /// Issue time (Unix seconds).
    pub issued_at: u64,
    /// When it stops being valid, if it expires.
    pub expires_at: Option<u64>,
}

/// How many rotated-away keys are remembered, to tell their codes apart from forgeries.
pub const RETIRED_KEYS: usize = 16;

/// The invite key ring: the current key and up to [`RETIRED_KEYS`] keys rotated away, newest
/// first. Its serialised form (`{"current": "<hex>", "retired": ["<hex>", …]}`) is what a
/// [`crate::invite_key_store::InviteKeyStore`] keeps; its `Debug` shows no key.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InviteKeyRing {
    current: InviteKey,
    #[serde(default)]
    retired: Vec<InviteKey>,
}

impl std::fmt::Debug for InviteKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviteKeyRing")
            .field("current", &self.current)
            .field("retired", &self.retired.len())
            .finish()
    }
}

impl InviteKeyRing {
    /// `current`, with nothing retired.
    pub fn new(current: InviteKey) -> Self {
        Self {
            current,
            retired: Vec::new(),
        }
    }

    /// `current` with `retired` (newest first): `current` is taken out of it, repeats and keys
    /// beyond [`RETIRED_KEYS`] are dropped.
    pub fn with_retired(current: InviteKey, retired: impl IntoIterator<Item = InviteKey>) -> Self {
        let mut ring = Self::new(current);
        ring.retire(retired);
        ring
    }

    /// The key codes are issued and verified under.
    pub fn current(&self) -> &InviteKey {
        &self.current
    }

    /// The keys rotated away, newest first.
    pub fn retired(&self) -> &[InviteKey] {
        &self.retired
    }

    /// Whether `key` is among the keys rotated away.
    pub fn is_retired(&self, key: &InviteKey) -> bool {
        self.retired.contains(key)
    }

    /// The ring after a rotation to `key`: the current key becomes the newest retired one
    /// (nothing changes if `key` already is the current key; a retired `key` comes back).
    pub fn rotated(&self, key: &InviteKey) -> Self {
        if self.current == *key {
            return self.clone();
        }
        Self::with_retired(
            key.clone(),
            std::iter::once(self.current.clone()).chain(self.retired.iter().cloned()),
        )
    }

    /// `self` adopted over `older`, a ring this process held before: `self` decides the
    /// current key and comes first; the keys only `older` knew (its current one too) are kept
    /// after its own retired ones, so codes under them still read as `key_rotated`.
    pub fn over(&self, older: &InviteKeyRing) -> Self {
        let mut ring = self.clone();
        ring.retire(std::iter::once(older.current.clone()).chain(older.retired.iter().cloned()));
        ring
    }

    /// Appends `keys` to the retired ones, without the current key, repeats or any beyond
    /// [`RETIRED_KEYS`].
    fn retire(&mut self, keys: impl IntoIterator<Item = InviteKey>) {
        for key in keys {
            if self.retired.len() == RETIRED_KEYS {
                break;
            }
            if key != self.current && !self.retired.contains(&key) {
                self.retired.push(key);
            }
        }
    }
}

/// Issues and verifies invite codes under a rotatable key.
pub struct InviteCodes {
    keys: RwLock<InviteKeyRing>,
    ttl: Option<u64>,
    clock: SharedClock,
}

impl std::fmt::Debug for InviteCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviteCodes")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl InviteCodes {
    /// Codes under `key`, never expiring, on the system clock.
    pub fn new(key: InviteKey) -> Self {
        Self {
            keys: RwLock::new(InviteKeyRing::new(key)),
            ttl: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The codes `config` describes, on `clock`: signed with its key, or with a random key
    /// when none is set (the builder then warns, unless a key ring on record replaces it: see
    /// [`crate::invite_key_store::restore`]).
    pub fn from_config(
        config: &crate::config::InviteConfig,
        clock: SharedClock,
    ) -> Result<Self, crate::config::ConfigError> {
        let key = config.key()?.unwrap_or_else(InviteKey::random);
        Ok(Self::new(key).with_ttl(config.ttl).with_clock(clock))
    }

    /// Codes expire `secs` seconds after issue (0 = never).
    pub fn with_ttl(mut self, secs: u64) -> Self {
        self.ttl = (secs > 0).then_some(secs);
        self
    }

    /// Uses `clock` for issue times and expiry.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn key(&self) -> InviteKey {
        read_lock(&self.keys).current.clone()
    }

    /// The key ring in force.
    pub fn ring(&self) -> InviteKeyRing {
        read_lock(&self.keys).clone()
    }

    /// Makes `key` the current key (nothing happens if it already is): every earlier code stops
    /// verifying, and is refused as [`InviteError::KeyRotated`] while its key is among the last
    /// [`RETIRED_KEYS`]. In this process only: [`crate::admin::AdminService::regenerate_hmac`]
    /// also puts the rotation on record.
    pub fn rotate(&self, key: &InviteKey) {
        let mut keys = write_lock(&self.keys);
        *keys = keys.rotated(key);
    }

    /// Adopts `ring` (one on record, or an admin's rotation on another instance), keeping the
    /// keys only this process knew as retired ones ([`InviteKeyRing::over`]).
    pub fn adopt(&self, ring: &InviteKeyRing) {
        let mut keys = write_lock(&self.keys);
        *keys = ring.over(&keys);
    }

    /// Bits of the current key.
    pub fn key_bits(&self) -> usize {
        self.key().bits()
    }

    /// Issues a new code.
    pub fn issue(&self) -> IssuedInvite {
        let id = random_bytes::<ID_LEN>();
        let issued_at = self.clock.now().max(0.0) as u64;
        let mut bytes = [0u8; CODE_LEN];
        bytes[0] = VERSION;
        bytes[1..1 + ID_LEN].copy_from_slice(&id);
        bytes[1 + ID_LEN..SIGNED_LEN]
            .copy_from_slice(&(issued_at.min(u64::from(u32::MAX)) as u32).to_be_bytes());
        let tag = self.key().tag(&bytes[..SIGNED_LEN]);
        bytes[SIGNED_LEN..].copy_from_slice(&tag);
        IssuedInvite {
            code: format_code(&bytes),
            id: hex::encode(id),
            issued_at,
        }
    }

    /// Checks a code: well-formed, authentic under the current key, not expired.
    pub fn verify(&self, code: &str) -> Result<VerifiedInvite, InviteError> {
        let bytes = parse_current(code).ok_or(InviteError::Malformed)?;
        let authentic_under =
            |key: &InviteKey| bool::from(key.tag(&bytes[..SIGNED_LEN]).ct_eq(&bytes[SIGNED_LEN..]));
        {
            let keys = read_lock(&self.keys);
            if !authentic_under(&keys.current) {
                return Err(if keys.retired.iter().any(authentic_under) {
                    InviteError::KeyRotated
                } else {
                    InviteError::BadSignature
                });
            }
        }
        let mut time = [0u8; 4];
        time.copy_from_slice(&bytes[1 + ID_LEN..SIGNED_LEN]);
        let issued_at = u64::from(u32::from_be_bytes(time));
        let expires_at = self.ttl.map(|ttl| issued_at + ttl);
        if expires_at.is_some_and(|at| self.clock.now() > at as f64) {
            return Err(InviteError::Expired);
        }
        Ok(VerifiedInvite {
            id: id_of(&bytes),
            issued_at,
            expires_at,
        })
    }
}

/// The id a well-formed code names, without checking its tag or age: for display only (the
/// admin's invite log shows the redemption state of codes issued under rotated keys too).
pub fn code_id(code: &str) -> Option<String> {
    parse_current(code).map(|bytes| id_of(&bytes))
}

/// The bytes of a well-formed code of the current version.
fn parse_current(code: &str) -> Option<[u8; CODE_LEN]> {
    parse_code(code).filter(|bytes| bytes[0] == VERSION)
}

/// The id a code's bytes carry, in hex.
fn id_of(bytes: &[u8; CODE_LEN]) -> String {
    hex::encode(&bytes[1..1 + ID_LEN])
}

fn format_code(bytes: &[u8; CODE_LEN]) -> String {
    let body = base32_encode(bytes);
    // Groups of four, the last taking up to five (8 × 4 + 5 for 37 characters).
    let mut rest = body.as_str();
    let mut groups = Vec::new();
    while rest.len() > 5 {
        let (group, tail) = rest.split_at(4);
        groups.push(group);
        rest = tail;
    }
    groups.push(rest);
    format!("{PREFIX}{}", groups.join("-"))
}

fn parse_code(code: &str) -> Option<[u8; CODE_LEN]> {
    let code = code.trim();
    if code.len() > MAX_INPUT || !code.is_ascii() {
        return None;
    }
    let head = code.get(..PREFIX.len())?;
    if !head.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let body: Vec<u8> = code[PREFIX.len()..]
        .bytes()
        .filter(|b| *b != b'-')
        .collect();
    if body.len() != BODY_CHARS {
        return None;
    }
    let decoded = base32_decode(&body)?;
    decoded.try_into().ok()
}

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn base32_value(c: u8) -> Option<u32> {
    let c = match c.to_ascii_uppercase() {
        b'O' => b'0',
        b'I' | b'L' => b'1',
        other => other,
    };
    ALPHABET.iter().position(|a| *a == c).map(|p| p as u32)
}

fn base32_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &c in text {
        buffer = (buffer << 5) | base32_value(c)?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // The padding bits of the last character must be zero: one text per code.
    (buffer == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use proptest::prelude::*;

    fn codes() -> InviteCodes {
        InviteCodes::new(InviteKey::from_hex("000102030405060708090a0b0c0d0e0f").unwrap())
    }

    #[test]
    fn round_trip_and_text_form() {
        let c = codes();
        let issued = c.issue();
        assert!(issued.code.starts_with(PREFIX));
        assert!(issued.code.len() <= 56, "{}", issued.code);
        let groups: Vec<&str> = issued.code[PREFIX.len()..].split('-').collect();
        assert!(
            groups.iter().all(|g| (4..=5).contains(&g.len())),
            "{groups:?}"
        );
        let verified = c.verify(&issued.code).unwrap();
        assert_eq!(
            (verified.id, verified.issued_at),
            (issued.id, issued.issued_at)
        );
        assert_eq!(verified.expires_at, None);
    }

    #[test]
    fn lenient_input() {
        let c = codes();
        let code = c.issue().code;
        assert!(c.verify(&code.to_lowercase()).is_ok());
        assert!(c.verify(&format!("  {code} ")).is_ok());
        let regrouped = format!("{PREFIX}{}", code[PREFIX.len()..].replace('-', ""));
        assert!(c.verify(&regrouped).is_ok());
        let aliased = code.replacen('0', "O", 1).replacen('1', "l", 1);
        assert!(c.verify(&aliased).is_ok());
    }

    #[test]
    fn every_single_character_tamper_fails() {
        let c = codes();
        let code = c.issue().code;
        for (i, ch) in code.char_indices().skip(PREFIX.len()) {
            if ch == '-' {
                continue;
            }
            for replacement in ALPHABET.iter().map(|b| *b as char) {
                if replacement == ch || (ch == '0' && replacement == 'O') {
                    continue;
                }
                let mut tampered = code.clone();
                tampered.replace_range(i..i + 1, &replacement.to_string());
                assert!(c.verify(&tampered).is_err(), "{tampered}");
            }
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let c = codes();
        let code = c.issue().code;
        for bad in [
            "",
            "HASHPASS-",
            "hashpass",
            &code[..code.len() - 1],
            &format!("{code}A"),
            &code.replace("HASHPASS-", "HASHPAS-"),
            "HASHPASS-ÄÄÄÄ-ÄÄÄÄ",
            &"X".repeat(10_000),
            "HASHPASS-UUUU-UUUU-UUUU-UUUU-UUUU-UUUU-UUUU-UUUU-UUUUU",
        ] {
            assert_eq!(c.verify(bad).unwrap_err(), InviteError::Malformed, "{bad}");
        }
    }

    #[test]
    fn rotation_invalidates() {
        let c = codes();
        let code = c.issue().code;
        c.rotate(&InviteKey::random());
        assert_eq!(c.verify(&code).unwrap_err(), InviteError::KeyRotated);
        assert!(c.verify(&c.issue().code).is_ok());
        assert_eq!(c.key_bits(), 256);
        // A tampered old code is a forgery, not a rotated one.
        let mut tampered = code.clone();
        let replacement = if &tampered[20..21] == "0" { "1" } else { "0" };
        tampered.replace_range(20..21, replacement);
        assert_eq!(c.verify(&tampered).unwrap_err(), InviteError::BadSignature);
        // Only the last RETIRED_KEYS keys are remembered.
        for _ in 0..RETIRED_KEYS - 1 {
            c.rotate(&InviteKey::random());
        }
        assert_eq!(c.verify(&code).unwrap_err(), InviteError::KeyRotated);
        c.rotate(&InviteKey::random());
        assert_eq!(c.verify(&code).unwrap_err(), InviteError::BadSignature);
    }

    #[test]
    fn an_adopted_ring_keeps_the_keys_only_this_process_knew() {
        let key = |b: u8| InviteKey::from_hex(&hex::encode([b; 16])).unwrap();
        // This instance started on its own key 1; another one rotated from its key 2 to 3.
        let local = InviteCodes::new(key(1));
        let before = local.issue().code;
        let shared = InviteKeyRing::new(key(2)).rotated(&key(3));
        local.adopt(&shared);
        assert_eq!(local.ring().current(), &key(3));
        assert_eq!(local.ring().retired(), &[key(2), key(1)]);
        assert_eq!(local.verify(&before).unwrap_err(), InviteError::KeyRotated);
        // Rotating back to a retired key makes it current and retires the one in force.
        let back = local.ring().rotated(&key(1));
        assert_eq!(
            (back.current(), back.retired()),
            (&key(1), &[key(3), key(2)][..])
        );
        assert!(back.is_retired(&key(3)) && !back.is_retired(&key(1)));
        // No more than RETIRED_KEYS are kept, whatever is adopted.
        let many = InviteKeyRing::with_retired(key(100), (0..40).map(key));
        assert_eq!(many.retired().len(), RETIRED_KEYS);
        assert_eq!(many.over(&local.ring()).retired().len(), RETIRED_KEYS);
        // The serialised ring shows the keys as hex; its Debug shows none.
        let json = serde_json::to_value(&back).unwrap();
        assert_eq!(json["current"], hex::encode([1u8; 16]));
        assert_eq!(serde_json::from_value::<InviteKeyRing>(json).unwrap(), back);
        assert!(!format!("{back:?}").contains("0101"), "{back:?}");
    }

    #[test]
    fn expiry_with_a_fake_clock() {
        let clock = FakeClock::new(1_000_000.0);
        let c = codes().with_ttl(3600).with_clock(Arc::new(clock.clone()));
        let code = c.issue().code;
        clock.advance_secs(3600.0);
        assert_eq!(c.verify(&code).unwrap().expires_at, Some(1_003_600));
        clock.advance_secs(1.0);
        assert_eq!(c.verify(&code).unwrap_err(), InviteError::Expired);
        let forever = codes().with_ttl(0).with_clock(Arc::new(clock.clone()));
        let code = forever.issue().code;
        clock.advance_secs(1e9);
        assert!(forever.verify(&code).is_ok());
    }

    #[test]
    fn keys() {
        assert_eq!(
            InviteKey::from_hex("zz").unwrap_err().to_string(),
            "Invalid hex string"
        );
        assert_eq!(
            InviteKey::from_hex("00112233").unwrap_err().to_string(),
            "HMAC secret must be at least 128-bit (32 hex chars)"
        );
        assert!(!format!("{:?}", InviteKey::from_hex(&"ab".repeat(16)).unwrap()).contains("ab"));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_verifies(text in ".{0,80}") {
            prop_assert!(codes().verify(&text).is_err());
        }

        #[test]
        fn arbitrary_bodies_never_verify(body in "[0-9A-Za-z-]{30,50}") {
            let code = format!("HASHPASS-{body}");
            prop_assert!(codes().verify(&code).is_err());
        }
    }
}
