// End-to-end: two browsers on the miner page. One mines and wins an invite code that the
// server's audit log holds; the other sees the puzzle reset and starts mining the new one.
//
// node tests/browser/miner.e2e.mjs --base http://127.0.0.1:PORT --out DIR --admin-token TOKEN [--chromium PATH]
import { args, launch, watchedContext, screenshots, assertNoProblems, run } from './common.mjs';

run(async () => {
  const opts = args();
  const browser = await launch(opts);
  try {
    const admin = async (path) => {
      const response = await fetch(`${opts.base}${path}`, { headers: { Authorization: `Bearer ${opts['admin-token']}` } });
      if (!response.ok) throw new Error(`admin ${path}: HTTP ${response.status}`);
      return response.json();
    };

    // The watcher connects first and starts mining.
    // Two browsers racing: the loser of a round is told 409 "already solved", by design.
    const race = { allowStatus: [['/api/verify', 409]] };
    const watcher = await watchedContext(browser, opts.base, race);
    const watcherPage = await watcher.context.newPage();
    await watcherPage.goto(`${opts.base}/`);
    await watcherPage.waitForFunction(() => document.querySelector('#conn-state')?.dataset.state === 'connected', null, { timeout: 20000 });
    await watcherPage.waitForFunction(() => document.querySelector('#workers')?.textContent !== '–', null, { timeout: 20000 });

    // The miner joins; whichever of the two wins, a code appears on one page and the other
    // page starts over on the new puzzle.
    const miner = await watchedContext(browser, opts.base, race);
    const minerPage = await miner.context.newPage();
    await minerPage.goto(`${opts.base}/`);
    const winnerHandle = await Promise.race([
      minerPage.waitForSelector('#result:not(.hidden) #invite-code', { timeout: 60000 }).then(() => 'miner'),
      watcherPage.waitForSelector('#result:not(.hidden) #invite-code', { timeout: 60000 }).then(() => 'watcher'),
    ]);
    const [winner, other] = winnerHandle === 'miner' ? [minerPage, watcherPage] : [watcherPage, minerPage];
    const code = (await winner.textContent('#invite-code')).trim();
    if (!/^HASHPASS-[0-9A-Z-]+$/.test(code)) throw new Error(`not an invite code: ${code}`);
    console.log(`winner: ${winnerHandle}, code ${code}`);

    // The server's audit log recorded exactly this code.
    const logs = await admin(`/api/admin/logs?search=${encodeURIComponent(code)}`);
    if (logs.total !== 1 || logs.records[0].invite_code !== code) {
      throw new Error(`the audit log does not hold ${code}: ${JSON.stringify(logs)}`);
    }

    // The other page mines the current puzzle: it heard the reset (or, when it loaded after the
    // win, started on the new puzzle directly). The winner pauses first, or at difficulty 3 the
    // two pages would go on resetting the puzzle faster than a check can follow: the other page
    // fetches only the newest puzzle after resets in quick succession, so a seed read at one
    // instant may never appear in its log. Then the other page's newest puzzle must be, at some
    // moment, the server's current one.
    await winner.click('#toggle');
    const deadline = Date.now() + 20000;
    let seen = { page: null, server: null };
    for (;;) {
      const page = await other.$$eval('#log li', (items) => {
        const seeds = items.map((li) => (li.textContent.match(/New puzzle (\w{8})/) || [])[1]).filter(Boolean);
        return seeds[seeds.length - 1] || null;
      });
      const server = (await admin('/api/admin/status')).current_seed.slice(0, 8);
      seen = { page, server };
      if (page && page === server) break;
      if (Date.now() > deadline) {
        const log = await other.$$eval('#log li', (items) => items.map((li) => li.textContent));
        throw new Error(`the other page is not on the current puzzle (page ${seen.page}, server ${seen.server}): ${log.join(' | ')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await other.waitForFunction(() => document.querySelector('#workers')?.textContent !== '–', null, { timeout: 20000 });

    // No errors anywhere, nothing from another origin.
    assertNoProblems(watcher.problems, 'watcher page');
    assertNoProblems(miner.problems, 'miner page');
    await watcher.context.close();
    await miner.context.close();

    // How it looks: desktop and phone, light and dark, with a code on screen.
    await screenshots(browser, `${opts.base}/`, opts.out, 'miner', async (page) => {
      await page.waitForSelector('#result:not(.hidden)', { timeout: 60000 });
    });
  } finally {
    await browser.close();
  }
});
