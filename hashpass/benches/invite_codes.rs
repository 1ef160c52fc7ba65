//! What checking an invite code costs a host site: a valid code (one HMAC), and a forged one
//! after [`RETIRED_KEYS`] rotations (one HMAC per remembered key, so flooding the sign-up with
//! forgeries stays cheap).
//!
//! Run with: `cargo bench -p hashpass --bench invite_codes`

use criterion::{Criterion, criterion_group, criterion_main};
use hashpass::invite::{InviteCodes, InviteKey, RETIRED_KEYS};

fn bench(c: &mut Criterion) {
    let codes = InviteCodes::new(InviteKey::random());
    let mut group = c.benchmark_group("invite_verify");
    let valid = codes.issue().code;
    group.bench_function("valid_no_rotations", |b| {
        b.iter(|| codes.verify(std::hint::black_box(&valid)))
    });
    let elsewhere = InviteCodes::new(InviteKey::random()).issue().code;
    group.bench_function("forged_no_rotations", |b| {
        b.iter(|| codes.verify(std::hint::black_box(&elsewhere)))
    });
    for _ in 0..RETIRED_KEYS {
        codes.rotate(&InviteKey::random());
    }
    let valid = codes.issue().code;
    group.bench_function("valid_after_rotations", |b| {
        b.iter(|| codes.verify(std::hint::black_box(&valid)))
    });
    group.bench_function("forged_after_rotations", |b| {
        b.iter(|| codes.verify(std::hint::black_box(&elsewhere)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
