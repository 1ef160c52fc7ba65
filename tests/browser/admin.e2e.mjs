// End-to-end: the admin console. Log in, see the cards update live and the settings forms filled
// with the current values; edit one and see its "was" hint survive a status update (in both
// languages); cancel an operation in the confirmation dialog (nothing is sent), confirm it (the
// server's answer is shown); change the difficulty (and see the server's 422 for an invalid one),
// reset the puzzle, sort and filter the miners and sessions tables across their refreshes, see who
// redeemed which code, withdraw an unused one and let a used one sign up one more account, ban
// and unban an IP, clear the sessions.
//
// node tests/browser/admin.e2e.mjs --base http://127.0.0.1:PORT --out DIR --admin-token TOKEN [--chromium PATH]
import path from 'node:path';
import { args, launch, watchedContext, screenshots, assertNoProblems, run } from './common.mjs';

async function logIn(page, base, token) {
  await page.goto(`${base}/admin`);
  await page.fill('#token', token);
  await page.click('#login-form button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('#ws-state')?.dataset.state === 'open', null, { timeout: 15000 });
  await page.waitForFunction(() => document.querySelector('#card-connections')?.textContent !== '–', null, { timeout: 15000 });
}

const textOf = (page, selector) => page.$eval(selector, (el) => el.textContent.trim());

// Each settings input and the status field it shows.
const SETTINGS = {
  '#form-difficulty': { difficulty: 'difficulty', min_difficulty: 'min_difficulty', max_difficulty: 'max_difficulty' },
  '#form-target': { target_time: 'target_time', target_timeout: 'target_timeout' },
  '#form-argon2': { time_cost: 'argon2_time_cost', memory_cost: 'argon2_memory_cost', parallelism: 'argon2_parallelism' },
  '#form-workers': { worker_count: 'worker_count' },
  '#form-speed': { max_nonce_speed: 'max_nonce_speed' },
};

// Waits for the confirmation dialog, checks that it names `expect`, then presses Confirm or Cancel.
async function answerDialog(page, choice, expect = []) {
  await page.waitForSelector('#confirm[open]', { timeout: 5000 });
  const text = await page.$eval('#confirm', (d) => d.textContent.replace(/\s+/g, ' '));
  for (const part of expect) {
    if (!text.includes(part)) throw new Error(`the confirmation says "${text}", not "${part}"`);
  }
  await page.click(choice === 'confirm' ? '#confirm-ok' : '#confirm-cancel');
  await page.waitForSelector('#confirm', { state: 'hidden', timeout: 5000 });
  return text;
}

// Waits until the status area says `part` (with `kind` 'ok' or 'error' when given).
async function waitAnnounce(page, part, kind) {
  await page.waitForFunction(([p, k]) => {
    const el = document.querySelector('#announce');
    return el.textContent.includes(p) && (!k || el.dataset.kind === k);
  }, [part, kind], { timeout: 10000 });
  if (!(await page.isVisible('#announce'))) throw new Error('the status area is not visible');
}

// The texts of one column of a table body.
const column = (page, body, col) => page.$$eval(`#${body} tr:not(.empty) td[data-col="${col}"]`, (tds) => tds.map((td) => td.textContent.trim()));

function ipv4Order(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 4; i += 1) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}

function assertSorted(values, compare, dir, what) {
  const sorted = [...values].sort(compare);
  if (dir === 'descending') sorted.reverse();
  if (JSON.stringify(values) !== JSON.stringify(sorted)) throw new Error(`${what} not ${dir}: ${values.join(', ')}`);
}

const ariaSort = (page, table, key) => page.$eval(`#${table} th[data-key="${key}"]`, (th) => th.getAttribute('aria-sort'));

// Resolves after the table body has been rendered again by a periodic refresh.
async function nextRefresh(page, body) {
  const before = Number(await page.$eval(`#${body}`, (el) => el.dataset.renders || 0));
  await page.waitForFunction(([id, n]) => Number(document.getElementById(id).dataset.renders || 0) > n, [body, before], { timeout: 12000 });
}

run(async () => {
  const opts = args();
  const token = opts['admin-token'];
  const admin = async (method, route, body) => {
    const response = await fetch(`${opts.base}${route}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!response.ok) throw new Error(`${method} ${route}: HTTP ${response.status}`);
    return response.json();
  };
  const browser = await launch(opts);
  try {
    // The invalid difficulty is answered 422 on purpose.
    const watched = await watchedContext(browser, opts.base, { allowStatus: [['/api/admin/difficulty', 422]] });
    const page = await watched.context.newPage();
    // Every question is the page's own <dialog>: a window.confirm or prompt is a failure.
    page.on('dialog', (dialog) => {
      watched.problems.push(`a window ${dialog.type()} opened: ${dialog.message()}`);
      dialog.dismiss();
    });
    // Every POST the page sends, to tell a cancelled operation (nothing sent) from a confirmed one.
    const posts = [];
    page.on('request', (req) => {
      if (req.method() === 'POST') posts.push(new URL(req.url()).pathname);
    });
    const sent = (route) => posts.filter((p) => p.endsWith(route)).length;

    // A wrong token is refused with the server's message, and the token never enters the URL.
    await page.goto(`${opts.base}/admin`);
    await logIn(page, opts.base, token);
    if (page.url().includes(token)) throw new Error('the admin token is in the URL bar');
    const live = await page.$eval('#announce', (el) => `${el.getAttribute('role')} ${el.getAttribute('aria-live')}`);
    if (live !== 'status polite') throw new Error(`the status area is ${live}, not a polite live region`);

    // The settings forms open with the current values, nothing marked changed, Apply disabled.
    const status = await admin('GET', '/api/admin/status');
    for (const [form, fields] of Object.entries(SETTINGS)) {
      for (const [name, key] of Object.entries(fields)) {
        const value = await page.inputValue(`${form} input[name="${name}"]`);
        if (value !== String(status[key])) throw new Error(`${form} ${name} shows "${value}", the status says ${status[key]}`);
      }
      if (!(await page.$eval(`${form} button[type="submit"]`, (b) => b.disabled))) throw new Error(`${form}: Apply is enabled with nothing changed`);
    }
    if (await page.$('form.setting input.changed')) throw new Error('a setting is marked changed before any edit');

    // Live cards: a reset from elsewhere shows up through the socket, without reloading.
    const seedBefore = await textOf(page, '#card-seed');
    const reset = await fetch(`${opts.base}/api/admin/reset-puzzle`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    if (!reset.ok) throw new Error(`reset: HTTP ${reset.status}`);
    await page.waitForFunction((before) => document.querySelector('#card-seed').textContent.trim() !== before, seedBefore, { timeout: 10000 });

    // An edit is marked with what the server has ("was 75"), and a status update that changes
    // another field of the form leaves the edited one alone while the other follows the server.
    const target = status.target_time;
    const timeout = status.target_timeout;
    const wanted = String(target + 5);
    const targetInput = '#form-target input[name="target_time"]';
    const timeoutInput = '#form-target input[name="target_timeout"]';
    await page.fill(targetInput, wanted);
    await page.waitForSelector(`${targetInput}.changed`, { timeout: 5000 });
    const hint = await textOf(page, '#form-target-target_time-was');
    if (hint !== `was ${target}`) throw new Error(`the edited field's hint says "${hint}"`);
    if ((await page.getAttribute(targetInput, 'aria-describedby')) !== 'form-target-target_time-was') throw new Error('the hint is not tied to its field');
    await admin('POST', '/api/admin/target-time', { target_timeout: timeout + 60 });
    await page.waitForFunction(([sel, v]) => document.querySelector(sel).value === v, [timeoutInput, String(timeout + 60)], { timeout: 10000 });
    if ((await page.inputValue(targetInput)) !== wanted) throw new Error('a status update overwrote the field being edited');
    if ((await textOf(page, '#form-target-target_time-was')) !== `was ${target}`) throw new Error('the hint changed without a change of the value');
    // The hint in Chinese, and the new table texts; then back to English.
    await page.selectOption('#lang', 'zh');
    const zhHint = await textOf(page, '#form-target-target_time-was');
    const zhHeader = await textOf(page, '#sessions-table th[data-key="created"] button');
    const zhPlaceholder = await page.getAttribute('#sessions-filter', 'placeholder');
    if (zhHint !== `原为 ${target}` || zhHeader !== '创建时间' || zhPlaceholder !== '筛选行…') {
      throw new Error(`in Chinese: hint "${zhHint}", header "${zhHeader}", filter "${zhPlaceholder}"`);
    }
    await page.selectOption('#lang', 'en');
    if ((await textOf(page, '#form-target-target_time-was')) !== `was ${target}`) throw new Error('the hint did not come back to English');

    // Apply asks first, naming the change; cancelling sends nothing and keeps the edit.
    await page.click('#form-target button[type="submit"]');
    await page.waitForSelector('#confirm[open]', { timeout: 5000 });
    await page.screenshot({ path: path.join(opts.out, 'admin-confirm.png') });
    await answerDialog(page, 'cancel', ['Apply Target time', `Target (s): ${target} → ${wanted}`]);
    await waitAnnounce(page, 'cancelled, nothing was sent');
    await page.waitForTimeout(500);
    if (sent('/api/admin/target-time')) throw new Error('a cancelled save was sent');
    if ((await page.inputValue(targetInput)) !== wanted) throw new Error('cancelling lost the edit');
    // Confirming sends it once; the server's answer is shown and the form shows its values.
    await page.click('#form-target button[type="submit"]');
    await answerDialog(page, 'confirm', [`${target} → ${wanted}`]);
    await waitAnnounce(page, `saved Target (s) = ${wanted}`, 'ok');
    if (sent('/api/admin/target-time') !== 1) throw new Error(`the save was sent ${sent('/api/admin/target-time')} times`);
    await page.waitForFunction((sel) => !document.querySelector(sel).classList.contains('changed'), targetInput, { timeout: 5000 });
    if ((await page.inputValue(targetInput)) !== wanted || (await page.inputValue(timeoutInput)) !== String(timeout + 60)) {
      throw new Error('after saving, the form does not show the server\'s values');
    }
    if ((await textOf(page, '#form-target-target_time-was')) !== '') throw new Error('a saved field still says what it was');
    if ((await admin('GET', '/api/admin/status')).target_time !== target + 5) throw new Error('the server did not take the target time');

    // Change the difficulty through the form; the card follows.
    await page.fill('#form-difficulty input[name="max_difficulty"]', '8');
    await page.fill('#form-difficulty input[name="difficulty"]', '5');
    await page.click('#form-difficulty button[type="submit"]');
    await answerDialog(page, 'confirm', ['Difficulty: 3 → 5', 'Maximum: 3 → 8', 'resets the puzzle']);
    await page.waitForFunction(() => document.querySelector('#card-difficulty').textContent.startsWith('5 '), null, { timeout: 10000 });
    await waitAnnounce(page, 'saved Difficulty = 5, Minimum = 3, Maximum = 8', 'ok');
    if ((await page.inputValue('#form-difficulty input[name="difficulty"]')) !== '5') throw new Error('the form does not show the new difficulty');

    // An invalid value: the server's 422 message is shown by the form and in the status area,
    // with the status; nothing changes. Revert puts the current value back.
    await page.fill('#form-difficulty input[name="difficulty"]', '99');
    await page.click('#form-difficulty button[type="submit"]');
    await answerDialog(page, 'confirm', ['5 → 99']);
    await page.waitForFunction(() => document.querySelector('#form-difficulty .form-error').textContent.includes('difficulty must be between'), null, { timeout: 10000 });
    await waitAnnounce(page, 'HTTP 422: difficulty must be between', 'error');
    if (!(await textOf(page, '#card-difficulty')).startsWith('5 ')) throw new Error('an invalid difficulty changed something');
    await page.click('#form-difficulty [data-action="revert"]');
    if ((await page.inputValue('#form-difficulty input[name="difficulty"]')) !== '5') throw new Error('Revert did not restore the current value');

    // Reset from the console: cancelled first (nothing sent), then confirmed.
    const seedMid = await textOf(page, '#card-seed');
    await page.click('[data-op="api/admin/reset-puzzle"]');
    await answerDialog(page, 'cancel', ['Reset puzzle']);
    await page.waitForTimeout(500);
    if (sent('/api/admin/reset-puzzle')) throw new Error('a cancelled reset was sent');
    if ((await textOf(page, '#card-seed')) !== seedMid) throw new Error('a cancelled reset changed the seed');
    await page.click('[data-op="api/admin/reset-puzzle"]');
    await answerDialog(page, 'confirm');
    await page.waitForFunction((before) => document.querySelector('#card-seed').textContent.trim() !== before, seedMid, { timeout: 10000 });
    await waitAnnounce(page, 'Reset puzzle: Puzzle reset', 'ok');
    if (sent('/api/admin/reset-puzzle') !== 1) throw new Error('the reset was not sent exactly once');

    // Two miners from this browser, reporting different rates.
    await page.evaluate(() => Promise.all([123.45, 987.65].map((rate) => new Promise((resolve, reject) => {
      const hex = Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, '0')).join('');
      const url = new URL(`api/ws?token=test-${hex}`, document.baseURI);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(url);
      const report = () => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'hashrate', payload: { rate, timestamp: Date.now() / 1000 } }));
      };
      ws.onmessage = (event) => {
        if (!String(event.data).includes('SESSION_TOKEN')) return;
        report();
        const timer = setInterval(report, 1000);
        ws.addEventListener('close', () => clearInterval(timer));
        resolve();
      };
      ws.onerror = () => reject(new Error('a player socket failed'));
    }))));

    // The miners table: highest rate first, then sorted by a click on a header, filtered by a
    // word, both kept across the periodic refresh.
    await page.waitForFunction(() => document.querySelectorAll('#miners tr:not(.empty)').length >= 2, null, { timeout: 15000 });
    const rate = (values) => values.map(Number);
    if ((await ariaSort(page, 'miners-table', 'hashrate')) !== 'descending') throw new Error('the miners are not marked as sorted by hashrate');
    assertSorted(rate(await column(page, 'miners', 'hashrate')), (a, b) => a - b, 'descending', 'miners by hashrate');
    await page.click('#miners-table th[data-key="hashrate"] button');
    if ((await ariaSort(page, 'miners-table', 'hashrate')) !== 'ascending') throw new Error('a second click did not sort ascending');
    assertSorted(rate(await column(page, 'miners', 'hashrate')), (a, b) => a - b, 'ascending', 'miners by hashrate');
    await page.fill('#miners-filter', '987.65');
    await page.waitForFunction(() => document.querySelectorAll('#miners tr:not(.empty)').length === 1, null, { timeout: 5000 });
    await nextRefresh(page, 'miners');
    if ((await column(page, 'miners', 'hashrate')).join() !== '987.65') throw new Error('a refresh lost the miners filter');
    if (!(await textOf(page, '#miners-count')).startsWith('1 of ')) throw new Error(`the miners count says ${await textOf(page, '#miners-count')}`);
    await page.fill('#miners-filter', '');
    await nextRefresh(page, 'miners');
    if ((await ariaSort(page, 'miners-table', 'hashrate')) !== 'ascending') throw new Error('a refresh lost the miners sort');
    assertSorted(rate(await column(page, 'miners', 'hashrate')), (a, b) => a - b, 'ascending', 'miners after a refresh');

    // The sessions table: newest first, then by IP either way, and filtered to one address.
    await page.waitForFunction(() => document.querySelectorAll('#sessions tr:not(.empty)').length >= 3, null, { timeout: 15000 });
    if ((await ariaSort(page, 'sessions-table', 'created')) !== 'descending') throw new Error('the sessions are not marked newest first');
    await page.click('#sessions-table th[data-key="ip"] button');
    if ((await ariaSort(page, 'sessions-table', 'ip')) !== 'ascending' || (await ariaSort(page, 'sessions-table', 'created')) !== null) {
      throw new Error('aria-sort does not follow the clicked header');
    }
    assertSorted(await column(page, 'sessions', 'ip'), ipv4Order, 'ascending', 'sessions by IP');
    await page.click('#sessions-table th[data-key="ip"] button');
    if ((await ariaSort(page, 'sessions-table', 'ip')) !== 'descending') throw new Error('a second click did not sort descending');
    const ips = await column(page, 'sessions', 'ip');
    assertSorted(ips, ipv4Order, 'descending', 'sessions by IP');
    const rowTexts = await page.$$eval('#sessions tr:not(.empty)', (rows) => rows.map((r) => r.textContent));
    const lone = ips.find((ip) => rowTexts.filter((text) => text.includes(ip)).length === 1);
    if (!lone) throw new Error(`no session address to filter by among ${ips.join(', ')}`);
    await page.fill('#sessions-filter', lone);
    await page.waitForFunction(() => document.querySelectorAll('#sessions tr:not(.empty)').length === 1, null, { timeout: 5000 });
    await nextRefresh(page, 'sessions');
    if ((await column(page, 'sessions', 'ip')).join() !== lone) throw new Error('a refresh lost the sessions filter');
    if ((await page.inputValue('#sessions-filter')) !== lone) throw new Error('a refresh emptied the filter box');
    await page.fill('#sessions-filter', 'no-such-row');
    await page.waitForSelector('#sessions tr.empty', { timeout: 5000 });
    await page.fill('#sessions-filter', '');
    await nextRefresh(page, 'sessions');
    if ((await ariaSort(page, 'sessions-table', 'ip')) !== 'descending') throw new Error('a refresh lost the sessions sort');
    assertSorted(await column(page, 'sessions', 'ip'), ipv4Order, 'descending', 'sessions after a refresh');
    // A row's Ban asks first, naming the address; cancelled, nothing is sent.
    await page.click(`#sessions tr:has(td[data-col="ip"]:text-is("${lone}")) button[data-action="ban"]`);
    await answerDialog(page, 'cancel', [`Ban ${lone}`]);
    await page.waitForTimeout(500);
    if (sent('/api/admin/kick')) throw new Error('a cancelled ban was sent');

    // The invite log says which code was redeemed, by whom; an unused one can be withdrawn.
    await page.waitForSelector('#logs td.redemption[data-state="used"]', { timeout: 10000 });
    const used = await textOf(page, '#logs td.redemption[data-state="used"]');
    if (!used.includes('alice')) throw new Error(`the redeemed code's row says: ${used}`);
    await page.click('#logs td.redemption[data-state="unused"] button[data-action="withdraw"]');
    await answerDialog(page, 'confirm', ['Withdraw', 'HASHPASS-']);
    await page.waitForSelector('#logs td.redemption[data-state="revoked"]', { timeout: 10000 });
    await waitAnnounce(page, 'Invite code withdrawn', 'ok');
    if (await page.$('#logs td.redemption[data-state="unused"]')) throw new Error('the withdrawn code still shows as unused');
    // The used code is allowed one more account (the dialog's suggestion): it has a use left.
    await page.click('#logs td.redemption[data-state="used"] button[data-action="widen"]');
    await page.waitForSelector('#confirm[open]', { timeout: 5000 });
    if ((await page.inputValue('#confirm-input')) !== '2') throw new Error('the dialog does not suggest one more use');
    await answerDialog(page, 'confirm', ['1 of 1']);
    await page.waitForSelector('#logs td.redemption[data-state="partly_used"]', { timeout: 10000 });
    await waitAnnounce(page, 'now signs up 2 accounts', 'ok');
    const partly = await textOf(page, '#logs td.redemption[data-state="partly_used"]');
    if (!partly.includes('1 of 2') || !partly.includes('alice')) throw new Error(`the widened code's row says: ${partly}`);

    // Ban, then unban, an IP, each confirmed, each answer shown.
    await page.fill('#ban-ip', '203.0.113.77');
    await page.click('#ban-form button[type="submit"]');
    await answerDialog(page, 'confirm', ['Ban 203.0.113.77']);
    await page.waitForSelector('#blacklist li[data-ip="203.0.113.77"]', { timeout: 10000 });
    await waitAnnounce(page, 'Banned and kicked', 'ok');
    await page.click('#blacklist li[data-ip="203.0.113.77"] button[data-action="unban"]');
    await answerDialog(page, 'confirm', ['Unban 203.0.113.77']);
    await page.waitForSelector('#blacklist li[data-ip="203.0.113.77"]', { state: 'detached', timeout: 10000 });
    await waitAnnounce(page, 'Unbanned IP 203.0.113.77', 'ok');
    // The answer is in view even down here: the status area stays at the top of the viewport.
    const box = await page.$eval('#announce', (el) => el.getBoundingClientRect().toJSON());
    if (box.top < 0 || box.bottom > page.viewportSize().height) throw new Error(`the status area is out of view (${box.top}–${box.bottom})`);

    // Clear the sessions: every session shows as revoked.
    await page.click('[data-op="api/admin/clear-sessions"]');
    await answerDialog(page, 'confirm', ['Revoke every session token']);
    await waitAnnounce(page, 'Clear sessions: Cleared', 'ok');
    await page.waitForFunction(() => {
      const states = [...document.querySelectorAll('#sessions td[data-col="state"]')];
      return states.length > 0 && states.every((td) => td.textContent === 'Revoked');
    }, null, { timeout: 10000 });

    assertNoProblems(watched.problems, 'admin console');
    await watched.context.close();

    await screenshots(browser, `${opts.base}/admin`, opts.out, 'admin', (p) => logIn(p, opts.base, token));
  } finally {
    await browser.close();
  }
});
