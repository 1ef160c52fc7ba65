// End-to-end: the miner page keeps the solution it found. Its first verify is refused with a 429
// (faked here, Retry-After: 1) and then twice with a 503 by the server's busy verifier; the page
// resubmits the very same nonce and hash each time and wins the one invite code the audit log
// holds. The verifier then stays busy: a reset heard over the socket makes the page drop its
// pending solution and mine the new puzzle, and after a reset it never hears (the socket frame
// is dropped here), the 409 to its resubmission makes it fetch the current puzzle itself.
//
// node tests/browser/retry.e2e.mjs --base http://127.0.0.1:PORT --out DIR --admin-token TOKEN [--chromium PATH]
import { args, launch, watchedContext, assertNoProblems, run } from './common.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a truthy value; fails with `what` (and `explain()`) after `ms`. */
async function until(what, check, ms, explain = () => '') {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${await explain()}`);
    await sleep(100);
  }
}

run(async () => {
  const opts = args();
  const browser = await launch(opts);
  try {
    const admin = async (path, method = 'GET') => {
      const response = await fetch(`${opts.base}${path}`, {
        method,
        headers: { Authorization: `Bearer ${opts['admin-token']}`, 'Content-Type': 'application/json' },
        body: method === 'POST' ? '{}' : undefined,
      });
      if (!response.ok) throw new Error(`admin ${path}: HTTP ${response.status}`);
      return response.json();
    };
    const currentSeed = async () => (await admin('/api/admin/status')).current_seed;

    // Refusals the page must ride out, and the 409 of the reset it does not hear.
    const { context, problems } = await watchedContext(browser, opts.base, {
      allowStatus: [['/api/verify', 429], ['/api/verify', 503], ['/api/verify', 409]],
    });
    const page = await context.newPage();

    // Every verify and puzzle request of the page, with its answer.
    const verifies = [];
    const puzzles = [];
    const entries = new Map();
    page.on('request', (req) => {
      if (req.method() !== 'POST') return;
      const path = new URL(req.url()).pathname;
      if (path.endsWith('/api/verify')) {
        const entry = { body: req.postDataJSON(), at: Date.now(), status: null, retryAfter: null, json: null };
        verifies.push(entry);
        entries.set(req, entry);
      } else if (path.endsWith('/api/puzzle')) {
        puzzles.push({ at: Date.now() });
      }
    });
    page.on('response', async (res) => {
      const entry = entries.get(res.request());
      if (!entry) return;
      entry.retryAfter = res.headers()['retry-after'] ?? null;
      if (res.status() === 200) entry.json = await res.json().catch(() => null);
      entry.status = res.status();
    });

    // The first verify never reaches the server: a rate limit with a Retry-After of one second.
    let fake429 = true;
    await page.route('**/api/verify', async (route) => {
      if (!fake429) return route.continue();
      fake429 = false;
      return route.fulfill({
        status: 429,
        headers: { 'Retry-After': '1', 'Content-Type': 'application/json' },
        body: JSON.stringify({ detail: 'Too many submissions, slow down' }),
      });
    });

    // The socket passes through, except PUZZLE_RESET frames while `dropResets` is set.
    let dropResets = false;
    const droppedResets = [];
    await page.routeWebSocket(/\/api\/ws(\?|$)/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => server.send(message));
      server.onMessage((message) => {
        if (dropResets && typeof message === 'string' && message.includes('"PUZZLE_RESET"')) {
          droppedResets.push(message);
          return;
        }
        ws.send(message);
      });
    });

    // Every text the status line shows.
    await page.addInitScript(() => {
      window.statusTexts = [];
      document.addEventListener('DOMContentLoaded', () => {
        const el = document.getElementById('status');
        if (!el) return; // another document
        new MutationObserver(() => window.statusTexts.push(el.textContent)).observe(el, {
          childList: true,
          characterData: true,
          subtree: true,
        });
      });
    });

    const logLines = () => page.$$eval('#log li', (items) => items.map((li) => li.textContent));
    const explain = async () =>
      `verifies: ${JSON.stringify(verifies.map((v) => ({ seed: v.body.submittedSeed.slice(0, 8), nonce: v.body.nonce, status: v.status, retryAfter: v.retryAfter })))}\nlog: ${(await logLines()).join(' | ')}`;

    // ---- 1. 429, 503, 503, then the same solution wins ----
    await page.goto(`${opts.base}/`);
    // Mining starts on the visitor's consent: the Start button.
    await page.click('#toggle');
    await page.waitForSelector('#result:not(.hidden) #invite-code', { timeout: 40000 }).catch(async (err) => {
      throw new Error(`${err.message}\n${await explain()}`);
    });
    const code = (await page.textContent('#invite-code')).trim();
    if (!/^HASHPASS-[0-9A-Z-]+$/.test(code)) throw new Error(`not an invite code: ${code}`);
    await until('the winning answer', () => verifies.some((v) => v.status === 200), 5000, explain);

    const first = verifies[0].body;
    const round = verifies.filter((v) => v.body.submittedSeed === first.submittedSeed);
    const statuses = round.map((v) => v.status);
    if (JSON.stringify(statuses) !== JSON.stringify([429, 503, 503, 200])) {
      throw new Error(`the first puzzle's verifies answered ${JSON.stringify(statuses)}, not [429, 503, 503, 200]\n${await explain()}`);
    }
    for (const [i, v] of round.entries()) {
      for (const field of ['nonce', 'hash', 'submittedSeed', 'visitorId', 'traceData']) {
        if (v.body[field] !== first[field]) {
          throw new Error(`verify ${i} changed ${field}: ${JSON.stringify(v.body[field])} vs ${JSON.stringify(first[field])}`);
        }
      }
    }
    if (round[3].json?.invite_code !== code) throw new Error(`the page shows ${code}, the server answered ${JSON.stringify(round[3].json)}`);
    // Retry-After: 1 was honoured (not the 2 s default); the 503s were waited for too.
    const gap = round[1].at - round[0].at;
    if (gap < 900 || gap > 1900) throw new Error(`resubmitted ${gap} ms after a Retry-After of 1 s`);
    for (const i of [2, 3]) {
      const wait = round[i].at - round[i - 1].at;
      if (wait < 450 || wait > 31000) throw new Error(`resubmission ${i} came ${wait} ms after the 503`);
    }
    const shown = await page.evaluate(() => window.statusTexts);
    for (const pattern of [/^Too many submissions, resubmitting your solution in \d+ s/, /^Server busy, resubmitting your solution in \d+ s/]) {
      if (!shown.some((text) => pattern.test(text))) throw new Error(`the status never showed ${pattern}: ${JSON.stringify(shown)}`);
    }
    console.log(`won ${code} with nonce ${first.nonce} after ${statuses.join(', ')} (Retry-After: ${round.map((v) => v.retryAfter ?? '–').join(', ')})`);

    // The audit log holds exactly this win, of exactly this solution.
    const logs = await admin('/api/admin/logs');
    if (logs.total !== 1 || logs.records[0].invite_code !== code || logs.records[0].nonce !== first.nonce || logs.records[0].hash !== first.hash) {
      throw new Error(`the audit log does not hold exactly the one win: ${JSON.stringify(logs)}`);
    }

    // ---- 2. a reset drops the pending solution ----
    // The page mines the next puzzle; the verifier now stays busy, so it keeps resubmitting.
    const seedB = await until(
      'a busy answer on the second puzzle',
      () => verifies.find((v) => v.body.submittedSeed !== first.submittedSeed && v.status === 503)?.body.submittedSeed,
      20000,
      explain,
    );
    await admin('/api/admin/reset-puzzle', 'POST');
    const seedC = await currentSeed();
    const firstC = await until('a solution of the reset puzzle', () => verifies.find((v) => v.body.submittedSeed === seedC), 20000, explain);
    await until('its busy answer', () => firstC.status === 503, 5000, explain);
    if (verifies.some((v) => v.body.submittedSeed === seedB && v.at > firstC.at)) {
      throw new Error(`the page went on resubmitting the dropped solution\n${await explain()}`);
    }
    if (!(await logLines()).some((line) => line.includes('The puzzle changed; the pending solution is dropped.'))) {
      throw new Error(`no log line for the dropped solution\n${await explain()}`);
    }
    console.log(`reset ${seedB.slice(0, 8)} → ${seedC.slice(0, 8)}: the pending solution was dropped`);

    // ---- 3. a 409 without a reset: the page fetches the puzzle itself ----
    dropResets = true;
    await admin('/api/admin/reset-puzzle', 'POST');
    const seedD = await currentSeed();
    const lost = await until('the 409 to the stale resubmission', () => verifies.find((v) => v.body.submittedSeed === seedC && v.status === 409), 35000, explain);
    const firstD = await until('a solution of the unheard puzzle', () => verifies.find((v) => v.body.submittedSeed === seedD), 20000, explain);
    if (!droppedResets.length) throw new Error('no PUZZLE_RESET frame was held back');
    const fetched = puzzles.find((p) => p.at > lost.at);
    if (!fetched || fetched.at - lost.at < 2500 || fetched.at > firstD.at) {
      throw new Error(`the puzzle was not fetched a few seconds after the 409 (${fetched ? fetched.at - lost.at : 'never'} ms)\n${await explain()}`);
    }
    if (!(await logLines()).some((line) => line.includes('No reset heard; fetching the current puzzle.'))) {
      throw new Error(`no log line for the fetched puzzle\n${await explain()}`);
    }
    console.log(`409 on ${seedC.slice(0, 8)}; fetched ${seedD.slice(0, 8)} ${fetched.at - lost.at} ms later and mined it`);

    // Still the one win; nothing went wrong on the page.
    await page.click('#toggle');
    const after = await admin('/api/admin/logs');
    if (after.total !== 1) throw new Error(`the audit log holds ${after.total} wins`);
    assertNoProblems(problems, 'miner page');
    await context.close();
  } finally {
    await browser.close();
  }
});
