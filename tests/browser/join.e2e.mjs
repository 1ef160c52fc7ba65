// End-to-end: the example site's sign-up page. The code won in the race is filled in from the
// link, sign-up succeeds once, a second sign-up with the same code is refused (in English, then
// in Chinese, the language then holding on the race's page as well), and logging in shows the
// account from /me.
//
// node tests/browser/join.e2e.mjs --base http://127.0.0.1:PORT --out DIR --code CODE [--chromium PATH]
import { args, launch, watchedContext, screenshots, assertNoProblems, run } from './common.mjs';

const PASSWORD = 'a long enough password';

const messageIncludes = (page, text) => page.waitForFunction(
  (wanted) => document.querySelector('#message').textContent.includes(wanted), text, { timeout: 15000 },
);

run(async () => {
  const opts = args();
  const browser = await launch(opts);
  try {
    // The reused code is answered 409 on purpose.
    const watched = await watchedContext(browser, opts.base, { allowStatus: [['/signup', 409]] });
    const page = await watched.context.newPage();
    await page.goto(`${opts.base}/join#code=${encodeURIComponent(opts.code)}`);
    const filled = await page.inputValue('#signup [name="invite_code"]');
    if (filled !== opts.code) throw new Error(`the invite code field holds ${JSON.stringify(filled)}`);

    await page.fill('#signup [name="username"]', 'browser-user');
    await page.fill('#signup [name="password"]', PASSWORD);
    await page.click('#signup button[type="submit"]');
    await messageIncludes(page, 'Welcome, browser-user');

    await page.fill('#signup [name="username"]', 'second-user');
    await page.click('#signup button[type="submit"]');
    await messageIncludes(page, 'already been used');

    // Chinese: the page and its last message change language, and the choice holds on the
    // race's page too (one choice for every page of the origin).
    await page.selectOption('#lang', 'zh');
    await page.waitForFunction(() => document.documentElement.lang === 'zh-CN');
    const heading = await page.textContent('section h2');
    if (heading !== '注册') throw new Error(`the sign-up heading in Chinese is ${JSON.stringify(heading)}`);
    await messageIncludes(page, '这个邀请码已被使用');
    const race = await watched.context.newPage();
    await race.goto(`${opts.base}/`);
    await race.waitForFunction(() => document.documentElement.lang === 'zh-CN', null, { timeout: 15000 });
    if ((await race.inputValue('#lang')) !== 'zh') throw new Error('the race page did not keep the language');
    await race.close();
    await page.selectOption('#lang', 'en');
    await messageIncludes(page, 'already been used');

    await page.fill('#login [name="username"]', 'browser-user');
    await page.fill('#login [name="password"]', PASSWORD);
    await page.click('#login button[type="submit"]');
    await page.waitForFunction(() => document.querySelector('#me').textContent.includes('"username": "browser-user"'), null, { timeout: 15000 });

    assertNoProblems(watched.problems, 'join page');
    await watched.context.close();
    await screenshots(browser, `${opts.base}/join`, opts.out, 'join');
  } finally {
    await browser.close();
  }
});
