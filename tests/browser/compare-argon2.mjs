// Compares the WASM Argon2 builds published on npm side by side in headless Chromium: each one in
// its own Web Worker (as the miner page hashes), first a known-answer check inside the browser
// (Argon2d, version 0x13, 32-byte hash, password = the decimal nonce, salt = "seed|visitorId|ip",
// as js/miner-worker.js hashes), then its per-worker hashrate at 65536 KiB t=3 p=1 and at
// 1024 KiB t=1 p=1. One worker hashes at a time; rounds go round-robin over the builds so load
// from elsewhere on the machine falls on all of them alike; each figure is the median of the
// rounds. The page's own worker (hashpass/ui/js/miner-worker.js, speaking its start/progress
// protocol) is measured too, once as it runs and once with WASM SIMD hidden from it, so its
// fallback is checked the same way.
//
// The builds are npm packages pinned by tests/browser/argon2-builds/package-lock.json, not part
// of the test suite. From the workspace root:
//
//   npm ci --prefix tests/browser && npm ci --prefix hashpass/ui && npm ci --prefix tests/browser/argon2-builds
//   node tests/browser/compare-argon2.mjs [--rounds 5] [--large-seconds 4] [--small-seconds 1.5] [--only id,id] [--out tests/output/argon2]
//
// --only takes ids of BUILDS below (hash-wasm, phi-ag, argon2-browser-simd, argon2-browser,
// aeternity-simd, argon2-wasm-esm, argon2-wasm, argon2-wasm-edge, argon2id, page, page-no-simd).
// It serves the files itself (127.0.0.1, an ephemeral port, the page's Content-Security-Policy),
// so no HashPass server is needed. Prints a Markdown table (progress on stderr); --out also
// writes table.md and results.json (every round's figure).
import http from 'node:http';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, run, watchedContext } from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const BUILDS_DIR = path.join(here, 'argon2-builds', 'node_modules');
const UI_DIR = path.resolve(here, '..', '..', 'hashpass', 'ui');

// The page's policy (hashpass/src/api.rs, security_headers), so a build that needs eval fails here
// as it would there.
const CSP =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; worker-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'";

// Known answers of hashpass/tests/known_answers.rs (libargon2, the C reference, through
// argon2-cffi; the core's `argon2` crate matches them): password "123456", this salt.
const KAT_SEED = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
const KAT_VISITOR = 'visitor-abc123';
const KAT_IP = '127.0.0.1';
const KAT_NONCE = 123456;
const KAT = [
  { m: 65536, t: 3, p: 1, hex: '11f3a787629e8279cd00195d484e6657e0bae49697423ed8792c33b5d448f260' },
  { m: 1024, t: 1, p: 1, hex: 'a54127be6e40c482a3473ee68ab85c2e79f9442fa6ff1cc5cd3759f8a995b280' },
  { m: 4096, t: 2, p: 2, hex: '2574400dcd11c76a8d42af7e1818cd5381a56cee9351170f652dcc926d8e0aa0' },
  { m: 256, t: 4, p: 4, hex: '1c489ef9e7c6ca0069e17f3e96512fc9a136258de9fe9f548010d6f576bec611' },
];
// For the page's worker also below @phi-ag/argon2's 32 KiB floor, where it hands over to hash-wasm
// (the server allows 8 KiB per lane). From libargon2's own command line (Debian's argon2):
// `echo -n 123456 | argon2 SALT -d -t 2 -k 16 -p 1 -l 32 -r`.
const KAT_PAGE = [
  ...KAT,
  { m: 16, t: 2, p: 1, hex: '6370131aa3e97b72a29df56c26e0dc2aa968708bb7ef72894d370ff3758f9b0e' },
  { m: 8, t: 2, p: 1, hex: '428983ecf1e1a8bceb1e2d1605b787c6e632322d961a52027a224d73870e85ae' },
];

const SETTINGS = [
  { name: '65536 KiB t=3', m: 65536, t: 3, p: 1, secondsOpt: 'large-seconds', seconds: 4, min: 3 },
  { name: '1024 KiB t=1', m: 1024, t: 1, p: 1, secondsOpt: 'small-seconds', seconds: 1.5, min: 20 },
];

// The loop every library's worker runs (a classic script, so classic and module workers both load
// it): `serve(load)`, where load() resolves to { hash(case) -> hex, memory?() -> bytes }.
const LOOP = `
self.hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
self.serve = (load) => {
  const message = (e) => String(e && (e.message || e.code) ? e.message || e.code : e);
  let loading = null;
  self.onmessage = async ({ data }) => {
    try {
      loading ??= load();
      const build = await loading;
      if (data.type === 'kat') {
        const results = [];
        for (const c of data.cases) {
          try {
            results.push({ hex: String(await build.hash(c)) });
          } catch (e) {
            results.push({ error: message(e) });
          }
        }
        self.postMessage({ type: 'kat', results });
      } else if (data.type === 'round') {
        const { m, t, p, salt, ms, min } = data;
        let nonce = data.nonce;
        // One uncounted hash first: the step to these parameters (allocation, growth) is not the rate.
        await build.hash({ password: String(nonce++), salt, m, t, p });
        const before = build.memory ? build.memory() : null;
        let hashes = 0;
        const start = performance.now();
        let now = start;
        while (hashes < min || now - start < ms) {
          await build.hash({ password: String(nonce++), salt, m, t, p });
          hashes += 1;
          now = performance.now();
        }
        const after = build.memory ? build.memory() : null;
        self.postMessage({ type: 'round', hashes, ms: now - start, memory: before === null ? null : { before, after } });
      }
    } catch (e) {
      self.postMessage({ type: 'error', message: message(e) });
    }
  };
};
`;

// Hides WASM SIMD from a worker: every WebAssembly.validate answers false, so a SIMD probe fails.
const NO_SIMD = `WebAssembly.validate = () => false;\n`;

const utf8 = 'const utf8 = (s) => new TextEncoder().encode(s);\n';

// hash-wasm's API (and its fork's): `argon2d` from the module at `url`.
const hashWasmSource = (url) => `
import { argon2d } from '${url}';
serve(async () => ({
  hash: (c) => argon2d({ password: c.password, salt: c.salt, parallelism: c.p, iterations: c.t, memorySize: c.m, hashLength: 32, outputType: 'hex' }),
}));`;

// argon2-browser's API (and its forks'), on the `argon2` object in scope; `type` is the
// name its ArgonType gives Argon2d.
const argon2BrowserServe = (type = 'Argon2d') => `serve(async () => ({
  hash: async (c) => (await argon2.hash({ pass: c.password, salt: c.salt, time: c.t, mem: c.m, hashLen: 32, parallelism: c.p, type: argon2.ArgonType.${type} })).hashHex,
}));`;

// argon2-browser itself, with its binary `wasm` (dist/argon2.wasm or dist/argon2-simd.wasm).
const argon2BrowserSource = (wasm) => `
// Its own hooks: the binary from here, the Emscripten glue as a classic script (as a module,
// in strict mode, it fails to load and the library waits for ever).
self.loadArgon2WasmBinary = async () => new Uint8Array(await (await fetch('/nm/argon2-browser/dist/${wasm}')).arrayBuffer());
self.loadArgon2WasmModule = async () => importScripts('/nm/argon2-browser/dist/argon2.js');
importScripts('/nm/argon2-browser/lib/argon2.js');
const argon2 = self.argon2;
${argon2BrowserServe()}`;

/**
 * The builds. `source` is the worker's script (after the loop is loaded); `classic` workers load
 * the loop with importScripts, module workers import it.
 */
const BUILDS = [
  {
    id: 'hash-wasm',
    label: 'hash-wasm',
    pkg: 'hash-wasm',
    note: 'the page\'s build before, its fallback now; no SIMD; a new instance per hash',
    source: hashWasmSource('/nm/hash-wasm/dist/index.esm.min.js'),
  },
  {
    id: 'phi-ag',
    label: '@phi-ag/argon2',
    pkg: '@phi-ag/argon2',
    note: 'SIMD; one instance, its memory reused',
    source: `
import Argon2, { Argon2Type, Argon2Version } from '/nm/@phi-ag/argon2/dist/index.js';
${utf8}
serve(async () => {
  const bytes = await (await fetch('/nm/@phi-ag/argon2/dist/argon2.wasm')).arrayBuffer();
  const { instance } = await WebAssembly.instantiate(bytes);
  const argon2 = new Argon2(instance);
  return {
    memory: () => instance.exports.memory.buffer.byteLength,
    hash: (c) => hex(argon2.hash(c.password, {
      type: Argon2Type.Argon2d, version: Argon2Version.Version13, hashLength: 32,
      timeCost: c.t, memoryCost: c.m, parallelism: c.p, salt: utf8(c.salt),
    }).hash),
  };
});`,
  },
  {
    id: 'argon2-browser-simd',
    label: 'argon2-browser, SIMD build',
    pkg: 'argon2-browser',
    note: 'dist/argon2-simd.wasm; one instance',
    classic: true,
    source: argon2BrowserSource('argon2-simd.wasm'),
  },
  {
    id: 'argon2-browser',
    label: 'argon2-browser',
    pkg: 'argon2-browser',
    note: 'dist/argon2.wasm (no SIMD); one instance',
    classic: true,
    source: argon2BrowserSource('argon2.wasm'),
  },
  {
    id: 'aeternity-simd',
    label: '@aeternity/argon2-browser, SIMD build',
    pkg: '@aeternity/argon2-browser',
    note: 'fork of argon2-browser, dist/argon2-simd.wasm; one instance',
    classic: true,
    source: `
self.loadArgon2WasmBinary = () => fetch('/nm/@aeternity/argon2-browser/dist/argon2-simd.wasm').then((r) => r.arrayBuffer()).then((b) => new Uint8Array(b));
importScripts('/nm/@aeternity/argon2-browser/dist/argon2.min.js');
const argon2 = self.argon2;
${argon2BrowserServe()}`,
  },
  {
    id: 'argon2-wasm-esm',
    label: 'argon2-wasm-esm',
    pkg: 'argon2-wasm-esm',
    note: 'argon2-browser\'s older build, inlined (argon2-wasm-pro ships the same binary); no SIMD',
    source: `
import argon2 from '/nm/argon2-wasm-esm/lib/argon2.js';
${argon2BrowserServe('argon2d')}`,
  },
  {
    id: 'argon2-wasm',
    label: 'argon2-wasm',
    pkg: 'argon2-wasm',
    note: 'CommonJS, loaded through a require shim; no SIMD',
    classic: true,
    source: `
// A minimal CommonJS shim: each file sees module/exports/require while importScripts runs it.
const registry = {};
const load = (url, key) => {
  self.module = { exports: {} };
  self.exports = self.module.exports;
  importScripts(url);
  registry[key] = self.module.exports;
};
self.require = (p) => registry[p.split('/').pop()];
load('/nm/argon2-wasm/lib/base64.js', 'base64.js');
load('/nm/argon2-wasm/generated/argon2.wasm.js', 'argon2.wasm.js');
load('/nm/argon2-wasm/generated/emscripten-runner.js', 'emscripten-runner.js');
load('/nm/argon2-wasm/index.js', 'index.js');
const urbit = registry['index.js'];
serve(async () => ({
  hash: async (c) => {
    const r = await urbit.hash({ pass: c.password, salt: c.salt, time: c.t, mem: c.m, hashLen: 32, parallelism: c.p, type: urbit.types.Argon2d });
    if (!r || !r.hashHex) throw new Error(r && r.message ? r.message : 'no hash');
    return r.hashHex;
  },
}));`,
  },
  {
    id: 'argon2-wasm-edge',
    label: 'argon2-wasm-edge',
    pkg: 'argon2-wasm-edge',
    note: 'fork of hash-wasm; a new instance per hash',
    source: hashWasmSource('/nm/argon2-wasm-edge/dist/index.esm.js'),
  },
  {
    id: 'argon2id',
    label: 'argon2id',
    pkg: 'argon2id',
    note: 'openpgp.js; SIMD; Argon2id only (the type is fixed), so its rate is Argon2id\'s',
    source: `
import setupWasm from '/nm/argon2id/lib/setup.js';
${utf8}
serve(async () => {
  const compile = async (name) => WebAssembly.compile(await (await fetch('/nm/argon2id/dist/' + name)).arrayBuffer());
  const [simd, plain] = await Promise.all([compile('simd.wasm'), compile('no-simd.wasm')]);
  const instantiate = (module) => async (imports) => ({ module, instance: await WebAssembly.instantiate(module, imports) });
  const argon2id = await setupWasm(instantiate(simd), instantiate(plain));
  return {
    hash: (c) => hex(argon2id({ password: utf8(c.password), salt: utf8(c.salt), parallelism: c.p, passes: c.t, memorySize: c.m, tagLength: 32 })),
  };
});`,
  },
  {
    id: 'page',
    label: 'the miner page\'s worker',
    page: true,
    note: 'hashpass/ui/js/miner-worker.js, a new worker per job as the page starts them',
  },
  {
    id: 'page-no-simd',
    label: 'the miner page\'s worker, SIMD hidden',
    page: true,
    noSimd: true,
    note: 'the same, WebAssembly.validate answering false (its fallback)',
  },
];

function workerScript(build) {
  if (build.classic) return `importScripts('/bench/loop.js');\n${build.source}\n`;
  return `import '/bench/loop.js';\n${build.source}\n`;
}

const TYPES = { '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm', '.json': 'application/json', '.html': 'text/html; charset=utf-8' };

/** Serves the page, the workers, the builds' packages (/nm/) and hashpass/ui (/ui/). */
function serveFiles() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    let body = null;
    let type = TYPES['.js'];
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    if (url.pathname === '/') {
      body = '<!doctype html><meta charset="utf-8"><title>Argon2 builds</title><p>Argon2 builds</p>';
      type = TYPES['.html'];
    } else if (url.pathname === '/bench/loop.js') {
      body = LOOP;
    } else if (url.pathname === '/bench/no-simd.js') {
      body = NO_SIMD;
    } else if (url.pathname === '/bench/page-no-simd.js') {
      // Modules run in import order: the stub is in place before the page's worker runs.
      body = "import '/bench/no-simd.js';\nimport '/ui/js/miner-worker.js';\n";
    } else if (url.pathname.startsWith('/bench/')) {
      const build = BUILDS.find((b) => `/bench/${b.id}.js` === url.pathname && !b.page);
      if (build) body = workerScript(build);
    } else {
      for (const [prefix, dir] of [['/nm/', BUILDS_DIR], ['/ui/', UI_DIR]]) {
        if (!url.pathname.startsWith(prefix)) continue;
        const file = path.resolve(dir, decodeURIComponent(url.pathname.slice(prefix.length)));
        if (!file.startsWith(dir + path.sep)) break;
        try {
          if (statSync(file).isFile()) {
            body = readFileSync(file);
            type = TYPES[path.extname(file)] || 'application/octet-stream';
          }
        } catch {
          // not found
        }
      }
    }
    if (body === null) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': type,
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
    });
    res.end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function readArgs() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function version(pkg) {
  if (pkg) return JSON.parse(readFileSync(path.join(BUILDS_DIR, pkg, 'package.json'), 'utf8')).version;
  // The page's worker: the Argon2 libraries hashpass/ui pins.
  const { dependencies } = JSON.parse(readFileSync(path.join(UI_DIR, 'package.json'), 'utf8'));
  return ['@phi-ag/argon2', 'hash-wasm'].filter((name) => dependencies[name]).map((name) => `${name} ${dependencies[name]}`).join(', ');
}

// ---------- in the page ----------

/** Starts a library's worker in the page, kept in window.builds[id] for every round. */
async function startWorker(page, build) {
  await page.evaluate(({ id, url, classic }) => {
    window.builds ??= {};
    const worker = new Worker(url, classic ? {} : { type: 'module' });
    const entry = { worker, failure: null, waiters: [] };
    worker.onmessage = (event) => {
      const waiter = entry.waiters.shift();
      if (waiter) waiter(event.data);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      entry.failure = event.message || 'worker failed to load';
      for (const waiter of entry.waiters.splice(0)) waiter({ type: 'error', message: entry.failure });
    };
    window.builds[id] = entry;
  }, { id: build.id, url: `/bench/${build.id}.js`, classic: !!build.classic });
}

/** Sends one message to a library's worker and waits for its answer. */
function ask(page, id, message, timeoutMs) {
  return page.evaluate(({ id, message, timeoutMs }) => new Promise((resolve) => {
    const entry = window.builds[id];
    if (entry.failure) return resolve({ type: 'error', message: entry.failure });
    const timer = setTimeout(() => resolve({ type: 'error', message: `no answer in ${timeoutMs} ms` }), timeoutMs);
    entry.waiters.push((data) => {
      clearTimeout(timer);
      resolve(data);
    });
    entry.worker.postMessage(message);
  }), { id, message, timeoutMs });
}

/**
 * The page's worker, through its own protocol, a new one for each job as js/miner.js starts them
 * (a worker busy mining does not get to read a message: the page terminates it). `found`:
 * difficulty 0, so its first hash (of `start`) comes back. `measure`: difficulty 256, progress
 * counted after the first report (which holds the start-up) until `ms` have passed and `min`
 * hashes were counted.
 */
function askPage(page, url, job, mode, timeoutMs) {
  return page.evaluate(({ url, job, mode, timeoutMs }) => new Promise((resolve) => {
    const worker = new Worker(url, { type: 'module' });
    let started = 0;
    let hashes = 0;
    const done = (result) => {
      clearTimeout(timer);
      worker.terminate();
      resolve(result);
    };
    const timer = setTimeout(() => done({ type: 'error', message: `no answer in ${timeoutMs} ms` }), timeoutMs);
    worker.onerror = (event) => {
      event.preventDefault();
      done({ type: 'error', message: event.message || 'worker failed to load' });
    };
    worker.onmessage = ({ data }) => {
      if (data.type === 'error') return done(data);
      if (mode === 'found') {
        if (data.type === 'found') done({ type: 'found', hex: data.hash, nonce: data.nonce });
        return;
      }
      if (data.type !== 'progress') return;
      const now = performance.now();
      if (!started) {
        started = now;
        return;
      }
      hashes += data.count;
      if (now - started >= job.ms && hashes >= job.min) done({ type: 'round', hashes, ms: now - started });
    };
    worker.postMessage({ type: 'start', ...job.start });
  }), { url, job, mode, timeoutMs });
}

function pageUrl(build) {
  return build.noSimd ? '/bench/page-no-simd.js' : '/ui/js/miner-worker.js';
}

// ---------- the run ----------

async function knownAnswers(page, build) {
  const kat = build.page ? KAT_PAGE : KAT;
  const cases = kat.map((k) => ({ password: String(KAT_NONCE), salt: `${KAT_SEED}|${KAT_VISITOR}|${KAT_IP}`, m: k.m, t: k.t, p: k.p }));
  let results;
  if (build.page) {
    results = [];
    for (const k of kat) {
      const start = { seed: KAT_SEED, visitorId: KAT_VISITOR, ip: KAT_IP, difficulty: 0, timeCost: k.t, memoryCost: k.m, parallelism: k.p, start: KAT_NONCE, stride: 1 };
      const answer = await askPage(page, pageUrl(build), { start }, 'found', 120_000);
      results.push(answer.type === 'found' ? { hex: answer.hex } : { error: answer.message });
    }
  } else {
    const answer = await ask(page, build.id, { type: 'kat', cases }, 300_000);
    results = answer.type === 'kat' ? answer.results : kat.map(() => ({ error: answer.message }));
  }
  return kat.map((k, i) => ({ m: k.m, t: k.t, p: k.p, ok: results[i].hex === k.hex, got: results[i].hex ?? null, error: results[i].error ?? null }));
}

async function round(page, build, setting, seconds, nonce) {
  const salt = `${KAT_SEED}|measure|127.0.0.1`;
  const ms = seconds * 1000;
  const timeoutMs = Math.max(120_000, ms * 20);
  if (build.page) {
    const start = { seed: KAT_SEED, visitorId: 'measure', ip: '127.0.0.1', difficulty: 256, timeCost: setting.t, memoryCost: setting.m, parallelism: setting.p, start: nonce, stride: 1 };
    return askPage(page, pageUrl(build), { start, ms, min: setting.min }, 'measure', timeoutMs);
  }
  return ask(page, build.id, { type: 'round', m: setting.m, t: setting.t, p: setting.p, salt, ms, min: setting.min, nonce }, timeoutMs);
}

function fmtRate(rate) {
  if (rate == null) return '–';
  return rate >= 100 ? rate.toFixed(0) : rate.toFixed(2);
}

run(async () => {
  const opts = readArgs();
  const rounds = Number(opts.rounds || 5);
  const only = opts.only ? opts.only.split(',') : null;
  const builds = BUILDS.filter((b) => !only || only.includes(b.id));
  for (const build of builds) {
    if (build.pkg) {
      try {
        statSync(path.join(BUILDS_DIR, build.pkg, 'package.json'));
      } catch {
        throw new Error(`${build.pkg} is not installed: run npm ci --prefix tests/browser/argon2-builds`);
      }
    }
  }
  const server = await serveFiles();
  const base = `http://127.0.0.1:${server.address().port}`;
  const browser = await launch(opts);
  try {
    const { context, problems } = await watchedContext(browser, base);
    const page = await context.newPage();
    page.on('crash', () => console.error('the page crashed'));
    if (opts.verbose) page.on('console', (msg) => console.error(`console ${msg.type()}: ${msg.text()}`));
    await page.goto(`${base}/`);
    const simd = await page.evaluate(() => WebAssembly.validate(new Uint8Array([
      0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12,
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
    ])));
    console.error(`Chromium ${browser.version()}, WASM SIMD ${simd ? 'supported' : 'missing'}; ${rounds} rounds`);

    const rows = [];
    for (const build of builds) {
      const row = { id: build.id, label: build.label, version: version(build.pkg), note: build.note, kat: null, rates: {}, memory: {}, errors: [] };
      rows.push(row);
      if (!build.page) await startWorker(page, build);
      const started = performance.now();
      row.kat = await knownAnswers(page, build);
      const katErrors = row.kat.filter((k) => k.error).map((k) => `m=${k.m} t=${k.t} p=${k.p}: ${k.error}`);
      row.errors.push(...katErrors);
      console.error(`${build.id}: known answers ${row.kat.filter((k) => k.ok).length}/${row.kat.length} (${((performance.now() - started) / 1000).toFixed(1)} s)${katErrors.length ? ` — ${katErrors.join('; ')}` : ''}`);
      for (const s of SETTINGS) row.rates[s.name] = [];
    }
    let nonce = 1_000_000;
    for (let r = 1; r <= rounds; r += 1) {
      for (const s of SETTINGS) {
        const seconds = Number(opts[s.secondsOpt] || s.seconds);
        for (const row of rows) {
          const build = builds.find((b) => b.id === row.id);
          if (row.rates[s.name] === null) continue;
          const answer = await round(page, build, s, seconds, nonce);
          nonce += 100_000;
          if (answer.type !== 'round') {
            row.errors.push(`${s.name}: ${answer.message}`);
            row.rates[s.name] = null;
            console.error(`${row.id} ${s.name}: ${answer.message}`);
            continue;
          }
          const rate = (answer.hashes * 1000) / answer.ms;
          row.rates[s.name].push(rate);
          if (answer.memory) (row.memory[s.name] ??= []).push(answer.memory);
          console.error(`round ${r} ${s.name} ${row.id}: ${fmtRate(rate)} H/s (${answer.hashes} in ${(answer.ms / 1000).toFixed(2)} s)`);
        }
      }
    }
    await page.evaluate(() => Object.values(window.builds ?? {}).forEach((entry) => entry.worker.terminate()));
    if (problems.length) console.error(`page problems:\n  ${problems.join('\n  ')}`);

    const baseline = rows.find((r) => r.id === 'hash-wasm');
    const lines = [];
    lines.push(`Argon2 builds in headless Chromium ${browser.version()} (WASM SIMD ${simd ? 'on' : 'off'}), one worker at a time, median of ${rounds} rounds (min–max); known answers: Argon2d v0x13, 32-byte hash, password "${KAT_NONCE}", salt "seed|visitorId|ip" at ${KAT.map((k) => `m=${k.m} t=${k.t} p=${k.p}`).join(', ')} (the page's worker also at ${KAT_PAGE.slice(KAT.length).map((k) => `m=${k.m} t=${k.t} p=${k.p}`).join(', ')}).`);
    lines.push('');
    lines.push(`| build | version | known answers | H/s ${SETTINGS[0].name} | H/s ${SETTINGS[1].name} | vs hash-wasm | notes |`);
    lines.push('|---|---|---|---|---|---|---|');
    for (const row of rows) {
      const passed = row.kat.filter((k) => k.ok).length;
      const kat = passed === row.kat.length ? `pass ${passed}/${row.kat.length}` : `FAIL ${passed}/${row.kat.length}`;
      const cells = SETTINGS.map((s) => {
        const rates = row.rates[s.name];
        if (!rates || !rates.length) return 'failed';
        return `${fmtRate(median(rates))} (${fmtRate(Math.min(...rates))}–${fmtRate(Math.max(...rates))})`;
      });
      const ratio = SETTINGS.map((s) => {
        const mine = row.rates[s.name];
        const theirs = baseline && baseline.rates[s.name];
        if (!mine || !mine.length || !theirs || !theirs.length) return '–';
        return `${(median(mine) / median(theirs)).toFixed(2)}×`;
      }).join(' / ');
      const grew = Object.entries(row.memory).some(([, list]) => list.some((mem) => mem.after !== mem.before));
      const notes = [row.note];
      if (Object.keys(row.memory).length) notes.push(grew ? 'WASM memory grew during a round' : 'WASM memory constant across hashes');
      const wrong = row.kat.filter((k) => !k.ok && k.got);
      if (wrong.length) notes.push(`wrong hash at ${wrong.map((k) => `m=${k.m} t=${k.t} p=${k.p}`).join(', ')}`);
      if (row.errors.length) notes.push(row.errors.slice(0, 2).join('; '));
      lines.push(`| ${row.label} | ${row.version} | ${kat} | ${cells[0]} | ${cells[1]} | ${ratio} | ${notes.join('; ').replaceAll('|', '/')} |`);
    }
    console.log(lines.join('\n'));
    if (opts.out) {
      mkdirSync(opts.out, { recursive: true });
      writeFileSync(path.join(opts.out, 'results.json'), JSON.stringify({ chromium: browser.version(), simd, rounds, rows }, null, 2));
      writeFileSync(path.join(opts.out, 'table.md'), `${lines.join('\n')}\n`);
    }
  } finally {
    await browser.close();
    server.close();
  }
});
