//! One verification's cost through the [`Argon2Verifier`] (buffer pool included) next to a
//! fresh allocation per hash, at the production parameters (65536 KiB, t=3) and the light ones
//! (1024 KiB, t=1), and the browser tests' (64 KiB, t=1).
//!
//! Run with: `cargo bench -p hashpass --bench verify`

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hashpass::puzzle::{self, Argon2Params};
use hashpass::verify::{Argon2Verifier, Verifier, argon2d};

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let salt = puzzle::salt(
        "00112233445566778899aabbccddeeff",
        "visitor-abc123",
        "127.0.0.1",
    );
    for (name, params, samples) in [
        ("m65536_t3", Argon2Params::new(3, 65536, 1), 20),
        ("m1024_t1", Argon2Params::new(1, 1024, 1), 100),
        // The browser end-to-end tests' parameters.
        ("m64_t1", Argon2Params::new(1, 64, 1), 100),
    ] {
        let mut group = c.benchmark_group(format!("verify_{name}"));
        group
            .sample_size(samples)
            .measurement_time(Duration::from_secs(10));
        let pooled = Argon2Verifier::new(1024, 16);
        let fresh = Argon2Verifier::new(1024, 16).without_buffer_reuse();
        let mut nonce = 0u64;
        group.bench_function("verifier_pooled_buffers", |b| {
            b.iter(|| {
                nonce += 1;
                runtime
                    .block_on(pooled.compute(params, &puzzle::password(nonce), &salt))
                    .unwrap()
            })
        });
        group.bench_function("verifier_fresh_allocation", |b| {
            b.iter(|| {
                nonce += 1;
                runtime
                    .block_on(fresh.compute(params, &puzzle::password(nonce), &salt))
                    .unwrap()
            })
        });
        group.bench_function("argon2d_direct_fresh", |b| {
            b.iter(|| {
                nonce += 1;
                argon2d(params, &puzzle::password(nonce), &salt).unwrap()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
