//! Known-answer tests: our Argon2d output against values computed independently with
//! argon2-cffi 23 (Python bindings over libargon2, the C reference implementation):
//! `argon2.low_level.hash_secret_raw(password, salt, t, m, p, 32, Type.D).hex()`.
//! DESIGN.md records the first two as identical from libargon2, argon2-cffi and hash-wasm.

use hashpass::puzzle::{self, Argon2Params, leading_zero_bits};
use hashpass::verify::{Argon2Verifier, Verifier, argon2d};

const SALT: &str =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff|visitor-abc123|127.0.0.1";

/// (memory KiB, time, parallelism, expected hex) for password "123456" and [`SALT`].
const CASES: &[(u32, u32, u32, &str)] = &[
    (
        65536,
        3,
        1,
        "11f3a787629e8279cd00195d484e6657e0bae49697423ed8792c33b5d448f260",
    ),
    (
        1024,
        1,
        1,
        "a54127be6e40c482a3473ee68ab85c2e79f9442fa6ff1cc5cd3759f8a995b280",
    ),
    (
        4096,
        2,
        2,
        "2574400dcd11c76a8d42af7e1818cd5381a56cee9351170f652dcc926d8e0aa0",
    ),
    (
        256,
        4,
        4,
        "1c489ef9e7c6ca0069e17f3e96512fc9a136258de9fe9f548010d6f576bec611",
    ),
];

#[test]
fn argon2d_matches_the_c_reference() {
    for &(m, t, p, expected) in CASES {
        let hash = argon2d(Argon2Params::new(t, m, p), b"123456", SALT.as_bytes()).unwrap();
        assert_eq!(hex::encode(hash), expected, "m={m} t={t} p={p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pooled_verifier_matches_the_c_reference() {
    let verifier = Argon2Verifier::new(128, 16);
    // Twice each, so the second run reuses a pooled buffer already written by the first.
    for _ in 0..2 {
        for &(m, t, p, expected) in CASES {
            let computed = verifier
                .compute(Argon2Params::new(t, m, p), b"123456", SALT.as_bytes())
                .await
                .unwrap();
            assert_eq!(hex::encode(computed.hash), expected, "m={m} t={t} p={p}");
        }
    }
}

#[test]
fn salt_and_password_follow_the_puzzle_contract() {
    // The largest nonce with an IPv6 client: password "9007199254740992", salt "<seed>|<vid>|::1".
    let salt = puzzle::salt("seedseedseedseed", "v_1", "::1");
    let hash = argon2d(
        Argon2Params::new(1, 64, 1),
        &puzzle::password(puzzle::MAX_NONCE),
        &salt,
    )
    .unwrap();
    assert_eq!(
        hex::encode(hash),
        "429c7263de16940a98064cb37d66de268e2546dacf86057c89861bab0137be8d"
    );
    assert_eq!(leading_zero_bits(&hash), 1); // 0x42 = 0100_0010
}
