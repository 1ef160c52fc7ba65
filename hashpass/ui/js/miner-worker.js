// One mining worker: tries nonces start, start+stride, ... with Argon2d until it finds a hash
// with enough leading zero bits or is told to stop. Reports progress about twice a second.
//
// Argon2d comes from @phi-ag/argon2, libargon2 built for WASM SIMD: one instance per worker,
// whose memory grows once to the puzzle's size and then serves every hash. Where WASM SIMD is
// missing (or that build cannot load), hash-wasm computes it instead, as before. Both are
// libraries under vendor/, imported only when chosen. Every URL is relative to this script, so
// it works wherever a host mounts HashPass.

let job = null;

// A module whose one function returns a v128 constant: it validates only where WebAssembly has
// the fixed-width SIMD the @phi-ag/argon2 build is compiled for.
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of that type
  0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, // code section: no locals, v128.const
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x0b, // end
]);

// @phi-ag/argon2 refuses fewer than 32 KiB; the server allows down to 8 per lane.
const SIMD_MIN_MEMORY_KIB = 32;

let simd = null; // promise of the SIMD hasher, or of null when it cannot be had
let fallback = null; // promise of the hash-wasm hasher

function hex(bytes) {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}

/** The SIMD build: one instance, kept for every hash this worker computes; null if unavailable. */
function simdHasher() {
  simd ??= (async () => {
    if (typeof WebAssembly !== 'object' || !WebAssembly.validate(SIMD_PROBE)) return null;
    try {
      const { default: Argon2, Argon2Type, Argon2Version } = await import('../vendor/phi-ag-argon2.js');
      const response = await fetch(new URL('../vendor/phi-ag-argon2.wasm', import.meta.url));
      if (!response.ok) throw new Error(`phi-ag-argon2.wasm: HTTP ${response.status}`);
      const { instance } = await WebAssembly.instantiate(await response.arrayBuffer());
      const argon2 = new Argon2(instance);
      // The library measures the password in UTF-16 units: a decimal nonce is ASCII, one byte each.
      return (password, salt, params) => hex(argon2.hash(password, {
        type: Argon2Type.Argon2d,
        version: Argon2Version.Version13,
        hashLength: 32,
        timeCost: params.timeCost,
        memoryCost: params.memoryCost,
        parallelism: params.parallelism,
        salt,
      }).hash);
    } catch {
      return null; // hash-wasm computes it instead
    }
  })();
  return simd;
}

/** hash-wasm: a new instance per hash, no SIMD; any browser with WebAssembly. */
function fallbackHasher() {
  fallback ??= import('../vendor/hash-wasm.esm.min.js').then(({ argon2d }) => (password, salt, params) => argon2d({
    password,
    salt,
    parallelism: params.parallelism,
    iterations: params.timeCost,
    memorySize: params.memoryCost,
    hashLength: 32,
    outputType: 'hex',
  }));
  return fallback;
}

async function hasherFor(params) {
  if (params.memoryCost >= SIMD_MIN_MEMORY_KIB) {
    const fast = await simdHasher();
    if (fast) return fast;
  }
  return fallbackHasher();
}

// The SIMD build hashes synchronously: between hashes the loop gives way to the worker's
// messages (a "stop", a new "start") at least this often, through a task that no timer clamps.
const YIELD_MS = 50;
const channel = new MessageChannel();
function nextTask() {
  return new Promise((resolve) => {
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

function leadingZeroBits(hex) {
  let bits = 0;
  for (const ch of hex) {
    const nibble = parseInt(ch, 16);
    if (nibble === 0) {
      bits += 4;
      continue;
    }
    return bits + Math.clz32(nibble) - 28;
  }
  return bits;
}

function fail(err) {
  self.postMessage({ type: 'error', message: String(err && err.message ? err.message : err), memory: err instanceof RangeError || /memory/i.test(String(err)) });
  job = null;
}

async function mine(current) {
  const salt = new TextEncoder().encode(`${current.seed}|${current.visitorId}|${current.ip}`);
  let hash;
  try {
    hash = await hasherFor(current);
  } catch (err) {
    fail(err);
    return;
  }
  let nonce = current.start;
  let count = 0;
  let best = null;
  let lastReport = performance.now();
  let lastYield = lastReport;
  while (job === current && nonce <= Number.MAX_SAFE_INTEGER) {
    let digest;
    try {
      digest = await hash(String(nonce), salt, current);
    } catch (err) {
      fail(err);
      return;
    }
    count += 1;
    const zeros = leadingZeroBits(digest);
    if (!best || zeros > best.zeros) best = { nonce, hash: digest, zeros };
    if (zeros >= current.difficulty) {
      self.postMessage({ type: 'progress', count, best });
      self.postMessage({ type: 'found', seed: current.seed, nonce, hash: digest, zeros });
      job = null;
      return;
    }
    nonce += current.stride;
    const now = performance.now();
    if (now - lastReport >= 500) {
      self.postMessage({ type: 'progress', count, best });
      count = 0;
      lastReport = now;
    }
    if (now - lastYield >= YIELD_MS) {
      await nextTask();
      lastYield = performance.now();
    }
  }
  if (count) self.postMessage({ type: 'progress', count, best });
}

self.onmessage = (event) => {
  const message = event.data;
  if (message.type === 'start') {
    job = message;
    mine(message);
  } else if (message.type === 'stop') {
    job = null;
  }
};
