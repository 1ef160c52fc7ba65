// End-to-end: HashPass mounted by a host app under a prefix (`--base`, the mount URL ending in
// `/`, e.g. http://127.0.0.1:PORT/invite/). The miner page there mines and wins a code, and it
// works at the mount without its slash too; the admin console at `<mount>admin` logs in and shows that
// code in its invite log; every request either page makes stays under the mount (the offline
// captcha never sends anyone to Cloudflare's root /cdn-cgi/trace); the host's own page still
// answers.
//
// node tests/browser/embedded.e2e.mjs --base http://127.0.0.1:PORT/invite/ --token TOKEN --out DIR
//   [--home http://127.0.0.1:PORT/ --home-text TEXT] [--chromium PATH]
// (`--admin-token` is accepted for `--token`, as the other scripts take it.)
import path from 'node:path';
import { args, launch, watchedContext, assertNoProblems, run } from './common.mjs';

const CODE = /^HASHPASS-[0-9A-Z-]+$/;

/** The options, checked: a mount URL ending in `/`, a token, and `--home` only with its text. */
function options() {
  const opts = args();
  opts.token = opts.token || opts['admin-token'];
  if (!opts.token) throw new Error('missing --token');
  if (!opts.base.endsWith('/')) throw new Error(`--base must be the mount URL ending in "/": ${opts.base}`);
  if (opts.home && !opts['home-text']) throw new Error('--home needs --home-text');
  return opts;
}

/**
 * Records the URL of every request and socket of the context's pages (the requests of their
 * workers included), so the test can check they all stay under the mount. Sockets are not
 * requests to Playwright, hence the second listener.
 */
function recordUrls(context) {
  const urls = [];
  context.on('request', (req) => urls.push(req.url()));
  context.on('page', (page) => page.on('websocket', (ws) => urls.push(ws.url())));
  return urls;
}

/** The URLs among `urls` that leave the mount `base`: another origin, or a path outside it. */
function outsideMount(urls, base) {
  const mount = new URL(base);
  const httpScheme = { 'ws:': 'http:', 'wss:': 'https:', 'http:': 'http:', 'https:': 'https:' };
  const outside = [];
  for (const raw of urls) {
    const url = new URL(raw);
    // data: (the page icon) and blob: URLs never reach a server.
    if (!httpScheme[url.protocol]) continue;
    // The bare mount is opened by the test itself.
    if (url.href === base.slice(0, -1)) continue;
    if (url.pathname === '/cdn-cgi/trace') {
      outside.push(`${raw} (Cloudflare's root trace, asked although the captcha is offline)`);
    } else if (httpScheme[url.protocol] !== mount.protocol || url.host !== mount.host) {
      outside.push(`${raw} (another origin than ${mount.origin})`);
    } else if (!url.pathname.startsWith(mount.pathname)) {
      outside.push(`${raw} (outside ${mount.pathname})`);
    }
  }
  return outside;
}

/** Fails unless each of `wanted` (paths under the mount) was requested: the recording works. */
function assertRequested(urls, base, wanted, where) {
  const seen = new Set(urls.map((u) => new URL(u).pathname));
  const missing = wanted.filter((p) => !seen.has(new URL(p, base).pathname));
  if (missing.length) throw new Error(`${where}: never requested ${missing.join(', ')}; saw:\n  ${urls.join('\n  ')}`);
}

/**
 * Opens the mount without its trailing slash, as a person typing the address would: the miner
 * page must answer there (axum routes a nested `/` to the bare mount, and the server rewrites the
 * page's `<base>` so its relative URLs still resolve under the mount) or redirect to the mount.
 * A mount at the site root has no such form: it is opened directly.
 */
async function openBareMount(page, base) {
  if (new URL(base).pathname === '/') {
    await page.goto(base);
    return;
  }
  const bare = base.slice(0, -1);
  const response = await page.goto(bare);
  if (!response || response.status() !== 200) {
    throw new Error(`${bare} answered ${response?.status()}, not the miner page`);
  }
  if (page.url() !== base && page.url() !== bare) {
    throw new Error(`${bare} ended at ${page.url()}, neither the mount nor its bare form`);
  }
  const baseHref = await page.evaluate(() => document.baseURI);
  if (baseHref !== base) throw new Error(`the page at ${page.url()} resolves its URLs against ${baseHref}, not ${base}`);
  console.log(`${bare} -> ${page.url()} (base ${baseHref})`);
}

/** Waits for the miner page to win, and returns the code it shows. */
async function winCode(page) {
  try {
    await page.waitForSelector('#result:not(.hidden) #invite-code', { timeout: 60000 });
  } catch {
    const log = await page.$$eval('#log li', (items) => items.map((li) => li.textContent));
    throw new Error(`the miner page won no code in 60 s: ${log.join(' | ')}`);
  }
  const code = (await page.textContent('#invite-code')).trim();
  if (!CODE.test(code)) throw new Error(`not an invite code: ${code}`);
  return code;
}

/** Logs in to the console as admin.e2e.mjs does: the form, then the live socket and cards. */
async function logIn(page, base, token) {
  await page.goto(`${base}admin`);
  if (page.url() !== `${base}admin`) throw new Error(`${base}admin landed on ${page.url()}`);
  await page.fill('#token', token);
  await page.click('#login-form button[type="submit"]');
  // Either the live socket opens or the form shows the server's refusal, which is the message.
  await page.waitForFunction(
    () => document.querySelector('#ws-state')?.dataset.state === 'open' || document.querySelector('#login-error')?.textContent,
    null,
    { timeout: 15000 },
  );
  const refused = await page.textContent('#login-error');
  if (refused) throw new Error(`the console refused the admin token: ${refused}`);
  await page.waitForFunction(() => document.querySelector('#card-connections')?.textContent !== '–', null, { timeout: 15000 });
}

/** Searches the console's invite log for `code` and waits for its row. */
async function findInLog(page, code) {
  await page.fill('#logs-form [name="search"]', code);
  await page.click('#logs-form button[type="submit"]');
  try {
    await page.waitForFunction(
      (wanted) => [...document.querySelectorAll('#logs td.code')].some((td) => td.textContent.trim() === wanted),
      code,
      { timeout: 15000 },
    );
  } catch {
    const rows = await page.$$eval('#logs tr', (trs) => trs.map((tr) => tr.textContent));
    throw new Error(`the invite log does not show ${code}: ${rows.join(' | ') || 'no rows'}`);
  }
}

/** Checks the host's own page still answers with its text. */
async function checkHome(url, text) {
  const response = await fetch(url);
  const body = await response.text();
  if (!response.ok || !body.includes(text)) {
    throw new Error(`the host's page ${url} answered ${response.status} without ${JSON.stringify(text)}: ${body.slice(0, 200)}`);
  }
}

run(async () => {
  const opts = options();
  const browser = await launch(opts);
  try {
    const watched = await watchedContext(browser, opts.base);
    const urls = recordUrls(watched.context);

    // The miner page, opened at the mount, wins a code.
    const miner = await watched.context.newPage();
    await miner.goto(opts.base);
    // Mining starts on the visitor's consent: the Start button.
    await miner.click('#toggle');
    const code = await winCode(miner);
    console.log(`won ${code}`);
    // Paused, then closed: at difficulty 1 it would go on winning a code per puzzle while the
    // screenshot is taken and the console is looked at.
    await miner.click('#toggle');
    await miner.screenshot({ path: path.join(opts.out, 'embedded-miner.png'), fullPage: true });
    await miner.close();
    assertNoProblems(watched.problems, 'miner page under the mount');

    // The console, logged in, shows that code in its invite log.
    const admin = await watched.context.newPage();
    await logIn(admin, opts.base, opts.token);
    await findInLog(admin, code);
    await admin.screenshot({ path: path.join(opts.out, 'embedded-admin.png'), fullPage: true });
    await admin.close();
    assertNoProblems(watched.problems, 'admin console under the mount');

    // The mount without its trailing slash serves a working miner page too (its socket
    // connects); opened last, when no other miner page holds this address's connection.
    const bare = await watched.context.newPage();
    await openBareMount(bare, opts.base);
    await bare.waitForSelector('#conn-state[data-state="connected"]', { timeout: 20000 });
    await bare.close();
    assertNoProblems(watched.problems, 'miner page at the bare mount');

    // Everything the pages asked for stayed under the mount, and the key requests were seen.
    const outside = outsideMount(urls, opts.base);
    if (outside.length) throw new Error(`${outside.length} request(s) left the mount ${opts.base}:\n  ${outside.join('\n  ')}`);
    assertRequested(urls, opts.base, [
      '', 'static/js/miner.js', 'static/vendor/thumbmark.esm.js', 'static/js/miner-worker.js',
      'static/vendor/hash-wasm.esm.min.js', 'api/turnstile/config', 'api/dev/trace', 'api/ws', 'api/puzzle',
      'api/verify', 'admin', 'static/vendor/chart.umd.min.js', 'api/admin/status', 'api/admin/ws',
    ], 'the pages');
    console.log(`${urls.length} requests, all under ${opts.base}`);
    await watched.context.close();

    if (opts.home) await checkHome(opts.home, opts['home-text']);
  } finally {
    await browser.close();
  }
});
