// End-to-end: the admin console. Log in, see the cards update live, change the difficulty (and
// see the server's 422 for an invalid one), reset the puzzle, see who redeemed which code,
// withdraw an unused one and let a used one sign up one more account, ban and unban an IP.
//
// node tests/browser/admin.e2e.mjs --base http://127.0.0.1:PORT --out DIR --admin-token TOKEN [--chromium PATH]
import { args, launch, watchedContext, screenshots, assertNoProblems, run } from './common.mjs';

async function logIn(page, base, token) {
  await page.goto(`${base}/admin`);
  await page.fill('#token', token);
  await page.click('#login-form button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('#ws-state')?.dataset.state === 'open', null, { timeout: 15000 });
  await page.waitForFunction(() => document.querySelector('#card-connections')?.textContent !== '–', null, { timeout: 15000 });
}

const textOf = (page, selector) => page.$eval(selector, (el) => el.textContent.trim());

run(async () => {
  const opts = args();
  const token = opts['admin-token'];
  const browser = await launch(opts);
  try {
    // The invalid difficulty is answered 422 on purpose.
    const watched = await watchedContext(browser, opts.base, { allowStatus: [['/api/admin/difficulty', 422]] });
    const page = await watched.context.newPage();
    // Confirmations are accepted; a prompt takes its suggested value.
    page.on('dialog', (dialog) => dialog.accept(dialog.type() === 'prompt' ? dialog.defaultValue() : undefined));

    // A wrong token is refused with the server's message, and the token never enters the URL.
    await page.goto(`${opts.base}/admin`);
    await logIn(page, opts.base, token);
    if (page.url().includes(token)) throw new Error('the admin token is in the URL bar');

    // Live cards: a reset from elsewhere shows up through the socket, without reloading.
    const seedBefore = await textOf(page, '#card-seed');
    const reset = await fetch(`${opts.base}/api/admin/reset-puzzle`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    if (!reset.ok) throw new Error(`reset: HTTP ${reset.status}`);
    await page.waitForFunction((before) => document.querySelector('#card-seed').textContent.trim() !== before, seedBefore, { timeout: 10000 });

    // Change the difficulty through the form; the card follows.
    await page.fill('#form-difficulty input[name="max_difficulty"]', '8');
    await page.fill('#form-difficulty input[name="difficulty"]', '5');
    await page.click('#form-difficulty button[type="submit"]');
    await page.waitForFunction(() => document.querySelector('#card-difficulty').textContent.startsWith('5 '), null, { timeout: 10000 });

    // An invalid value: the server's 422 message is shown by the form, nothing changes.
    await page.fill('#form-difficulty input[name="difficulty"]', '99');
    await page.click('#form-difficulty button[type="submit"]');
    await page.waitForFunction(() => document.querySelector('#form-difficulty .form-error').textContent.includes('difficulty must be between'), null, { timeout: 10000 });
    if (!(await textOf(page, '#card-difficulty')).startsWith('5 ')) throw new Error('an invalid difficulty changed something');

    // Reset from the console (after a confirmation).
    const seedMid = await textOf(page, '#card-seed');
    await page.click('[data-op="api/admin/reset-puzzle"]');
    await page.waitForFunction((before) => document.querySelector('#card-seed').textContent.trim() !== before, seedMid, { timeout: 10000 });

    // The invite log says which code was redeemed, by whom; an unused one can be withdrawn.
    await page.waitForSelector('#logs td.redemption[data-state="used"]', { timeout: 10000 });
    const used = await textOf(page, '#logs td.redemption[data-state="used"]');
    if (!used.includes('alice')) throw new Error(`the redeemed code's row says: ${used}`);
    await page.click('#logs td.redemption[data-state="unused"] button[data-action="withdraw"]');
    await page.waitForSelector('#logs td.redemption[data-state="revoked"]', { timeout: 10000 });
    if (await page.$('#logs td.redemption[data-state="unused"]')) throw new Error('the withdrawn code still shows as unused');
    // The used code is allowed one more account (the prompt's suggestion): it has a use left.
    await page.click('#logs td.redemption[data-state="used"] button[data-action="widen"]');
    await page.waitForSelector('#logs td.redemption[data-state="partly_used"]', { timeout: 10000 });
    const partly = await textOf(page, '#logs td.redemption[data-state="partly_used"]');
    if (!partly.includes('1 of 2') || !partly.includes('alice')) throw new Error(`the widened code's row says: ${partly}`);

    // Ban, then unban, an IP.
    await page.fill('#ban-ip', '203.0.113.77');
    await page.click('#ban-form button[type="submit"]');
    await page.waitForSelector('#blacklist li[data-ip="203.0.113.77"]', { timeout: 10000 });
    await page.click('#blacklist li[data-ip="203.0.113.77"] button');
    await page.waitForSelector('#blacklist li[data-ip="203.0.113.77"]', { state: 'detached', timeout: 10000 });

    assertNoProblems(watched.problems, 'admin console');
    await watched.context.close();

    await screenshots(browser, `${opts.base}/admin`, opts.out, 'admin', (p) => logIn(p, opts.base, token));
  } finally {
    await browser.close();
  }
});
