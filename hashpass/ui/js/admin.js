// The admin console: log in with the admin token (kept in sessionStorage), live cards and charts
// from the admin socket, settings forms showing the current values, sortable and filterable
// miners and sessions tables, blacklist, invite and application logs, and operations. Every
// operation asks first in the confirmation dialog and reports the server's answer in the status
// area. All dynamic text goes through textContent. Every API path (here and in the page's data-op
// and data-endpoint attributes) is relative to the mount, with no leading slash, so the console
// works wherever a host mounts HashPass.
import { apiUrl, createTranslator, initTheme, wsUrl } from './page.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'hashpass.adminToken';

const TEXT = {
  en: {
    title: 'HashPass admin', language: 'Language', theme: 'Theme', 'theme.system': 'System', 'theme.light': 'Light',
    'theme.dark': 'Dark', logout: 'Log out', 'login.title': 'Log in', 'login.token': 'Admin token', 'login.submit': 'Log in',
    'ws.open': 'Live', 'ws.connecting': 'Connecting', 'ws.closed': 'Offline', live: 'Live', 'c.miners': 'Miners',
    'c.connections': 'Connections', 'c.hashrate': 'Network hashrate', 'c.difficulty': 'Difficulty', 'c.miningTime': 'Mining time',
    'c.lastSolve': 'Last / average solve', 'c.sessions': 'Sessions', 'c.bans': 'Banned IPs', 'c.webhook': 'Webhook pending / failed', 'c.unrecorded': 'Wins not recorded', 'c.seed': 'Seed',
    'c.target': 'Target / timeout', 'c.argon2': 'Argon2 (t, m, p)', 'c.workers': 'Workers / max speed', charts: 'Trends',
    'chart.hashrate': 'Network hashrate (H/s)', 'chart.solve': 'Solve times (s)', ops: 'Operations', 'op.reset': 'Reset puzzle',
    'op.kickAll': 'Kick everyone', 'op.clear': 'Clear sessions', 'op.hmac': 'Rotate invite key',
    'op.webhookRetry': 'Retry failed deliveries',
    'confirm.reset': 'Reset the puzzle for everyone? All work on the current puzzle is lost.',
    'confirm.kickAll': 'Disconnect every miner, revoke every session and reset the puzzle?',
    'confirm.clear': 'Revoke every session token and close every miner\'s connection?',
    'confirm.hmac': 'Rotate the invite key? Every earlier invite code stops verifying.',
    'confirm.ban': 'Ban {ip}, revoke its sessions and close its connections?',
    'confirm.unban': 'Unban {ip}? It can connect and mine again.',
    'confirm.webhookRetry': 'Queue the {failed} failed webhook deliveries again, due at once?',
    'confirm.ok': 'Confirm', 'confirm.cancel': 'Cancel', cancelled: '{action}: cancelled, nothing was sent.',
    report: '{action}: {text}', done: 'done', 'announce.close': 'Dismiss',
    'hmac.secret': 'New key in hex (optional; leave empty for a random 256-bit key)',
    settings: 'Settings', 'f.difficulty': 'Difficulty', 'f.value': 'Difficulty',
    'f.min': 'Minimum', 'f.max': 'Maximum', 'f.target': 'Target time', 'f.targetTime': 'Target (s)', 'f.timeout': 'Timeout (s)',
    'f.time': 'Time cost', 'f.memory': 'Memory (KiB)', 'f.parallelism': 'Parallelism', 'f.workers': 'Workers per browser',
    'f.workerCount': 'Worker count', 'f.speed': 'Max nonce speed', 'f.speedValue': 'H/s (0 = off)', apply: 'Apply',
    'f.revert': 'Revert', 'f.was': 'was {value}', 'f.change': '{field}: {from} → {to}', 'f.applyTitle': 'Apply {form}',
    'f.resets': 'Applying resets the puzzle: every miner starts over.', 'f.noReset': 'The puzzle is not reset.',
    'f.unchanged': 'Nothing changed: edit a value first.', 'f.saved': 'saved {values}', 'f.newSeed': 'new seed {seed}',
    miners: 'Miners', 't.ip': 'IP', 't.hashrate': 'Hashrate',
    't.lastSeen': 'Last seen (s)', 't.since': 'Connected (s)', 't.overspeed': 'Overspeed', 't.actions': 'Actions', ban: 'Ban', unban: 'Unban',
    'miners.none': 'No miner has reported a hashrate in the last 10 s.',
    sessions: 'Sessions', 't.token': 'Token', 't.created': 'Created', 't.state': 'State', 'sess.connected': 'Connected',
    'sess.disconnected': 'Disconnected since {time}', 'sess.revoked': 'Revoked', 'sess.none': 'No stored sessions.',
    filter: 'Filter', 'filter.placeholder': 'Filter rows…', 'rows.total': '{total} rows', 'rows.filtered': '{shown} of {total} rows',
    'rows.noMatch': 'No row matches the filter.',
    bans: 'Blacklist', 'ban.ip': 'IP to ban', 'ban.submit': 'Ban and kick', 'ban.none': 'No banned IPs.', 'ban.title': 'Ban {ip}',
    'unban.title': 'Unban {ip}', logs: 'Invite log',
    search: 'Search', searchBtn: 'Search', file: 'File', level: 'Level', 't.time': 'Time', 't.code': 'Invite code',
    't.visitor': 'Visitor', 't.difficulty': 'Difficulty', 't.solve': 'Solve (s)', 't.reason': 'Adjustment', prev: 'Previous',
    next: 'Next', page: 'Page {page} of {pages} ({total})', applogs: 'Application log', 's.total': 'Codes', 's.visitors': 'Visitors',
    's.avg': 'Average solve', 's.median': 'Median solve', 's.distribution': 'By difficulty', yes: 'yes', no: 'no',
    'err.network': 'The server could not be reached.', 't.redeemed': 'Redeemed', 'r.unused': 'Unused',
    'r.partly_used': '{uses} of {max} used', 'r.used': 'Used', 'r.revoked': 'Withdrawn', 'r.by': 'by {who}',
    withdraw: 'Withdraw', 'withdraw.title': 'Withdraw an invite code',
    'confirm.withdraw': 'Withdraw this invite code? Nobody can sign up with it afterwards.',
    allowMore: 'Allow more', 'maxUses.title': 'Allow more accounts', 'maxUses.text': 'This code has signed up {uses} of {max} accounts.',
    'prompt.maxUses': 'How many accounts in all may this code sign up?',
    'maxUses.saved': 'This code now signs up {max} accounts.',
  },
  zh: {
    title: 'HashPass 管理', language: '语言', theme: '主题', 'theme.system': '跟随系统', 'theme.light': '浅色', 'theme.dark': '深色',
    logout: '退出', 'login.title': '登录', 'login.token': '管理员令牌', 'login.submit': '登录', 'ws.open': '实时', 'ws.connecting': '连接中',
    'ws.closed': '离线', live: '实时', 'c.miners': '矿工', 'c.connections': '连接', 'c.hashrate': '全网算力', 'c.difficulty': '难度',
    'c.miningTime': '挖矿时间', 'c.lastSolve': '上次 / 平均解题', 'c.sessions': '会话', 'c.bans': '封禁 IP', 'c.webhook': 'Webhook 待发 / 失败', 'c.unrecorded': '未记录的获胜', 'c.seed': '种子',
    'c.target': '目标 / 超时', 'c.argon2': 'Argon2（t, m, p）', 'c.workers': 'Worker / 最高速度', charts: '趋势',
    'chart.hashrate': '全网算力（H/s）', 'chart.solve': '解题时间（秒）', ops: '操作', 'op.reset': '重置谜题', 'op.kickAll': '踢出所有人',
    'op.clear': '清除会话', 'op.hmac': '轮换邀请码密钥', 'op.webhookRetry': '重试失败的投递',
    'confirm.reset': '为所有人重置谜题？当前谜题上的所有工作都将作废。', 'confirm.kickAll': '断开所有矿工、吊销所有会话并重置谜题？',
    'confirm.clear': '吊销所有会话令牌并关闭所有矿工的连接？', 'confirm.hmac': '轮换邀请码密钥？之前的邀请码将全部失效。',
    'confirm.ban': '封禁 {ip}，吊销其会话并关闭其连接？', 'confirm.unban': '解封 {ip}？它将可以重新连接并挖矿。',
    'confirm.webhookRetry': '将 {failed} 个失败的 Webhook 投递重新排队并立即发送？',
    'confirm.ok': '确认', 'confirm.cancel': '取消', cancelled: '{action}：已取消，未发送任何请求。',
    report: '{action}：{text}', done: '完成', 'announce.close': '关闭',
    'hmac.secret': '新密钥（十六进制，可选；留空则随机生成 256 位密钥）',
    settings: '设置', 'f.difficulty': '难度', 'f.value': '难度', 'f.min': '最小', 'f.max': '最大', 'f.target': '目标时间',
    'f.targetTime': '目标（秒）', 'f.timeout': '超时（秒）', 'f.time': '时间成本', 'f.memory': '内存（KiB）', 'f.parallelism': '并行度',
    'f.workers': '每个浏览器的 Worker', 'f.workerCount': 'Worker 数', 'f.speed': '最高 nonce 速度', 'f.speedValue': 'H/s（0 = 关闭）',
    apply: '应用', 'f.revert': '还原', 'f.was': '原为 {value}', 'f.change': '{field}：{from} → {to}', 'f.applyTitle': '应用“{form}”',
    'f.resets': '应用后谜题将重置，所有矿工重新开始。', 'f.noReset': '谜题不会重置。',
    'f.unchanged': '没有改动：请先修改数值。', 'f.saved': '已保存 {values}', 'f.newSeed': '新种子 {seed}',
    miners: '矿工', 't.ip': 'IP', 't.hashrate': '算力', 't.lastSeen': '上次报告（秒）',
    't.since': '已连接（秒）', 't.overspeed': '超速', 't.actions': '操作', ban: '封禁', unban: '解封',
    'miners.none': '最近 10 秒内没有矿工报告算力。',
    sessions: '会话', 't.token': '令牌', 't.created': '创建时间', 't.state': '状态', 'sess.connected': '已连接',
    'sess.disconnected': '自 {time} 起断开', 'sess.revoked': '已吊销', 'sess.none': '没有保存的会话。',
    filter: '筛选', 'filter.placeholder': '筛选行…', 'rows.total': '共 {total} 行', 'rows.filtered': '{shown} / {total} 行',
    'rows.noMatch': '没有符合筛选条件的行。',
    bans: '黑名单', 'ban.ip': '要封禁的 IP', 'ban.submit': '封禁并踢出', 'ban.none': '没有被封禁的 IP。', 'ban.title': '封禁 {ip}',
    'unban.title': '解封 {ip}', logs: '邀请码日志', search: '搜索', searchBtn: '搜索', file: '文件',
    level: '级别', 't.time': '时间', 't.code': '邀请码', 't.visitor': '访客', 't.difficulty': '难度', 't.solve': '解题（秒）',
    't.reason': '调整', prev: '上一页', next: '下一页', page: '第 {page} / {pages} 页（{total}）', applogs: '应用日志', 's.total': '邀请码数',
    's.visitors': '访客数', 's.avg': '平均解题', 's.median': '解题中位数', 's.distribution': '按难度', yes: '是', no: '否',
    'err.network': '无法连接服务器。', 't.redeemed': '兑换', 'r.unused': '未使用', 'r.partly_used': '已用 {uses} / {max}',
    'r.used': '已使用', 'r.revoked': '已撤回', 'r.by': '使用者：{who}', withdraw: '撤回', 'withdraw.title': '撤回邀请码',
    'confirm.withdraw': '撤回这个邀请码？之后无人能再用它注册。', allowMore: '允许更多', 'maxUses.title': '允许更多账号',
    'maxUses.text': '这个邀请码已注册 {uses} / {max} 个账号。',
    'prompt.maxUses': '这个邀请码一共可以注册多少个账号？', 'maxUses.saved': '这个邀请码现在可以注册 {max} 个账号。',
  },
};

const { t, bind: bindLanguage } = createTranslator(TEXT);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY), ws: null, wsDelay: 1000, charts: {}, logsPage: 1, appPage: 1, timers: [],
  status: null, tables: {},
};

// ---------- talking to the server ----------

// The server's reason for a refusal: its `detail` (or `error`), or the validation messages.
function detail(data) {
  if (data && typeof data.detail === 'string') return data.detail;
  if (data && typeof data.error === 'string') return data.error;
  if (data && Array.isArray(data.detail)) return data.detail.map((d) => d.msg).join('; ');
  return '';
}

// A refusal as the status area shows it: the HTTP status and the server's reason.
function answerText(status, data) {
  if (status === 0) return t('err.network');
  const why = detail(data);
  return why ? `HTTP ${status}: ${why}` : `HTTP ${status}`;
}

async function api(method, path, body) {
  try {
    const response = await fetch(apiUrl(path), {
      method,
      headers: { Authorization: `Bearer ${state.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    return { status: response.status, data };
  } catch {
    return { status: 0, data: { detail: t('err.network') } };
  }
}

// ---------- the status area, the confirmation dialog, operations ----------

// Shows `text` in the status area (role=status, aria-live=polite); `kind` is 'ok', 'error' or ''.
function announce(text, kind = '') {
  const el = $('announce');
  el.textContent = text;
  el.dataset.kind = kind;
}

/**
 * Opens the confirmation dialog: `title` (the action), `text` (what it does), `details` (a list,
 * e.g. the changed values) and optionally one input. Resolves to `{ value }` (the input's value)
 * when confirmed, `null` when cancelled (the Cancel button, Escape, or a click on the backdrop).
 */
function askConfirmation({ title, text = '', details = [], danger = false, confirmLabel, input = null }) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-details').replaceChildren(...details.map((line) => {
    const li = document.createElement('li');
    li.textContent = line;
    return li;
  }));
  const box = $('confirm-input');
  $('confirm-field').classList.toggle('hidden', !input);
  box.disabled = !input;
  if (input) {
    $('confirm-input-label').textContent = input.label;
    box.type = input.type || 'text';
    box.value = input.value ?? '';
    box.required = Boolean(input.required);
    for (const name of ['min', 'max', 'inputMode']) {
      const attr = name.toLowerCase();
      if (input[name] != null) box.setAttribute(attr, String(input[name]));
      else box.removeAttribute(attr);
    }
  }
  const ok = $('confirm-ok');
  ok.textContent = confirmLabel || t('confirm.ok');
  ok.classList.toggle('danger', danger);
  dialog.classList.toggle('danger', danger);
  dialog.returnValue = '';
  dialog.showModal();
  // A destructive action starts on Cancel, so Enter alone never does it.
  (input ? box : danger ? $('confirm-cancel') : ok).focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm' ? { value: box.value } : null), { once: true });
  });
}

function wireConfirmation() {
  const dialog = $('confirm');
  $('confirm-form').addEventListener('submit', (event) => {
    event.preventDefault();
    dialog.close('confirm');
  });
  $('confirm-cancel').addEventListener('click', () => dialog.close('cancel'));
  // A click on the backdrop (the dialog element itself, outside its form) cancels.
  let downOnBackdrop = false;
  dialog.addEventListener('pointerdown', (event) => { downOnBackdrop = event.target === dialog; });
  dialog.addEventListener('click', (event) => {
    if (downOnBackdrop && event.target === dialog) dialog.close('cancel');
    downOnBackdrop = false;
  });
}

// " (new seed …)" when an answer brings one, else ''.
const seedNote = (data) => (data.new_seed ? ` (${t('f.newSeed', { seed: data.new_seed })})` : '');

/**
 * One operation: asks for confirmation, sends `request(inputValue)`, reports the answer in the
 * status area — `okText(data)`, else the server's `message` (and new seed); on a refusal the HTTP
 * status and the server's `detail` — then runs `after(answer, ok)`. Cancelling sends nothing.
 */
async function perform({ label, text, details, danger, input, confirmLabel, request, okText, after }) {
  const confirmed = await askConfirmation({ title: label, text, details, danger, input, confirmLabel: confirmLabel || label });
  if (!confirmed) {
    announce(t('cancelled', { action: label }));
    return null;
  }
  const answer = await request(confirmed.value);
  const ok = answer.status >= 200 && answer.status < 300;
  let said;
  if (!ok) {
    said = answerText(answer.status, answer.data);
  } else if (okText) {
    said = okText(answer.data || {});
  } else {
    said = (typeof answer.data?.message === 'string' ? answer.data.message : t('done')) + seedNote(answer.data || {});
  }
  announce(t('report', { action: label, text: said }), ok ? 'ok' : 'error');
  if (after) await after(answer, ok);
  return { ...answer, ok };
}

async function refreshStatus() {
  const { status, data } = await api('GET', 'api/admin/status');
  if (status === 200) showStatus(data);
}

// ---------- live status ----------

const fmt = (v, digits = 2) => (v == null ? '–' : typeof v === 'number' ? String(Number(v.toFixed(digits))) : String(v));

function showStatus(s) {
  state.status = s;
  $('card-miners').textContent = fmt(s.active_miners);
  $('card-connections').textContent = fmt(s.active_connections);
  $('card-hashrate').textContent = s.total_hashrate == null ? '–' : `${fmt(s.total_hashrate)} H/s`;
  $('card-difficulty').textContent = `${s.difficulty} (${fmt(s.difficulty_float, 3)}; ${s.min_difficulty}–${s.max_difficulty})`;
  $('card-mining-time').textContent = `${fmt(s.mining_time)} s${s.is_mining_active ? ' ●' : ''}`;
  $('card-solve').textContent = `${fmt(s.last_solve_time)} / ${fmt(s.average_solve_time)}`;
  $('card-sessions').textContent = fmt(s.session_count);
  $('card-bans').textContent = fmt(s.banned_ips_count);
  const webhook = s.webhook || {};
  showAlarm('card-webhook', webhook.configured ? `${webhook.pending} / ${webhook.failed}` : '–',
    webhook.failed > 0 || webhook.pending > 0);
  $('webhook-retry').classList.toggle('hidden', !webhook.configured);
  $('webhook-retry').disabled = !(webhook.failed > 0);
  showAlarm('card-unrecorded', fmt(s.wins_not_recorded), s.wins_not_recorded > 0);
  $('card-seed').textContent = (s.current_seed || '').slice(0, 12);
  $('card-target').textContent = `${s.target_time} s / ${s.target_timeout} s`;
  $('card-argon2').textContent = `${s.argon2_time_cost}, ${s.argon2_memory_cost} KiB, ${s.argon2_parallelism}`;
  $('card-workers').textContent = `${s.worker_count} / ${s.max_nonce_speed ? fmt(s.max_nonce_speed) : '–'}`;
  fillSettings(s);
  updateChart('hashrate', s.hashrate_chart_history || [], 'hashrate');
  updateChart('solve', s.solve_time_chart_history || [], 'solve_time');
}

// A figure that is worrying when `alarm` holds (deliveries waiting, wins lost).
function showAlarm(id, text, alarm) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle('warn', Boolean(alarm));
}

function updateChart(name, points, field) {
  const chart = state.charts[name];
  if (!chart) return;
  chart.data.labels = points.map((p) => new Date(p.timestamp * 1000).toLocaleTimeString());
  chart.data.datasets[0].data = points.map((p) => p[field]);
  chart.update('none');
}

function makeCharts() {
  if (!window.Chart || state.charts.hashrate) return;
  const make = (id, label) => new window.Chart($(id), {
    type: 'line',
    data: { labels: [], datasets: [{ label, data: [], borderWidth: 2, pointRadius: 0, tension: 0.25 }] },
    options: { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
  });
  state.charts.hashrate = make('chart-hashrate', 'H/s');
  state.charts.solve = make('chart-solve', 's');
}

function setWsState(name) {
  const el = $('ws-state');
  el.dataset.state = name;
  el.dataset.i18n = `ws.${name}`;
  el.textContent = t(`ws.${name}`);
}

function connectSocket() {
  if (!state.token) return;
  const ws = new WebSocket(wsUrl(`api/admin/ws?token=${encodeURIComponent(state.token)}`));
  state.ws = ws;
  setWsState('connecting');
  ws.onopen = () => {
    state.wsDelay = 1000;
    setWsState('open');
  };
  ws.onmessage = (event) => {
    try {
      const message = JSON.parse(event.data);
      if (message.type === 'STATUS_UPDATE') showStatus(message);
    } catch {
      // ignore non-JSON frames
    }
  };
  ws.onclose = () => {
    setWsState('closed');
    if (state.ws !== ws || !state.token) return;
    setTimeout(connectSocket, state.wsDelay);
    state.wsDelay = Math.min(state.wsDelay * 2, 30000);
  };
}

// ---------- settings forms ----------
//
// Each input names its status field (data-status) and holds the server's value in
// data-current. An input the admin has typed into is marked data-edited: status updates then
// leave its value alone, and while it differs from the current value it is marked changed with
// a "was <current>" hint. Saving sends the changed fields only and takes the server's answer as
// the new values; Revert goes back to the current ones.

const settingForms = () => [...document.querySelectorAll('form.setting')];
const settingInputs = (form) => [...form.querySelectorAll('input[data-status]')];
const fieldLabel = (input) => input.closest('label').querySelector('[data-i18n]').textContent;
const formTitle = (form) => form.querySelector('h3').textContent;

function isChanged(input) {
  if (!input.dataset.edited) return false;
  const value = input.value.trim();
  if (value === '') return false;
  return input.dataset.current === undefined || Number(value) !== Number(input.dataset.current);
}

function updateForm(form) {
  let changed = false;
  let edited = false;
  for (const input of settingInputs(form)) {
    const differs = isChanged(input);
    changed ||= differs;
    edited ||= Boolean(input.dataset.edited);
    const label = input.closest('label');
    input.classList.toggle('changed', differs);
    label.classList.toggle('changed', differs);
    label.querySelector('.was').textContent = differs && input.dataset.current !== undefined
      ? t('f.was', { value: input.dataset.current }) : '';
  }
  form.querySelector('button[type="submit"]').disabled = !changed;
  form.querySelector('[data-action="revert"]').disabled = !edited;
}

// Takes the current values from a status snapshot (login, STATUS_UPDATE, after an operation).
function fillSettings(status) {
  for (const form of settingForms()) {
    for (const input of settingInputs(form)) {
      const value = status[input.dataset.status];
      if (value == null) continue;
      input.dataset.current = String(value);
      if (!input.dataset.edited) input.value = input.dataset.current;
    }
    updateForm(form);
  }
}

// The server's answer to a save: its values become the current ones, and the form shows them.
function settle(form, values) {
  for (const input of settingInputs(form)) {
    if (values[input.name] != null) input.dataset.current = String(values[input.name]);
    delete input.dataset.edited;
    input.value = input.dataset.current ?? '';
  }
  updateForm(form);
}

function savedText(form, data) {
  const values = settingInputs(form)
    .filter((input) => data[input.name] != null)
    .map((input) => `${fieldLabel(input)} = ${data[input.name]}`)
    .join(', ');
  let text = t('f.saved', { values: values || t('done') });
  if (typeof data.message === 'string') text += ` — ${data.message}`;
  return text + seedNote(data);
}

function wireSettingForm(form) {
  const error = form.querySelector('.form-error');
  for (const input of settingInputs(form)) {
    const hint = document.createElement('small');
    hint.className = 'was';
    hint.id = `${form.id}-${input.name}-was`;
    input.closest('label').append(hint);
    input.setAttribute('aria-describedby', hint.id);
    input.addEventListener('input', () => {
      input.dataset.edited = '1';
      updateForm(form);
    });
    // Leaving a field that holds no change (or nothing) gives it back to the server's value.
    input.addEventListener('blur', () => {
      if (!input.dataset.edited || isChanged(input)) return;
      delete input.dataset.edited;
      input.value = input.dataset.current ?? '';
      updateForm(form);
    });
  }
  form.querySelector('[data-action="revert"]').addEventListener('click', () => {
    error.textContent = '';
    settle(form, {});
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const changed = settingInputs(form).filter(isChanged);
    if (!changed.length) {
      error.textContent = t('f.unchanged');
      return;
    }
    error.textContent = '';
    const body = Object.fromEntries(changed.map((input) => [input.name, Number(input.value)]));
    await perform({
      label: t('f.applyTitle', { form: formTitle(form) }),
      text: t('keepsPuzzle' in form.dataset ? 'f.noReset' : 'f.resets'),
      details: changed.map((input) => t('f.change', { field: fieldLabel(input), from: input.dataset.current ?? '–', to: input.value.trim() })),
      confirmLabel: t('apply'),
      request: () => api('POST', form.dataset.endpoint, body),
      okText: (data) => savedText(form, data),
      after: async ({ status, data }, ok) => {
        if (!ok) {
          error.textContent = answerText(status, data);
          return;
        }
        settle(form, data || {});
        await refreshStatus();
      },
    });
  });
}

// ---------- sortable, filterable tables ----------

function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text == null ? '–' : String(text);
  if (cls) td.className = cls;
  row.append(td);
  return td;
}

// A row's button; `action` (data-action) lets a refresh give the focus back to it.
function actionButton(action, label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'secondary small';
  b.dataset.action = action;
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

// Numbers by value, text in natural order (so 127.0.0.9 comes before 127.0.0.10); blanks last.
function compareValues(a, b) {
  const blank = (v) => v == null || v === '';
  if (blank(a) || blank(b)) return blank(a) - blank(b);
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: 'base' });
}

/**
 * The table `<name>-table` with its body `#<name>`, filter box `#<name>-filter` and row count
 * `#<name>-count`. `columns` are `{ key, text(row), sort(row), search?(row), title?(row), cls? }`
 * in the order of the header cells (`th[data-key]`, each with a sort button); `actions(row)` gives
 * the last cell's buttons. Clicking a header sorts by it (again: the other way), aria-sort says
 * how; the filter keeps the rows where every word of it appears in some column. Both hold across
 * `set(rows)`, the periodic refreshes.
 */
function createTable(name, { columns, sort, empty, actions }) {
  const table = $(`${name}-table`);
  const body = $(name);
  const filter = $(`${name}-filter`);
  const count = $(`${name}-count`);
  const view = { rows: [], sort, renders: 0 };
  for (const th of table.querySelectorAll('th[data-key]')) {
    th.querySelector('button.sort').addEventListener('click', () => {
      const again = view.sort && view.sort.key === th.dataset.key && view.sort.dir === 'ascending';
      view.sort = { key: th.dataset.key, dir: again ? 'descending' : 'ascending' };
      render();
    });
  }
  filter.addEventListener('input', render);

  function render() {
    const terms = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = view.rows.map((row, index) => ({ row, index, texts: columns.map((c) => c.text(row)) }));
    if (terms.length) {
      shown = shown.filter(({ row, texts }) => {
        const haystack = [...texts, ...columns.map((c) => (c.search ? c.search(row) : ''))].join('\n').toLowerCase();
        return terms.every((term) => haystack.includes(term));
      });
    }
    const column = view.sort && columns.find((c) => c.key === view.sort.key);
    if (column) {
      const sign = view.sort.dir === 'ascending' ? 1 : -1;
      shown.sort((a, b) => compareValues(column.sort(a.row), column.sort(b.row)) * sign || a.index - b.index);
    }
    for (const th of table.querySelectorAll('th[data-key]')) {
      if (column && th.dataset.key === column.key) th.setAttribute('aria-sort', view.sort.dir);
      else th.removeAttribute('aria-sort');
    }
    // A refresh must not take the keyboard focus away from a row's button.
    const active = document.activeElement;
    const refocus = active && body.contains(active) ? { key: active.closest('tr')?.dataset.key, action: active.dataset.action } : null;
    const rows = shown.map(({ row, texts }) => {
      const tr = document.createElement('tr');
      tr.dataset.key = row.key;
      columns.forEach((c, i) => {
        const td = cell(tr, texts[i], typeof c.cls === 'function' ? c.cls(row) : c.cls);
        td.dataset.col = c.key;
        if (c.title) td.title = c.title(row);
      });
      const td = document.createElement('td');
      td.className = 'row-actions';
      td.append(...actions(row));
      tr.append(td);
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement('tr');
      tr.className = 'empty';
      const td = cell(tr, t(view.rows.length ? 'rows.noMatch' : empty));
      td.colSpan = columns.length + 1;
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    if (refocus?.key && refocus.action) {
      body.querySelector(`tr[data-key="${CSS.escape(refocus.key)}"] [data-action="${CSS.escape(refocus.action)}"]`)?.focus();
    }
    count.textContent = terms.length
      ? t('rows.filtered', { shown: shown.length, total: view.rows.length })
      : t('rows.total', { total: view.rows.length });
    view.renders += 1;
    body.dataset.renders = String(view.renders);
  }

  return {
    set(rows) {
      view.rows = rows;
      render();
    },
    render,
  };
}

// A Unix time in the page's language (the translator sets <html lang>).
const timeOf = (seconds) => (seconds == null ? '–' : new Date(seconds * 1000).toLocaleString(document.documentElement.lang || undefined));

function sessionState(s) {
  if (s.revoked) return t('sess.revoked');
  if (s.is_connected) return t('sess.connected');
  return t('sess.disconnected', { time: timeOf(s.disconnected_at) });
}

function makeTables() {
  const ban = (row) => [actionButton('ban', t('ban'), () => banIp(row.ip))];
  state.tables.miners = createTable('miners', {
    sort: { key: 'hashrate', dir: 'descending' },
    empty: 'miners.none',
    columns: [
      { key: 'ip', text: (m) => m.ip, sort: (m) => m.ip, cls: 'code' },
      { key: 'hashrate', text: (m) => fmt(m.hashrate), sort: (m) => m.hashrate },
      { key: 'last_seen', text: (m) => fmt(m.last_seen, 1), sort: (m) => m.last_seen },
      { key: 'connected_since', text: (m) => fmt(m.connected_since, 0), sort: (m) => m.connected_since },
      { key: 'overspeed', text: (m) => t(m.overspeed ? 'yes' : 'no'), sort: (m) => Number(m.overspeed), cls: (m) => (m.overspeed ? 'warn' : '') },
    ],
    actions: ban,
  });
  state.tables.sessions = createTable('sessions', {
    sort: { key: 'created', dir: 'descending' },
    empty: 'sess.none',
    columns: [
      { key: 'token', text: (s) => s.token_preview, sort: (s) => s.token_preview, cls: 'code' },
      { key: 'ip', text: (s) => s.ip, sort: (s) => s.ip, cls: 'code' },
      {
        key: 'visitor',
        text: (s) => (s.visitor_id ? `${s.visitor_id.slice(0, 12)}…` : '–'),
        search: (s) => s.visitor_id || '',
        title: (s) => s.visitor_id || '',
        sort: (s) => s.visitor_id,
        cls: 'code',
      },
      { key: 'created', text: (s) => timeOf(s.created_at), sort: (s) => s.created_at },
      {
        key: 'state',
        text: sessionState,
        sort: (s) => (s.revoked ? 2 : s.is_connected ? 0 : 1),
        cls: (s) => (s.revoked ? 'muted' : s.is_connected ? 'ok' : ''),
      },
    ],
    actions: ban,
  });
}

// Rows get a key that survives a refresh (the IP and which of that IP's rows), for the focus.
function keyed(rows, keyOf) {
  const seen = new Map();
  return rows.map((row) => {
    const base = keyOf(row);
    const n = (seen.get(base) || 0) + 1;
    seen.set(base, n);
    return { ...row, key: `${base}#${n}` };
  });
}

async function loadMiners() {
  const { status, data } = await api('GET', 'api/admin/miners');
  if (status === 200 && Array.isArray(data)) state.tables.miners.set(keyed(data, (m) => m.ip));
}

async function loadSessions() {
  const { status, data } = await api('GET', 'api/admin/sessions');
  if (status === 200 && Array.isArray(data)) state.tables.sessions.set(keyed(data, (s) => `${s.token_preview} ${s.created_at}`));
}

// Bans (and kicks) an IP after a confirmation; a refusal is also shown under the ban form when
// the ban came from there.
function banIp(ip, fromForm = false) {
  return perform({
    label: t('ban.title', { ip }),
    text: t('confirm.ban', { ip }),
    danger: true,
    confirmLabel: t('ban.submit'),
    request: () => api('POST', 'api/admin/kick', { ip }),
    after: async ({ status, data }, ok) => {
      if (fromForm) $('ban-error').textContent = ok ? '' : answerText(status, data);
      await Promise.all([loadMiners(), loadSessions(), loadBlacklist(), refreshStatus()]);
    },
  });
}

function unbanIp(ip) {
  return perform({
    label: t('unban.title', { ip }),
    text: t('confirm.unban', { ip }),
    confirmLabel: t('unban'),
    request: () => api('POST', 'api/admin/unban', { ip }),
    after: () => Promise.all([loadBlacklist(), refreshStatus()]),
  });
}

async function loadBlacklist() {
  const { status, data } = await api('GET', 'api/admin/blacklist');
  if (status !== 200) return;
  const list = $('blacklist');
  if (!data.length) {
    const li = document.createElement('li');
    li.textContent = t('ban.none');
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(...data.map((ip) => {
    const li = document.createElement('li');
    const span = document.createElement('span');
    span.textContent = ip;
    li.append(span, actionButton('unban', t('unban'), () => unbanIp(ip)));
    li.dataset.ip = ip;
    return li;
  }));
}

function fillFiles(select, files) {
  const current = select.value;
  select.replaceChildren(...files.map((f) => {
    const o = document.createElement('option');
    o.value = f;
    o.textContent = f;
    return o;
  }));
  if (files.includes(current)) select.value = current;
}

async function loadLogs() {
  const form = $('logs-form');
  const q = new URLSearchParams({ page: state.logsPage, per_page: 20, search: form.search.value, file: form.file.value || 'verify.jsonl' });
  const { status, data } = await api('GET', `api/admin/logs?${q}`);
  if (status !== 200) return;
  fillFiles($('logs-file'), data.files);
  $('logs').replaceChildren(...data.records.map((r) => {
    const row = document.createElement('tr');
    cell(row, r.timestamp);
    cell(row, r.invite_code, 'code');
    redemptionCell(row, r);
    cell(row, r.visitor_id, 'code');
    cell(row, r.real_ip, 'code');
    cell(row, r.difficulty);
    cell(row, r.solve_time);
    cell(row, r.adjustment_reason);
    return row;
  }));
  $('logs-page').textContent = t('page', { page: data.page, pages: data.pages, total: data.total });
  $('logs-prev').disabled = state.logsPage <= 1;
  $('logs-next').disabled = state.logsPage >= data.pages;
  const stats = await api('GET', 'api/admin/logs/stats');
  if (stats.status === 200) {
    const s = stats.data;
    const dist = Object.entries(s.difficulty_distribution).map(([d, n]) => `${d}: ${n}`).join(', ') || '–';
    const entries = [['s.total', s.total_codes], ['s.visitors', s.unique_visitors], ['s.avg', s.avg_solve_time], ['s.median', s.median_solve_time], ['s.distribution', dist]];
    $('log-stats').replaceChildren(...entries.map(([key, value]) => {
      const div = document.createElement('div');
      const dt = document.createElement('dt');
      dt.textContent = t(key);
      const dd = document.createElement('dd');
      dd.textContent = value == null ? '–' : String(value);
      div.append(dt, dd);
      return div;
    }));
  }
}

// Whether (and by whom, when) a record's code was redeemed, with buttons to let it sign up more
// accounts and to withdraw it while it still has uses left.
function redemptionCell(row, record) {
  const red = record.redemption;
  const td = cell(row, null, 'redemption');
  if (!red) return;
  td.dataset.state = red.state;
  const label = t(`r.${red.state}`, { uses: red.uses.length, max: red.max_uses });
  const who = red.uses.map((u) => `${u.user_id} (${timeOf(u.used_at)})`).join(', ');
  td.textContent = who ? `${label} ${t('r.by', { who })}` : label;
  const action = (name, text, onClick) => td.append(' ', actionButton(name, text, onClick));
  if (red.state !== 'revoked') {
    action('widen', t('allowMore'), () => perform({
      label: t('maxUses.title'),
      text: t('maxUses.text', { uses: red.uses.length, max: red.max_uses }),
      details: [record.invite_code],
      confirmLabel: t('allowMore'),
      input: {
        label: t('prompt.maxUses'), type: 'number', inputMode: 'numeric', value: String(red.max_uses + 1),
        min: Math.max(1, red.uses.length), max: 10000, required: true,
      },
      request: (value) => api('POST', 'api/admin/invites/max-uses', { invite_code: record.invite_code, max_uses: Number(value) }),
      okText: (data) => t('maxUses.saved', { max: data.invite?.max_uses }),
      after: loadLogs,
    }));
  }
  if (red.remaining > 0) {
    action('withdraw', t('withdraw'), () => perform({
      label: t('withdraw.title'),
      text: t('confirm.withdraw'),
      details: [record.invite_code],
      danger: true,
      confirmLabel: t('withdraw'),
      request: () => api('POST', 'api/admin/invites/revoke', { invite_code: record.invite_code }),
      after: loadLogs,
    }));
  }
}

// A JSON log line (HASHPASS_LOG_FORMAT=json) shown as the text format shows it: time, level,
// target, message, then the other fields as key=value; any other line as it is.
function readableLogLine(line) {
  if (!line.startsWith('{')) return line;
  let record;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  const fields = { ...(record.fields || {}) };
  const message = fields.message ?? '';
  delete fields.message;
  const rest = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return [record.timestamp, String(record.level || '').padStart(5), `${record.target || ''}:`, message, ...rest]
    .filter((part) => part !== undefined && part !== '')
    .join(' ');
}

async function loadAppLogs() {
  const form = $('applogs-form');
  const q = new URLSearchParams({ page: state.appPage, per_page: 100, search: form.search.value, level: form.level.value, file: form.file.value || '' });
  const { status, data } = await api('GET', `api/admin/applogs?${q}`);
  if (status !== 200) return;
  fillFiles($('applogs-file'), data.files);
  $('applog-lines').replaceChildren(...data.lines.map((line) => {
    const li = document.createElement('li');
    li.textContent = readableLogLine(line);
    return li;
  }));
  $('applogs-page').textContent = t('page', { page: data.page, pages: data.pages, total: data.total });
  $('applogs-prev').disabled = state.appPage <= 1;
  $('applogs-next').disabled = state.appPage >= data.pages;
}

// ---------- operations and the other forms ----------

function wireOperations() {
  for (const op of document.querySelectorAll('[data-op]')) {
    op.addEventListener('click', () => {
      const secret = 'secret' in op.dataset;
      perform({
        label: t(op.dataset.i18n),
        text: t(op.dataset.confirm),
        danger: 'danger' in op.dataset,
        input: secret ? { label: t('hmac.secret') } : null,
        request: (value) => api('POST', op.dataset.op, secret && value.trim() ? { hmac_secret: value.trim() } : {}),
        after: () => Promise.all([refreshStatus(), loadMiners(), loadSessions()]),
      });
    });
  }
  $('webhook-retry').addEventListener('click', () => perform({
    label: t('op.webhookRetry'),
    text: t('confirm.webhookRetry', { failed: state.status?.webhook?.failed ?? 0 }),
    request: () => api('POST', 'api/admin/webhooks/retry', {}),
    after: refreshStatus,
  }));
  $('announce-close').addEventListener('click', () => announce(''));
  $('ban-form').addEventListener('submit', (event) => {
    event.preventDefault();
    banIp($('ban-ip').value.trim(), true);
  });
  $('logs-form').addEventListener('submit', (event) => {
    event.preventDefault();
    state.logsPage = 1;
    loadLogs();
  });
  $('logs-prev').addEventListener('click', () => { state.logsPage -= 1; loadLogs(); });
  $('logs-next').addEventListener('click', () => { state.logsPage += 1; loadLogs(); });
  $('applogs-form').addEventListener('submit', (event) => {
    event.preventDefault();
    state.appPage = 1;
    loadAppLogs();
  });
  $('applogs-prev').addEventListener('click', () => { state.appPage -= 1; loadAppLogs(); });
  $('applogs-next').addEventListener('click', () => { state.appPage += 1; loadAppLogs(); });
}

// Text the page builds itself follows a language switch.
function relabel() {
  settingForms().forEach(updateForm);
  Object.values(state.tables).forEach((table) => table.render());
  if (!state.token || $('dashboard').classList.contains('hidden')) return;
  loadBlacklist();
  loadLogs();
  loadAppLogs();
}

// ---------- login ----------

function showDashboard() {
  $('login').classList.add('hidden');
  $('dashboard').classList.remove('hidden');
  $('logout').classList.remove('hidden');
  makeCharts();
  connectSocket();
  loadMiners();
  loadSessions();
  loadBlacklist();
  loadLogs();
  loadAppLogs();
  state.timers.push(
    setInterval(loadMiners, 5000),
    setInterval(loadSessions, 5000),
    setInterval(loadBlacklist, 5000),
    setInterval(loadLogs, 10000),
  );
}

function logout() {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  state.ws?.close();
  state.timers.forEach(clearInterval);
  state.timers = [];
  if ($('confirm').open) $('confirm').close('cancel');
  announce('');
  $('dashboard').classList.add('hidden');
  $('logout').classList.add('hidden');
  $('login').classList.remove('hidden');
  setWsState('closed');
}

async function login(token) {
  state.token = token;
  const { status, data } = await api('GET', 'api/admin/status');
  if (status !== 200) {
    state.token = null;
    $('login-error').textContent = detail(data) || answerText(status, data);
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $('login-error').textContent = '';
  showDashboard();
  showStatus(data);
  return true;
}

function init() {
  bindLanguage($('lang'), relabel);
  initTheme($('theme'));
  wireConfirmation();
  settingForms().forEach(wireSettingForm);
  makeTables();
  wireOperations();
  $('logout').addEventListener('click', logout);
  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = $('token').value;
    $('token').value = '';
    await login(token);
  });
  if (state.token) login(state.token);
}

init();
