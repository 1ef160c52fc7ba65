// Shared set-up of the browser end-to-end tests: launch Debian's Chromium through playwright-core
// (never a downloaded browser), and fail on any console error, failed request or request to a
// non-local origin.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

// playwright-core is this directory's own dependency (package.json here, `npm ci` in
// tests/browser), resolved from tests/browser/node_modules.
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

/** Reads `--name value` pairs from the command line. */
export function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    out[argv[i].replace(/^--/, '')] = argv[i + 1];
  }
  for (const required of ['base', 'out']) {
    if (!out[required]) throw new Error(`missing --${required}`);
  }
  mkdirSync(out.out, { recursive: true });
  return out;
}

/**
 * The User-Agent the tests' pages send: headless Chromium announces "HeadlessChrome", which the
 * server's scripted-client filter (docs/protocol.md#user-agent-filter) rightly refuses; a person's Chrome does not.
 */
export const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';

/** Launches headless Chromium with the flags of this workplace and a fresh profile. */
export async function launch(opts) {
  const executablePath = opts.chromium || process.env.CHROMIUM || '/usr/lib/chromium/chromium';
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic',
    ],
  });
}

/**
 * A browser context whose pages are watched: every console error, page error, failed request,
 * HTTP status >= 400 (except protocol answers listed in `allowStatus` as [urlSubstring, status])
 * and request to a non-local origin is recorded in `problems`.
 */
export async function watchedContext(browser, base, options = {}) {
  const context = await browser.newContext({ userAgent: USER_AGENT, ...(options.context || {}) });
  const problems = [];
  const origin = new URL(base).origin;
  const allow = options.allowStatus || [];
  context.on('page', (page) => watch(page));
  function watch(page) {
    const allowed = (url, status) => allow.some(([part, code]) => url.includes(part) && status === code);
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      // Chromium reports every 4xx answer as a console error too; expected ones are allowed.
      const status = Number((msg.text().match(/status of (\d{3})/) || [])[1]);
      if (status && allowed(msg.location().url || '', status)) return;
      problems.push(`console error: ${msg.text()} (${msg.location().url || 'no url'})`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('requestfailed', (req) => {
      const failure = req.failure()?.errorText || '';
      // Sockets and fetches torn down by navigation or close are not failures of the app.
      if (failure.includes('ERR_ABORTED')) return;
      problems.push(`request failed: ${req.url()} ${failure}`);
    });
    page.on('request', (req) => {
      const url = new URL(req.url());
      if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) return;
      const local = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) || url.hostname.startsWith('127.');
      if (!local) problems.push(`request to a non-local origin: ${req.url()}`);
    });
    page.on('response', (res) => {
      if (res.status() >= 400 && !allowed(res.url(), res.status())) {
        problems.push(`HTTP ${res.status()}: ${res.url()}`);
      }
    });
  }
  return { context, problems, origin };
}

/** Saves desktop (1280 px) and phone (375 px) screenshots, light and dark, of `url`. */
export async function screenshots(browser, url, outDir, name, prepare) {
  for (const [label, width, height] of [['desktop', 1280, 900], ['phone', 375, 812]]) {
    for (const scheme of ['light', 'dark']) {
      const context = await browser.newContext({ viewport: { width, height }, colorScheme: scheme, userAgent: USER_AGENT });
      const page = await context.newPage();
      await page.goto(url);
      if (prepare) await prepare(page);
      await page.screenshot({ path: path.join(outDir, `${name}-${label}-${scheme}.png`), fullPage: true });
      await context.close();
    }
  }
}

/** Fails the test with every recorded problem. */
export function assertNoProblems(problems, where) {
  if (problems.length) {
    throw new Error(`${where}: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  }
}

/** Runs `main`, exits 0 on success and 1 with the error otherwise. */
export function run(main) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err && err.stack ? err.stack : err);
      process.exit(1);
    },
  );
}
