// The admin console: log in with the admin token (kept in sessionStorage), live cards and charts
// from the admin socket, settings forms, miners, blacklist, invite and application logs, and
// operations. All dynamic text goes through textContent. Every API path (here and in the page's
// data-op and data-endpoint attributes) is relative to the mount, with no leading slash, so the
// console works wherever a host mounts HashPass.
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
    'confirm.reset': 'Reset the puzzle for everyone?', 'confirm.kickAll': 'Disconnect every miner and revoke every session?',
    'confirm.clear': 'Revoke every session token?', 'confirm.hmac': 'Rotate the invite key? Every earlier invite code stops verifying.',
    'confirm.ban': 'Ban {ip} and close its connections?', settings: 'Settings', 'f.difficulty': 'Difficulty', 'f.value': 'Difficulty',
    'f.min': 'Minimum', 'f.max': 'Maximum', 'f.target': 'Target time', 'f.targetTime': 'Target (s)', 'f.timeout': 'Timeout (s)',
    'f.time': 'Time cost', 'f.memory': 'Memory (KiB)', 'f.parallelism': 'Parallelism', 'f.workers': 'Workers per browser',
    'f.workerCount': 'Worker count', 'f.speed': 'Max nonce speed', 'f.speedValue': 'H/s (0 = off)', apply: 'Apply',
    'f.empty': 'Fill in at least one field.', 'f.saved': 'Saved.', miners: 'Miners', 't.hashrate': 'Hashrate',
    't.lastSeen': 'Last seen (s)', 't.since': 'Connected (s)', 't.overspeed': 'Overspeed', ban: 'Ban', unban: 'Unban',
    bans: 'Blacklist', 'ban.ip': 'IP to ban', 'ban.submit': 'Ban and kick', 'ban.none': 'No banned IPs.', logs: 'Invite log',
    search: 'Search', searchBtn: 'Search', file: 'File', level: 'Level', 't.time': 'Time', 't.code': 'Invite code',
    't.visitor': 'Visitor', 't.difficulty': 'Difficulty', 't.solve': 'Solve (s)', 't.reason': 'Adjustment', prev: 'Previous',
    next: 'Next', page: 'Page {page} of {pages} ({total})', applogs: 'Application log', 's.total': 'Codes', 's.visitors': 'Visitors',
    's.avg': 'Average solve', 's.median': 'Median solve', 's.distribution': 'By difficulty', yes: 'yes', no: 'no',
    'err.network': 'The server could not be reached.', 't.redeemed': 'Redeemed', 'r.unused': 'Unused',
    'r.partly_used': '{uses} of {max} used', 'r.used': 'Used', 'r.revoked': 'Withdrawn', 'r.by': 'by {who}',
    withdraw: 'Withdraw', 'confirm.withdraw': 'Withdraw this invite code? Nobody can sign up with it afterwards.',
    allowMore: 'Allow more', 'prompt.maxUses': 'How many accounts in all may this code sign up?',
    'maxUses.saved': 'This code now signs up {max} accounts.',
  },
  zh: {
    title: 'HashPass 管理', language: '语言', theme: '主题', 'theme.system': '跟随系统', 'theme.light': '浅色', 'theme.dark': '深色',
    logout: '退出', 'login.title': '登录', 'login.token': '管理员令牌', 'login.submit': '登录', 'ws.open': '实时', 'ws.connecting': '连接中',
    'ws.closed': '离线', live: '实时', 'c.miners': '矿工', 'c.connections': '连接', 'c.hashrate': '全网算力', 'c.difficulty': '难度',
    'c.miningTime': '挖矿时间', 'c.lastSolve': '上次 / 平均解题', 'c.sessions': '会话', 'c.bans': '封禁 IP', 'c.webhook': 'Webhook 待发 / 失败', 'c.unrecorded': '未记录的获胜', 'c.seed': '种子',
    'c.target': '目标 / 超时', 'c.argon2': 'Argon2（t, m, p）', 'c.workers': 'Worker / 最高速度', charts: '趋势',
    'chart.hashrate': '全网算力（H/s）', 'chart.solve': '解题时间（秒）', ops: '操作', 'op.reset': '重置谜题', 'op.kickAll': '踢出所有人',
    'op.clear': '清除会话', 'op.hmac': '轮换邀请码密钥', 'confirm.reset': '为所有人重置谜题？', 'confirm.kickAll': '断开所有矿工并吊销所有会话？',
    'confirm.clear': '吊销所有会话令牌？', 'confirm.hmac': '轮换邀请码密钥？之前的邀请码将全部失效。', 'confirm.ban': '封禁 {ip} 并关闭其连接？',
    settings: '设置', 'f.difficulty': '难度', 'f.value': '难度', 'f.min': '最小', 'f.max': '最大', 'f.target': '目标时间',
    'f.targetTime': '目标（秒）', 'f.timeout': '超时（秒）', 'f.time': '时间成本', 'f.memory': '内存（KiB）', 'f.parallelism': '并行度',
    'f.workers': '每个浏览器的 Worker', 'f.workerCount': 'Worker 数', 'f.speed': '最高 nonce 速度', 'f.speedValue': 'H/s（0 = 关闭）',
    apply: '应用', 'f.empty': '请至少填写一项。', 'f.saved': '已保存。', miners: '矿工', 't.hashrate': '算力', 't.lastSeen': '上次报告（秒）',
    't.since': '已连接（秒）', 't.overspeed': '超速', ban: '封禁', unban: '解封', bans: '黑名单', 'ban.ip': '要封禁的 IP',
    'ban.submit': '封禁并踢出', 'ban.none': '没有被封禁的 IP。', logs: '邀请码日志', search: '搜索', searchBtn: '搜索', file: '文件',
    level: '级别', 't.time': '时间', 't.code': '邀请码', 't.visitor': '访客', 't.difficulty': '难度', 't.solve': '解题（秒）',
    't.reason': '调整', prev: '上一页', next: '下一页', page: '第 {page} / {pages} 页（{total}）', applogs: '应用日志', 's.total': '邀请码数',
    's.visitors': '访客数', 's.avg': '平均解题', 's.median': '解题中位数', 's.distribution': '按难度', yes: '是', no: '否',
    'err.network': '无法连接服务器。', 't.redeemed': '兑换', 'r.unused': '未使用', 'r.partly_used': '已用 {uses} / {max}',
    'r.used': '已使用', 'r.revoked': '已撤回', 'r.by': '使用者：{who}', withdraw: '撤回',
    'confirm.withdraw': '撤回这个邀请码？之后无人能再用它注册。', allowMore: '允许更多',
    'prompt.maxUses': '这个邀请码一共可以注册多少个账号？', 'maxUses.saved': '这个邀请码现在可以注册 {max} 个账号。',
  },
};

const { t, bind: bindLanguage } = createTranslator(TEXT);

const state = { token: sessionStorage.getItem(TOKEN_KEY), ws: null, wsDelay: 1000, charts: {}, logsPage: 1, appPage: 1, timers: [] };

function announce(text, cls = '') {
  const el = $('announce');
  el.textContent = text;
  el.className = `card ${cls}`;
}

function detail(data, status) {
  if (data && typeof data.detail === 'string') return data.detail;
  if (data && typeof data.error === 'string') return data.error;
  if (data && Array.isArray(data.detail)) return data.detail.map((d) => d.msg).join('; ');
  return `HTTP ${status}`;
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

// ---------- live status ----------

const fmt = (v, digits = 2) => (v == null ? '–' : typeof v === 'number' ? String(Number(v.toFixed(digits))) : String(v));

function showStatus(s) {
  $('card-miners').textContent = fmt(s.active_miners);
  $('card-connections').textContent = fmt(s.active_connections);
  $('card-hashrate').textContent = s.total_hashrate == null ? '–' : `${fmt(s.total_hashrate)} H/s`;
  $('card-difficulty').textContent = `${s.difficulty} (${fmt(s.difficulty_float, 3)}; ${s.min_difficulty}–${s.max_difficulty})`;
  $('card-mining-time').textContent = `${fmt(s.mining_time)} s${s.is_mining_active ? ' ●' : ''}`;
  $('card-solve').textContent = `${fmt(s.last_solve_time)} / ${fmt(s.average_solve_time)}`;
  $('card-sessions').textContent = fmt(s.session_count);
  $('card-bans').textContent = fmt(s.banned_ips_count);
  showAlarm('card-webhook', s.webhook && s.webhook.configured ? `${s.webhook.pending} / ${s.webhook.failed}` : '–',
    s.webhook && (s.webhook.failed > 0 || s.webhook.pending > 0));
  showAlarm('card-unrecorded', fmt(s.wins_not_recorded), s.wins_not_recorded > 0);
  $('card-seed').textContent = (s.current_seed || '').slice(0, 12);
  $('card-target').textContent = `${s.target_time} s / ${s.target_timeout} s`;
  $('card-argon2').textContent = `${s.argon2_time_cost}, ${s.argon2_memory_cost} KiB, ${s.argon2_parallelism}`;
  $('card-workers').textContent = `${s.worker_count} / ${s.max_nonce_speed ? fmt(s.max_nonce_speed) : '–'}`;
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

// ---------- tables ----------

function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text == null ? '–' : String(text);
  if (cls) td.className = cls;
  row.append(td);
  return td;
}

function button(label, onClick, cls = 'secondary') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

async function ban(ip) {
  if (!window.confirm(t('confirm.ban', { ip }))) return;
  const { status, data } = await api('POST', 'api/admin/kick', { ip });
  if (status === 200) {
    announce(data.message, 'ok');
    $('ban-error').textContent = '';
  } else {
    $('ban-error').textContent = detail(data, status);
  }
  await Promise.all([loadMiners(), loadBlacklist()]);
}

async function loadMiners() {
  const { status, data } = await api('GET', 'api/admin/miners');
  if (status !== 200) return;
  const body = $('miners');
  body.replaceChildren(...data.map((m) => {
    const row = document.createElement('tr');
    cell(row, m.ip, 'code');
    cell(row, m.hashrate);
    cell(row, m.last_seen);
    cell(row, m.connected_since);
    cell(row, m.overspeed ? t('yes') : t('no'), m.overspeed ? 'warn' : '');
    row.insertCell().append(button(t('ban'), () => ban(m.ip)));
    return row;
  }));
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
    li.append(span, button(t('unban'), async () => {
      const { status: code, data: answer } = await api('POST', 'api/admin/unban', { ip });
      announce(code === 200 ? answer.message : detail(answer, code), code === 200 ? 'ok' : 'error');
      await loadBlacklist();
    }));
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

// Whether (and by whom, when) a record's code was redeemed, with a button to withdraw it while it
// still has uses left.
function redemptionCell(row, record) {
  const red = record.redemption;
  const td = cell(row, null, 'redemption');
  if (!red) return;
  td.dataset.state = red.state;
  const label = t(`r.${red.state}`, { uses: red.uses.length, max: red.max_uses });
  const who = red.uses.map((u) => `${u.user_id} (${new Date(u.used_at * 1000).toLocaleString()})`).join(', ');
  td.textContent = who ? `${label} ${t('r.by', { who })}` : label;
  const action = (name, label, onClick) => {
    const b = button(label, onClick);
    b.dataset.action = name;
    td.append(' ', b);
  };
  if (red.state !== 'revoked') {
    action('widen', t('allowMore'), async () => {
      const answer = window.prompt(t('prompt.maxUses'), String(red.max_uses + 1));
      if (answer == null) return;
      const { status, data } = await api('POST', 'api/admin/invites/max-uses', { invite_code: record.invite_code, max_uses: Number(answer) });
      announce(status === 200 ? t('maxUses.saved', { max: data.invite.max_uses }) : detail(data, status), status === 200 ? 'ok' : 'error');
      await loadLogs();
    });
  }
  if (red.remaining > 0) {
    action('withdraw', t('withdraw'), async () => {
      if (!window.confirm(t('confirm.withdraw'))) return;
      const { status, data } = await api('POST', 'api/admin/invites/revoke', { invite_code: record.invite_code });
      announce(status === 200 ? data.message : detail(data, status), status === 200 ? 'ok' : 'error');
      await loadLogs();
    });
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

// ---------- forms and operations ----------

function wireSettings() {
  for (const form of document.querySelectorAll('form.setting')) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const error = form.querySelector('.form-error');
      const body = {};
      for (const input of form.querySelectorAll('input')) {
        if (input.value.trim() !== '') body[input.name] = Number(input.value);
      }
      if (!Object.keys(body).length) {
        error.textContent = t('f.empty');
        return;
      }
      const { status, data } = await api('POST', form.dataset.endpoint, body);
      if (status === 200) {
        error.textContent = '';
        form.reset();
        announce(data.message || `${t('f.saved')} ${JSON.stringify(data)}`, 'ok');
      } else {
        error.textContent = detail(data, status);
      }
    });
  }
  for (const op of document.querySelectorAll('[data-op]')) {
    op.addEventListener('click', async () => {
      if (!window.confirm(t(op.dataset.confirm))) return;
      const { status, data } = await api('POST', op.dataset.op, {});
      announce(status === 200 ? data.message : detail(data, status), status === 200 ? 'ok' : 'error');
    });
  }
  $('ban-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    await ban($('ban-ip').value.trim());
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

// ---------- login ----------

function showDashboard() {
  $('login').classList.add('hidden');
  $('dashboard').classList.remove('hidden');
  $('logout').classList.remove('hidden');
  makeCharts();
  connectSocket();
  loadMiners();
  loadBlacklist();
  loadLogs();
  loadAppLogs();
  state.timers.push(setInterval(loadMiners, 5000), setInterval(loadBlacklist, 5000), setInterval(loadLogs, 10000));
}

function logout() {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  state.ws?.close();
  state.timers.forEach(clearInterval);
  state.timers = [];
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
    $('login-error').textContent = detail(data, status);
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $('login-error').textContent = '';
  showDashboard();
  showStatus(data);
  return true;
}

function init() {
  bindLanguage($('lang'));
  initTheme($('theme'));
  wireSettings();
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
