// The miner page (docs/protocol.md#client-workflow): fingerprint → captcha → socket with a session token →
// puzzle → trace → Argon2d workers → verify → invite code; restarts on every PUZZLE_RESET.
// A found solution is kept until the server answers it for good: a busy server (503) or a rate
// limit (429) gets the same solution again after its Retry-After, until the puzzle changes.
// Every URL is relative (imports to this script, API paths to the mount), so the page works
// wherever a host mounts HashPass.
import { getFingerprint, setOption } from '../vendor/thumbmark.esm.js';
import { bindLanguage, t } from './i18n.js';
import { apiUrl, initTheme, wsUrl } from './page.js';

const $ = (id) => document.getElementById(id);

const state = {
  visitorId: null,
  captchaToken: null,
  sessionToken: sessionStorage.getItem('hashpass.session'),
  ws: null,
  wsOpen: false,
  reconnectDelay: 1000,
  failedReconnects: 0,
  puzzle: null,
  testMode: null,
  ip: null,
  workers: [],
  workerCount: 0,
  paused: false,
  mining: false,
  hashes: 0,
  windowHashes: 0,
  windowStart: performance.now(),
  localRate: 0,
  best: null,
  generation: 0,
  // The found solution awaiting a definitive answer from api/verify (see submit), or null.
  submission: null,
  // PUZZLE_RESETs heard so far, and the timer that fetches the puzzle after a 409 none followed.
  resets: 0,
  lostTimer: null,
};

// Resubmitting a solution the server could not take yet: its Retry-After (seconds, or an HTTP
// date) within these bounds, else the default.
const RETRY_DEFAULT_MS = 2000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30000;
// After a 409 (solved by someone else), how long to wait for the PUZZLE_RESET before fetching
// the current puzzle directly.
const LOST_FETCH_MS = 3000;

// ---------- display ----------

function log(key, vars = {}, cls = '') {
  const item = document.createElement('li');
  item.textContent = `${new Date().toLocaleTimeString()} ${t(key, vars)}`;
  if (cls) item.className = cls;
  const list = $('log');
  list.append(item);
  while (list.children.length > 200) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}

function status(key, vars = {}) {
  $('status').textContent = t(key, vars);
}

function setConnection(name) {
  const el = $('conn-state');
  el.dataset.state = name;
  el.dataset.i18n = `state.${name}`;
  el.textContent = t(`state.${name}`);
}

function formatRate(rate) {
  if (!Number.isFinite(rate)) return '–';
  return rate >= 100 ? `${Math.round(rate)} H/s` : `${rate.toFixed(2)} H/s`;
}

function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function render() {
  const p = state.puzzle;
  if (p) {
    const expected = 2 ** p.difficulty;
    $('difficulty').textContent = String(p.difficulty);
    $('expected').textContent = expected.toLocaleString();
    $('eta').textContent = state.localRate > 0 ? formatDuration(expected / state.localRate) : '–';
    $('last-solve').textContent = p.last_solve_time == null ? '–' : formatDuration(p.last_solve_time);
    $('avg-solve').textContent = p.average_solve_time == null ? '–' : formatDuration(p.average_solve_time);
    const fraction = Math.min(1, state.hashes / expected);
    $('progress').style.width = `${(fraction * 100).toFixed(1)}%`;
  }
  $('hashes').textContent = state.hashes.toLocaleString();
  $('local-rate').textContent = state.mining ? formatRate(state.localRate) : '–';
  $('workers').textContent = state.workerCount ? String(state.workerCount) : '–';
  $('best').textContent = state.best ? `${state.best.hash.slice(0, 16)}… (${state.best.zeros})` : '–';
}

// ---------- HTTP ----------

async function api(path, body) {
  const response = await fetch(apiUrl(path), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${state.sessionToken}` },
    body: JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { status: response.status, data, retryAfter: response.headers.get('Retry-After') };
}

/** Milliseconds to wait for a `Retry-After` header value (null when absent). */
function retryDelay(header) {
  const text = (header ?? '').trim();
  let ms = NaN;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else if (text) ms = Date.parse(text) - Date.now();
  if (!Number.isFinite(ms)) return RETRY_DEFAULT_MS;
  return Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, ms));
}

function detail(data) {
  if (!data) return 'no answer';
  if (typeof data.detail === 'string') return data.detail;
  if (Array.isArray(data.detail)) return data.detail.map((d) => d.msg).join('; ');
  return JSON.stringify(data);
}

// Where to ask for this browser's IP, in order. Cloudflare answers /cdn-cgi/trace at the site root
// whatever the mount; the server's own trace is under the mount. With the offline captcha there is
// no Cloudflare in front, so the server's trace goes first and the root one is only a fallback
// (under a prefix the root one does not exist); otherwise Cloudflare's goes first.
async function traceSources() {
  if (state.testMode == null) {
    try {
      await loadConfig();
    } catch {
      // unknown: assume Cloudflare, the production case
    }
  }
  const own = apiUrl('api/dev/trace');
  const cloudflare = new URL('/cdn-cgi/trace', location.origin).href;
  return state.testMode ? [own, cloudflare] : [cloudflare, own];
}

async function traceIp() {
  for (const url of await traceSources()) {
    try {
      const response = await fetch(url);
      if (!response.ok) continue;
      const text = await response.text();
      const line = text.split('\n').find((l) => l.startsWith('ip='));
      if (line) return { ip: line.slice(3).trim(), trace: text };
    } catch {
      // try the next source
    }
  }
  throw new Error('no trace source answered');
}

// ---------- captcha ----------

// The captcha's configuration; whether it is the offline one is remembered for traceSources.
async function loadConfig() {
  const response = await fetch(apiUrl('api/turnstile/config'));
  if (!response.ok) throw new Error(`the server refused this browser (HTTP ${response.status})`);
  const config = await response.json();
  state.testMode = Boolean(config.testMode);
  return config;
}

async function captchaToken() {
  const config = await loadConfig();
  if (config.testMode) {
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    return `test-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
  }
  status('status.captcha');
  await new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = 'https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit';
    script.onload = resolve;
    script.onerror = () => reject(new Error('the captcha could not load'));
    document.head.append(script);
  });
  const box = $('captcha');
  box.classList.remove('hidden');
  return new Promise((resolve) => {
    window.turnstile.render(box, {
      sitekey: config.siteKey,
      callback: (token) => {
        box.classList.add('hidden');
        resolve(token);
      },
    });
  });
}

// ---------- mining ----------

function stopMining() {
  state.generation += 1;
  for (const worker of state.workers) worker.terminate();
  state.workers = [];
  if (state.mining) send({ type: 'mining_stop' });
  state.mining = false;
  render();
}

function startMining(count) {
  stopMining();
  const p = state.puzzle;
  if (!p || state.paused || !state.ip) return;
  const generation = state.generation;
  state.workerCount = count;
  state.hashes = 0;
  state.best = null;
  state.windowHashes = 0;
  state.windowStart = performance.now();
  for (let i = 0; i < count; i += 1) {
    const worker = new Worker(new URL('./miner-worker.js', import.meta.url), { type: 'module' });
    worker.onmessage = (event) => onWorkerMessage(generation, event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      onWorkerMessage(generation, { type: 'error', message: event.message || 'worker failed', memory: false });
    };
    worker.postMessage({
      type: 'start',
      seed: p.seed,
      visitorId: state.visitorId,
      ip: state.ip,
      difficulty: p.difficulty,
      timeCost: p.time_cost,
      memoryCost: p.memory_cost,
      parallelism: p.parallelism,
      start: i,
      stride: count,
    });
    state.workers.push(worker);
  }
  state.mining = true;
  send({ type: 'mining_start' });
  status('status.mining', { n: count });
  render();
}

function onWorkerMessage(generation, message) {
  if (generation !== state.generation) return;
  if (message.type === 'progress') {
    state.hashes += message.count;
    state.windowHashes += message.count;
    if (message.best && (!state.best || message.best.zeros > state.best.zeros)) state.best = message.best;
    render();
  } else if (message.type === 'found') {
    onFound(message);
  } else if (message.type === 'error') {
    const fewer = Math.floor(state.workerCount / 2);
    if (message.memory && fewer >= 1) {
      log('log.fewerWorkers', { n: state.workerCount, m: fewer }, 'error');
      startMining(fewer);
    } else {
      stopMining();
      status('status.error', { msg: message.message });
      log('status.error', { msg: message.message }, 'error');
    }
  }
}

// A submission lives from the worker's find until a definitive answer (200, 409, any other error)
// or until the puzzle changes under it (a PUZZLE_RESET, or a newer puzzle fetched): then it is
// cancelled, and an answer still in flight only updates the page if it is a win.
function onFound(found) {
  stopMining();
  cancelSubmission();
  cancelLostFetch();
  log('log.found', { nonce: found.nonce, zeros: found.zeros });
  const submission = {
    seed: found.seed,
    body: {
      visitorId: state.visitorId,
      nonce: found.nonce,
      submittedSeed: found.seed,
      traceData: state.trace,
      hash: found.hash,
    },
    attempts: 0,
    cancelled: false,
    waiting: false,
    timer: null,
    tick: null,
  };
  state.submission = submission;
  submit(submission);
}

/** Drops the pending submission, if any; whether one was waiting to be resubmitted. */
function cancelSubmission() {
  const submission = state.submission;
  if (!submission) return false;
  state.submission = null;
  submission.cancelled = true;
  clearTimeout(submission.timer);
  clearInterval(submission.tick);
  return submission.waiting;
}

async function submit(submission) {
  submission.attempts += 1;
  submission.waiting = false;
  if (submission.attempts === 1) {
    status('status.verifying');
  } else {
    status('status.resubmitting');
    log('log.resubmit', { nonce: submission.body.nonce });
  }
  let answer;
  try {
    answer = await api('api/verify', submission.body);
  } catch (err) {
    // No answer at all (the network or the server is down): as good as busy, try again later.
    answer = { status: 0, data: { detail: err.message || String(err) }, retryAfter: null };
  }
  const { status: code, data, retryAfter } = answer;
  // Cancelled while the request was out: the puzzle changed (possibly by this very win).
  const current = !submission.cancelled;
  if (code === 200 && data && data.invite_code) {
    if (current) state.submission = null;
    showInvite(data.invite_code, 'result.title');
    status('status.won');
    log('log.won', {}, 'ok');
  } else if (code === 503 || code === 429 || code === 0) {
    if (current) scheduleResubmit(submission, code, data, retryAfter);
    else log('log.retryDropped');
  } else {
    if (current) state.submission = null;
    if (code === 409) {
      log('log.lost', { msg: detail(data) });
      if (current) {
        status('status.lost');
        expectReset(submission.seed);
      }
    } else {
      status('status.error', { msg: detail(data) });
      log('status.error', { msg: detail(data) }, 'error');
      if (current && state.puzzle?.seed === submission.seed) {
        setTimeout(() => startMining(state.workerCount || 1), 2000);
      }
    }
  }
}

/** Resubmits the same solution after the server's Retry-After, counting down on the page. */
function scheduleResubmit(submission, code, data, retryAfter) {
  const ms = retryDelay(retryAfter);
  const due = performance.now() + ms;
  const key = code === 429 ? 'status.retryLimited' : 'status.retryBusy';
  log('log.retry', { code, msg: detail(data), s: Math.ceil(ms / 1000) });
  const show = () => status(key, { s: Math.max(1, Math.ceil((due - performance.now()) / 1000)) });
  show();
  submission.waiting = true;
  submission.tick = setInterval(show, 250);
  submission.timer = setTimeout(() => {
    clearInterval(submission.tick);
    if (submission.cancelled) return;
    if (state.puzzle?.seed !== submission.seed) {
      cancelSubmission();
      log('log.retryDropped');
      startMining(state.workerCount || state.puzzle?.worker_count || 1);
      return;
    }
    submit(submission);
  }, ms);
}

/** After a 409 on `seed`: fetch the current puzzle unless a reset or a newer puzzle comes first. */
function expectReset(seed) {
  cancelLostFetch();
  const resets = state.resets;
  state.lostTimer = setTimeout(() => {
    state.lostTimer = null;
    if (state.resets !== resets || state.puzzle?.seed !== seed || state.mining || state.submission) return;
    log('log.fetchPuzzle');
    loadPuzzle();
  }, LOST_FETCH_MS);
}

function cancelLostFetch() {
  clearTimeout(state.lostTimer);
  state.lostTimer = null;
}

function showInvite(code, titleKey) {
  $('invite-code').textContent = code;
  $('result-title').dataset.i18n = titleKey;
  $('result-title').textContent = t(titleKey);
  $('result').classList.remove('hidden');
}

async function loadPuzzle() {
  const { status: code, data } = await api('api/puzzle', { visitorId: state.visitorId });
  if (code !== 200) {
    status('status.error', { msg: detail(data) });
    log('status.error', { msg: detail(data) }, 'error');
    if (code === 401) {
      // The session is gone: start a new one.
      state.sessionToken = null;
      sessionStorage.removeItem('hashpass.session');
      state.ws?.close();
    }
    return;
  }
  state.puzzle = data;
  log('log.puzzle', { seed: data.seed.slice(0, 8), d: data.difficulty });
  if (state.submission) {
    // Still the puzzle of the pending solution (a reconnect, say): keep resubmitting that.
    if (state.submission.seed === data.seed) return;
    if (cancelSubmission()) log('log.retryDropped');
  }
  if (!state.ip) {
    const { ip, trace } = await traceIp();
    state.ip = ip;
    state.trace = trace;
  }
  startMining(state.workerCount || data.worker_count);
}

async function submitBest(seed, best) {
  if (!best || best.zeros < 1) return;
  const { status: code, data } = await api('api/submit', {
    visitorId: state.visitorId,
    nonce: best.nonce,
    submittedSeed: seed,
    traceData: state.trace,
    hash: best.hash,
    leadingZeros: best.zeros,
  });
  log('log.submitted', { msg: code === 200 ? data.status : detail(data) });
}

async function onReset(message) {
  // A reset can arrive twice (an instance that missed it announces it again): the puzzle
  // already being mined is kept, with any solution pending for it.
  if (state.puzzle && message.seed && message.seed === state.puzzle.seed) return;
  const previous = state.puzzle;
  const best = state.best;
  stopMining();
  state.resets += 1;
  cancelLostFetch();
  if (cancelSubmission()) log('log.retryDropped');
  if (message.is_timeout && previous) {
    status('status.timeout');
    await submitBest(previous.seed, best);
  } else {
    status('status.reset');
  }
  await loadPuzzle();
}

// ---------- socket ----------

function send(message) {
  if (state.ws && state.wsOpen) state.ws.send(JSON.stringify(message));
}

function connect() {
  const token = state.sessionToken || state.captchaToken;
  const ws = new WebSocket(wsUrl(`api/ws?token=${encodeURIComponent(token)}`));
  state.ws = ws;
  setConnection(state.failedReconnects ? 'reconnecting' : 'connecting');
  let ping = null;
  ws.onopen = () => {
    state.wsOpen = true;
    state.failedReconnects = 0;
    state.reconnectDelay = 1000;
    setConnection('connected');
    log('log.connected', {}, 'ok');
    ws.send('ping');
    ping = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('ping'), 10000);
    if (state.sessionToken && token === state.sessionToken) loadPuzzle();
  };
  ws.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (message.type) {
      case 'SESSION_TOKEN':
        state.sessionToken = message.token;
        sessionStorage.setItem('hashpass.session', message.token);
        log('log.session');
        loadPuzzle();
        break;
      case 'PONG':
        $('online').textContent = String(message.online);
        break;
      case 'PUZZLE_RESET':
        onReset(message);
        break;
      case 'NETWORK_HASHRATE':
        $('network-rate').textContent = formatRate(message.total_hashrate);
        break;
      case 'TIMEOUT_INVITE_CODE':
        showInvite(message.invite_code, 'result.timeoutTitle');
        log('log.timeoutCode', { zeros: message.leading_zeros }, 'ok');
        break;
      default:
        break;
    }
  };
  ws.onclose = (event) => {
    clearInterval(ping);
    const wasOpen = state.wsOpen;
    // 1001: this server is going away; another one behind the balancer takes the session at
    // once (a spread-out delay, so a whole instance's pages do not arrive in one instant).
    if (wasOpen && event.code === 1001) state.reconnectDelay = 200 + Math.random() * 800;
    state.wsOpen = false;
    stopMining();
    if (!wasOpen) {
      state.failedReconnects += 1;
      // A refused reconnect means the session is gone: fall back to a new captcha.
      if (state.failedReconnects >= 2 && state.sessionToken) {
        state.sessionToken = null;
        sessionStorage.removeItem('hashpass.session');
      }
    }
    setConnection('closed');
    const seconds = Math.max(1, Math.round(state.reconnectDelay / 1000));
    log('log.reconnect', { s: seconds });
    setTimeout(async () => {
      if (!state.sessionToken) state.captchaToken = await captchaToken();
      connect();
    }, state.reconnectDelay);
    state.reconnectDelay = Math.min(Math.max(state.reconnectDelay * 2, 1000), 30000);
  };
}

// ---------- start ----------

function hashrateReports() {
  setInterval(() => {
    const now = performance.now();
    const seconds = (now - state.windowStart) / 1000;
    if (seconds > 0) state.localRate = state.windowHashes / seconds;
    state.windowHashes = 0;
    state.windowStart = now;
    if (state.mining) send({ type: 'hashrate', payload: { rate: state.localRate, timestamp: Date.now() / 1000 } });
    render();
  }, 2000);
}

function initControls() {
  bindLanguage($('lang'), render);
  initTheme($('theme'));
  $('toggle').addEventListener('click', () => {
    state.paused = !state.paused;
    $('toggle').dataset.i18n = state.paused ? 'start' : 'stop';
    $('toggle').textContent = t(state.paused ? 'start' : 'stop');
    if (state.paused) {
      stopMining();
      status('status.paused');
    } else if (!state.submission) {
      startMining(state.workerCount || state.puzzle?.worker_count || 1);
    }
  });
  $('copy').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText($('invite-code').textContent);
      $('copy').textContent = t('result.copied');
    } catch {
      log('log.copyFailed', {}, 'error');
    }
  });
}

async function main() {
  initControls();
  hashrateReports();
  try {
    status('status.fingerprint');
    // ThumbmarkJS would now and then report usage to its own server; the CSP blocks that, and
    // the page talks to nobody but us.
    setOption('logging', false);
    const fingerprint = String(await getFingerprint());
    state.visitorId = fingerprint.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 128) || 'anonymous';
    status('status.connecting');
    if (!state.sessionToken) state.captchaToken = await captchaToken();
    connect();
  } catch (err) {
    status('status.error', { msg: err.message || String(err) });
    log('status.error', { msg: err.message || String(err) }, 'error');
  }
}

main();
