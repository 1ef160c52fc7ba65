// The sign-up page: posts the forms as JSON, keeps the login token for this tab only and shows
// the account `/me` returns. Its language and theme are the race's (HashPass's page.js keeps the
// choice in this origin's localStorage), so a visitor chooses them once for every page.
import { createTranslator, initTheme } from '/static/js/page.js';

const TEXT = {
  en: {
    title: 'Join — an invite-only site',
    site: 'An invite-only site',
    race: 'Race for an invite code',
    language: 'Language',
    theme: 'Theme',
    'theme.system': 'System',
    'theme.light': 'Light',
    'theme.dark': 'Dark',
    signup: 'Sign up',
    'signup.intro1': 'You need an invite code: win one in',
    'signup.race': 'the race',
    'signup.intro2': ', then use it here. Each code signs up one account.',
    username: 'Username',
    password: 'Password',
    code: 'Invite code',
    'signup.submit': 'Create account',
    login: 'Log in',
    'login.submit': 'Log in',
    account: 'Your account',
    'account.none': 'Not logged in.',
    welcome: 'Welcome, {name}: your account is ready, log in below.',
    'logged.in': 'Logged in.',
    'http.error': 'The site answered {status}.',
    // The site's refusals, by their `code`; the server's `detail` (English) is used otherwise.
    'err.malformed': 'This is not an invite code: check that it was copied whole.',
    'err.bad_signature': 'This invite code is not genuine.',
    'err.key_rotated': 'This invite code was issued under a key that has since been replaced.',
    'err.expired': 'This invite code has expired.',
    'err.revoked': 'This invite code was withdrawn.',
    'err.already_used': 'This invite code has already been used.',
    'err.username_taken': 'This username is taken: choose another one.',
    'err.bad_credentials': 'Wrong username or password.',
    'err.too_many_logins': 'Too many login attempts from your address: try again in {retry} s.',
    'err.busy': 'The site is busy: try again in {retry} s.',
    'err.unavailable': 'The site cannot reach its database right now: try again in a moment.',
  },
  zh: {
    title: '加入——仅限邀请的网站',
    site: '仅限邀请的网站',
    race: '去竞速赢取邀请码',
    language: '语言',
    theme: '主题',
    'theme.system': '跟随系统',
    'theme.light': '浅色',
    'theme.dark': '深色',
    signup: '注册',
    'signup.intro1': '注册需要邀请码：先在',
    'signup.race': '竞速',
    'signup.intro2': '中赢取一个，再在这里使用。每个邀请码可注册一个账号。',
    username: '用户名',
    password: '密码',
    code: '邀请码',
    'signup.submit': '创建账号',
    login: '登录',
    'login.submit': '登录',
    account: '你的账号',
    'account.none': '尚未登录。',
    welcome: '欢迎，{name}：账号已创建，请在下方登录。',
    'logged.in': '已登录。',
    'http.error': '网站返回了 {status}。',
    'err.malformed': '这不是有效的邀请码：请确认复制完整。',
    'err.bad_signature': '这个邀请码不是真实签发的。',
    'err.key_rotated': '这个邀请码的签发密钥已被更换。',
    'err.expired': '这个邀请码已过期。',
    'err.revoked': '这个邀请码已被撤销。',
    'err.already_used': '这个邀请码已被使用。',
    'err.username_taken': '这个用户名已被占用，请换一个。',
    'err.bad_credentials': '用户名或密码错误。',
    'err.too_many_logins': '你的地址登录尝试次数过多，请在 {retry} 秒后重试。',
    'err.busy': '网站正忙，请在 {retry} 秒后重试。',
    'err.unavailable': '网站暂时无法连接数据库，请稍后再试。',
  },
};

const { t, bind } = createTranslator(TEXT);
const message = document.getElementById('message');
// The last message, kept as a key so that switching the language translates it too.
let shown = null;

function say(render, ok) {
  shown = { render, ok };
  message.textContent = render();
  message.className = ok ? 'ok' : 'error';
}

/** A refusal in the visitor's language when its code is known, else the server's words. */
class SiteRefusal extends Error {
  constructor(status, answer) {
    super(answer.detail || '');
    this.status = status;
    this.answer = answer;
  }

  describe() {
    const key = `err.${this.answer.code}`;
    if (TEXT.en[key]) return t(key, { retry: this.answer.retry_after ?? '' });
    return this.message || t('http.error', { status: this.status });
  }
}

async function send(path, form) {
  const body = JSON.stringify(Object.fromEntries(new FormData(form)));
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new SiteRefusal(response.status, answer);
  return answer;
}

function describe(error) {
  return error instanceof SiteRefusal ? error.describe() : String(error.message || error);
}

let account = null;

// The account as JSON; with none, the translated "Not logged in." (data-i18n keeps it in the
// page's language, so a language switch needs nothing from here).
function showAccount() {
  const me = document.getElementById('me');
  if (account) {
    me.removeAttribute('data-i18n');
    me.textContent = JSON.stringify(account, null, 2);
  } else {
    me.dataset.i18n = 'account.none';
    me.textContent = t('account.none');
  }
}

async function showMe() {
  const token = sessionStorage.getItem('site-token');
  if (!token) return;
  const response = await fetch('/me', { headers: { authorization: `Bearer ${token}` } });
  const answer = await response.json().catch(() => ({}));
  account = response.ok ? answer : null;
  showAccount();
}

document.getElementById('signup').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    const created = await send('/signup', event.target);
    say(() => t('welcome', { name: created.username }), true);
  } catch (e) {
    say(() => describe(e), false);
  }
});

document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    const token = await send('/login', event.target);
    sessionStorage.setItem('site-token', token.access_token);
    say(() => t('logged.in'), true);
    await showMe();
  } catch (e) {
    say(() => describe(e), false);
  }
});

initTheme(document.getElementById('theme'));
bind(document.getElementById('lang'), () => {
  document.title = t('title');
  if (shown) say(shown.render, shown.ok);
});
document.title = t('title');

const fromRace = new URLSearchParams(location.hash.slice(1)).get('code');
if (fromRace) document.querySelector('#signup [name=invite_code]').value = fromRace;
showMe();
