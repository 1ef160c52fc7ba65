// The miner page (docs/protocol.md#client-workflow): fingerprint → captcha → socket with a session token →
// puzzle → trace → (the visitor presses Start) → Argon2d workers → verify → invite code; restarts
// on every PUZZLE_RESET. No worker runs before the visitor consents, by pressing Start or by the
// "start automatically" choice remembered on this device; until then the page says what mining
// will use. Every won code is kept in localStorage until the visitor dismisses it.
// A found solution is kept until the server answers it for good: a busy server (503) or a rate
// limit (429) gets the same solution again after its Retry-After, until the puzzle changes.
// Every URL is relative (imports to this script, API paths to the mount), so the page works
// wherever a host mounts HashPass.
import { getFingerprint, setOption } from '../vendor/thumbmark.esm.js';
import { bindLanguage, t } from './i18n.js';
import { apiUrl, initTheme, wsUrl } from './page.js';

const $ = (id) => document.getElementById(id);

// What this page remembers on the device (localStorage): the consent to start mining on load,
// the opt-in to a notification on a win, and the won codes, [{ code, kind: 'win' | 'timeout', at }]
// with `at` in ms since the epoch.
const AUTO_START_KEY = 'hashpass.autostart';
const NOTIFY_KEY = 'hashpass.notify';
const CODES_KEY = 'hashpass.codes';

/** The stored value of `key`, or null (also when storage is unavailable). */
function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Stores `value` under `key`, or removes the key when `value` is null; quiet without storage. */
function store(key, value) {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // storage is off (a private window, say): the choice lasts as long as this page
  }
}

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
  // Mining runs only with the visitor's consent: the Start button, or the remembered choice.
  consented: stored(AUTO_START_KEY) === '1',
  paused: false,
  notify: false,
  mining: false,
  hashes: 0,
  windowHashes: 0,
  windowStart: performance.now(),
  localRate: 0,
  // The network's hashrate from the last NETWORK_HASHRATE, or null before the first.
  networkRate: null,
  // Server clock minus this device's, in seconds, when they differ noticeably (else 0).
  clockSkew: 0,
  best: null,
  // The codes kept on this device (see CODES_KEY); the page's copy when storage is off.
  codes: [],
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
  setKey(el, `state.${name}`);
}

/** Sets `el`'s text, touching the page only when it changes. */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Gives `el` the text of `key`, kept through language switches; '' empties it. */
function setKey(el, key, vars) {
  if (key) {
    el.dataset.i18n = key;
    el.textContent = t(key, vars);
  } else {
    delete el.dataset.i18n;
    el.textContent = '';
  }
}

/** The page's language as a BCP 47 tag, for number and date formats. */
function locale() {
  return document.documentElement.lang || 'en';
}

function number(value, options = {}) {
  return new Intl.NumberFormat(locale(), options).format(value);
}

function formatRate(rate) {
  if (!Number.isFinite(rate)) return '–';
  return rate >= 100 ? `${Math.round(rate)} H/s` : `${rate.toFixed(2)} H/s`;
}

/** A duration to one decimal in the largest fitting unit. */
function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const one = (value) => number(value, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  if (seconds < 60) return t('unit.s', { n: one(seconds) });
  if (seconds < 3600) return t('unit.min', { n: one(seconds / 60) });
  if (seconds < 48 * 3600) return t('unit.h', { n: one(seconds / 3600) });
  return t('unit.d', { n: one(seconds / 86400) });
}

/** Elapsed time in whole units: "42 s", "12 min 5 s", "3 h 12 min", "2 d 3 h". */
function formatElapsed(seconds) {
  if (!Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return t('unit.s', { n: s });
  if (s < 3600) return t('elapsed.ms', { m: Math.floor(s / 60), s: s % 60 });
  if (s < 86400) return t('elapsed.hm', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  return t('elapsed.dh', { d: number(Math.floor(s / 86400)), h: Math.floor((s % 86400) / 3600) });
}

/** A probability as a percentage with fixed decimals, never rounded to a flat 0 % or 100 %. */
function formatPercent(fraction) {
  const percent = (value, digits) => number(value, { style: 'percent', minimumFractionDigits: digits, maximumFractionDigits: digits });
  if (!(fraction > 0)) return percent(0, 0);
  if (fraction < 0.0001) return `< ${percent(0.0001, 2)}`;
  if (fraction > 0.9999) return `> ${percent(0.9999, 2)}`;
  return percent(fraction, fraction < 0.01 ? 2 : 1);
}

/** Memory in MiB from KiB, with as many decimals as small amounts need. */
function formatMiB(kib) {
  const mib = kib / 1024;
  return number(mib, { maximumFractionDigits: mib < 1 ? 3 : mib < 10 ? 1 : 0 });
}

/**
 * The chance that `hashes` tries at `difficulty` bits would have found a solution:
 * 1 − (1 − 2^−d)^hashes, computed without the cancellation of the naive form.
 */
function chanceOf(hashes, difficulty) {
  if (!(hashes > 0)) return 0;
  return -Math.expm1(hashes * Math.log1p(-(2 ** -difficulty)));
}

function renderToggle() {
  setKey($('toggle'), !state.consented ? 'startMining' : state.paused ? 'start' : 'stop');
}

/** What mining uses (workers, memory, the CPU), and before consent that nothing runs yet. */
function renderUsage() {
  const p = state.puzzle;
  const el = $('usage');
  if (!p) return;
  delete el.dataset.i18n;
  const n = state.workerCount || p.worker_count || 1;
  const vars = { n, total: formatMiB(n * p.memory_cost), each: formatMiB(p.memory_cost) };
  let text = t(n === 1 ? 'usage.one' : 'usage', vars);
  if (!state.consented) text += ` ${t('usage.consent')}`;
  setText(el, text);
}

/** The time since the puzzle started, on the server's clock. */
function renderClock() {
  const p = state.puzzle;
  const start = p ? Number(p.puzzle_start_time) : NaN;
  setText($('elapsed'), Number.isFinite(start) ? formatElapsed(Date.now() / 1000 + state.clockSkew - start) : '–');
}

function render() {
  const p = state.puzzle;
  if (p) {
    const expected = 2 ** p.difficulty;
    setText($('difficulty'), String(p.difficulty));
    setText($('expected'), number(expected));
    setText($('eta-local'), state.mining && state.localRate > 0 ? formatDuration(expected / state.localRate) : '–');
    setText($('eta-network'), state.networkRate > 0 ? formatDuration(expected / state.networkRate) : '–');
    setText($('last-solve'), p.last_solve_time == null ? '–' : formatDuration(p.last_solve_time));
    setText($('avg-solve'), p.average_solve_time == null ? '–' : formatDuration(p.average_solve_time));
    // A memoryless race: no count of hashes brings a solution closer, so what is shown is
    // the chance that the hashes tried so far would have found one.
    const chance = chanceOf(state.hashes, p.difficulty);
    const shown = formatPercent(chance);
    const bar = $('chance');
    setText(bar, shown);
    bar.setAttribute('aria-valuenow', String(Math.round(chance * 10000) / 100));
    bar.setAttribute('aria-valuetext', shown);
  }
  renderUsage();
  renderClock();
  setText($('hashes'), number(state.hashes));
  setText($('local-rate'), state.mining ? formatRate(state.localRate) : '–');
  setText($('network-rate'), state.networkRate == null ? '–' : formatRate(state.networkRate));
  setText($('workers'), state.workerCount ? String(state.workerCount) : '–');
  setText($('best'), state.best ? `${state.best.hash.slice(0, 16)}… (${state.best.zeros})` : '–');
}

// ---------- won codes ----------

/** The codes stored on this device (the page's own list when storage cannot be read). */
function readCodes() {
  try {
    const list = JSON.parse(localStorage.getItem(CODES_KEY) || '[]');
    if (!Array.isArray(list)) return [];
    return list.filter((e) => e && typeof e.code === 'string' && Number.isFinite(e.at));
  } catch {
    return state.codes;
  }
}

function writeCodes(list) {
  state.codes = list;
  store(CODES_KEY, list.length ? JSON.stringify(list) : null);
  renderCodes();
}

/** A won code: kept until dismissed, the tab title changed, and a notification if wanted. */
function onWin(code, kind) {
  const list = readCodes();
  if (!list.some((e) => e.code === code)) list.push({ code, kind, at: Date.now() });
  writeCodes(list);
  if (state.notify && 'Notification' in window && Notification.permission === 'granted') {
    try {
      new Notification(t('notify.title'), { body: t('notify.body', { code }), tag: `hashpass-${code}` });
    } catch {
      // some browsers (Chrome on Android) show notifications only from a service worker
    }
  }
}

function dismissCode(code) {
  if (!window.confirm(t('result.confirmDismiss', { code }))) return;
  writeCodes(readCodes().filter((e) => e.code !== code));
}

/** Copies a kept code; without a usable clipboard (plain HTTP), selects it and says how. */
async function copyCode(item) {
  const codeEl = item.querySelector('code');
  const button = item.querySelector('.copy');
  const hint = item.querySelector('.hint');
  try {
    if (!navigator.clipboard || typeof navigator.clipboard.writeText !== 'function') throw new Error('no clipboard');
    await navigator.clipboard.writeText(codeEl.textContent);
    setKey(hint, '');
    setKey(button, 'result.copied');
    clearTimeout(item.copiedTimer);
    item.copiedTimer = setTimeout(() => setKey(button, 'result.copy'), 2000);
  } catch {
    const range = document.createRange();
    range.selectNodeContents(codeEl);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    setKey(hint, 'result.copyHint');
    log('log.copyFallback');
  }
}

function codeItem(entry) {
  const item = document.createElement('li');
  item.className = 'kept';
  item.dataset.code = entry.code;
  const title = document.createElement('p');
  title.className = 'kept-title';
  setKey(title, entry.kind === 'timeout' ? 'result.timeoutTitle' : 'result.title');
  const row = document.createElement('div');
  row.className = 'invite';
  const code = document.createElement('code');
  code.textContent = entry.code;
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.className = 'copy';
  setKey(copy, 'result.copy');
  copy.addEventListener('click', () => copyCode(item));
  const dismiss = document.createElement('button');
  dismiss.type = 'button';
  dismiss.className = 'secondary dismiss';
  setKey(dismiss, 'result.dismiss');
  dismiss.addEventListener('click', () => dismissCode(entry.code));
  row.append(code, copy, dismiss);
  const when = document.createElement('p');
  when.className = 'note when';
  const label = document.createElement('span');
  setKey(label, 'result.wonAt');
  const time = document.createElement('time');
  time.dateTime = new Date(entry.at).toISOString();
  when.append(label, ' ', time);
  const hint = document.createElement('p');
  hint.className = 'hint';
  hint.setAttribute('role', 'status');
  item.append(title, row, when, hint);
  return item;
}

/** Shows the kept codes, newest first; the newest one's code element is #invite-code. */
function renderCodes() {
  const list = $('codes');
  const items = new Map([...list.children].map((li) => [li.dataset.code, li]));
  const entries = [...state.codes].sort((a, b) => b.at - a.at);
  const keep = new Set(entries.map((e) => e.code));
  for (const [code, li] of items) if (!keep.has(code)) li.remove();
  entries.forEach((entry, i) => {
    const item = items.get(entry.code) || codeItem(entry);
    const code = item.querySelector('code');
    code.id = i === 0 ? 'invite-code' : `invite-code-${i + 1}`;
    for (const button of item.querySelectorAll('button')) button.setAttribute('aria-describedby', code.id);
    setText(item.querySelector('time'), new Date(entry.at).toLocaleString(locale()));
    if (list.children[i] !== item) list.insertBefore(item, list.children[i] || null);
  });
  $('result').classList.toggle('hidden', entries.length === 0);
  document.title = entries.length ? t('title.won') : t('title');
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
  return { status: response.status, data, retryAfter: response.headers.get('Retry-After'), date: response.headers.get('Date') };
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
  if (!p || !state.ip) return;
  if (!state.consented) {
    // No worker before the visitor presses Start: the page has said what mining will use.
    status('status.ready');
    return;
  }
  if (state.paused) {
    status('status.paused');
    return;
  }
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
    onWin(data.invite_code, 'win');
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

async function loadPuzzle() {
  const { status: code, data, date } = await api('api/puzzle', { visitorId: state.visitorId });
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
  // The hashes counted belong to one puzzle: a new one starts from none.
  if (state.puzzle?.seed !== data.seed) {
    state.hashes = 0;
    state.best = null;
  }
  state.puzzle = data;
  // The puzzle's start is on the server's clock: follow it when this device's is off by more
  // than the Date header's one-second resolution can explain.
  const serverNow = Date.parse(date ?? '');
  if (Number.isFinite(serverNow)) {
    const skew = (serverNow + 500 - Date.now()) / 1000;
    state.clockSkew = Math.abs(skew) > 2 ? skew : 0;
  }
  render();
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
        state.networkRate = Number(message.total_hashrate) || 0;
        render();
        break;
      case 'TIMEOUT_INVITE_CODE':
        onWin(message.invite_code, 'timeout');
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
  bindLanguage($('lang'), () => {
    render();
    renderCodes();
  });
  initTheme($('theme'));
  renderToggle();
  $('toggle').addEventListener('click', () => {
    if (!state.consented) {
      state.consented = true;
      state.paused = false;
    } else {
      state.paused = !state.paused;
    }
    renderToggle();
    if (state.paused) {
      stopMining();
      status('status.paused');
    } else if (!state.submission) {
      startMining(state.workerCount || state.puzzle?.worker_count || 1);
    }
  });

  // Remembered consent: mining starts when the page opens, until the box is unticked.
  const auto = $('auto-start');
  auto.checked = state.consented;
  auto.addEventListener('change', () => store(AUTO_START_KEY, auto.checked ? '1' : null));

  initNotify();

  state.codes = readCodes();
  renderCodes();
  // Another tab of this site won or dismissed a code, or changed the remembered consent.
  window.addEventListener('storage', (event) => {
    if (event.key === CODES_KEY || event.key === null) {
      state.codes = readCodes();
      renderCodes();
    }
    if (event.key === AUTO_START_KEY || event.key === null) auto.checked = stored(AUTO_START_KEY) === '1';
  });
  setInterval(renderClock, 1000);
}

/** The opt-in to a notification on a win: asks the browser's permission when ticked. */
function initNotify() {
  const box = $('notify');
  const note = $('notify-note');
  if (!('Notification' in window)) {
    box.checked = false;
    box.disabled = true;
    setKey(note, 'notify.unavailable');
    return;
  }
  state.notify = stored(NOTIFY_KEY) === '1' && Notification.permission === 'granted';
  box.checked = state.notify;
  box.addEventListener('change', async () => {
    if (!box.checked) {
      state.notify = false;
      store(NOTIFY_KEY, null);
      setKey(note, '');
      return;
    }
    let permission = Notification.permission;
    if (permission === 'default') {
      try {
        permission = await Notification.requestPermission();
      } catch {
        permission = 'denied';
      }
    }
    state.notify = permission === 'granted';
    box.checked = state.notify;
    store(NOTIFY_KEY, state.notify ? '1' : null);
    setKey(note, state.notify ? '' : 'notify.blocked');
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
