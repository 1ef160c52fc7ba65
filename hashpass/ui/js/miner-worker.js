// One mining worker: tries nonces start, start+stride, ... with Argon2d until it finds a hash
// with enough leading zero bits or is told to stop. Reports progress about twice a second.
// The import is relative to this script, so it works wherever a host mounts HashPass.
import { argon2d } from '../vendor/hash-wasm.esm.min.js';

let job = null;

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

async function mine(current) {
  const salt = `${current.seed}|${current.visitorId}|${current.ip}`;
  let nonce = current.start;
  let count = 0;
  let best = null;
  let lastReport = performance.now();
  while (job === current && nonce <= Number.MAX_SAFE_INTEGER) {
    let hash;
    try {
      hash = await argon2d({
        password: String(nonce),
        salt,
        parallelism: current.parallelism,
        iterations: current.timeCost,
        memorySize: current.memoryCost,
        hashLength: 32,
        outputType: 'hex',
      });
    } catch (err) {
      self.postMessage({ type: 'error', message: String(err && err.message ? err.message : err), memory: err instanceof RangeError || /memory/i.test(String(err)) });
      job = null;
      return;
    }
    count += 1;
    const zeros = leadingZeroBits(hash);
    if (!best || zeros > best.zeros) best = { nonce, hash, zeros };
    if (zeros >= current.difficulty) {
      self.postMessage({ type: 'progress', count, best });
      self.postMessage({ type: 'found', seed: current.seed, nonce, hash, zeros });
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
