// UI text of the miner page in English and Chinese; the choice is kept in localStorage and
// defaults to the browser's language.
const TEXT = {
  en: {
    title: 'HashPass',
    language: 'Language',
    theme: 'Theme',
    'theme.system': 'System',
    'theme.light': 'Light',
    'theme.dark': 'Dark',
    intro: 'Everyone works on the same puzzle. The first valid solution wins an invite code, and the puzzle starts over for everyone.',
    'state.connecting': 'Connecting',
    'state.connected': 'Connected',
    'state.reconnecting': 'Reconnecting',
    'state.closed': 'Disconnected',
    'result.title': 'You won an invite code',
    'result.timeoutTitle': 'Your best hash won the timed-out round',
    'result.copy': 'Copy',
    'result.copied': 'Copied',
    puzzle: 'Puzzle',
    online: 'Online',
    difficulty: 'Difficulty (bits)',
    expected: 'Expected hashes',
    eta: 'Estimated time',
    lastSolve: 'Last solve',
    avgSolve: 'Average solve',
    mining: 'Mining',
    hashes: 'Hashes tried',
    localRate: 'Your hashrate',
    networkRate: 'Network hashrate',
    workers: 'Workers',
    best: 'Best hash',
    stop: 'Pause',
    start: 'Resume',
    log: 'Log',
    'status.fingerprint': 'Identifying this device…',
    'status.captcha': 'Checking that you are human…',
    'status.connecting': 'Connecting to the server…',
    'status.mining': 'Mining with {n} workers…',
    'status.paused': 'Paused.',
    'status.verifying': 'Found a solution, verifying…',
    'status.won': 'You won! Your invite code is below.',
    'status.lost': 'Someone else solved this puzzle first. Starting over…',
    'status.reset': 'The puzzle was reset. Starting over…',
    'status.timeout': 'Nobody solved the puzzle in time. Submitting your best hash…',
    'status.error': 'Error: {msg}',
    'log.connected': 'Connected.',
    'log.session': 'Session started.',
    'log.reconnect': 'Connection lost, reconnecting in {s} s.',
    'log.puzzle': 'New puzzle {seed}, difficulty {d}.',
    'log.found': 'Found nonce {nonce} ({zeros} leading zero bits).',
    'log.won': 'Invite code received.',
    'log.lost': 'Too late: {msg}',
    'log.fewerWorkers': 'Not enough memory for {n} workers; retrying with {m}.',
    'log.submitted': 'Best hash submitted: {msg}.',
    'log.timeoutCode': 'Timeout reward received ({zeros} leading zero bits).',
    'log.copyFailed': 'Could not copy; select the code and copy it by hand.',
  },
  zh: {
    title: 'HashPass',
    language: '语言',
    theme: '主题',
    'theme.system': '跟随系统',
    'theme.light': '浅色',
    'theme.dark': '深色',
    intro: '所有人解同一道谜题。第一个提交有效答案的人获得邀请码，谜题随即为所有人重置。',
    'state.connecting': '连接中',
    'state.connected': '已连接',
    'state.reconnecting': '重新连接中',
    'state.closed': '已断开',
    'result.title': '你赢得了邀请码',
    'result.timeoutTitle': '超时轮次中你的最佳哈希获胜',
    'result.copy': '复制',
    'result.copied': '已复制',
    puzzle: '谜题',
    online: '在线',
    difficulty: '难度（位）',
    expected: '预计哈希数',
    eta: '预计用时',
    lastSolve: '上次解题',
    avgSolve: '平均解题',
    mining: '挖矿',
    hashes: '已尝试哈希',
    localRate: '你的算力',
    networkRate: '全网算力',
    workers: 'Worker 数',
    best: '最佳哈希',
    stop: '暂停',
    start: '继续',
    log: '日志',
    'status.fingerprint': '正在识别设备…',
    'status.captcha': '正在进行人机验证…',
    'status.connecting': '正在连接服务器…',
    'status.mining': '正在使用 {n} 个 Worker 挖矿…',
    'status.paused': '已暂停。',
    'status.verifying': '找到答案，正在验证…',
    'status.won': '你赢了！邀请码如下。',
    'status.lost': '其他人先解出了这道谜题。重新开始…',
    'status.reset': '谜题已重置。重新开始…',
    'status.timeout': '无人按时解出谜题。正在提交你的最佳哈希…',
    'status.error': '错误：{msg}',
    'log.connected': '已连接。',
    'log.session': '会话已建立。',
    'log.reconnect': '连接断开，{s} 秒后重连。',
    'log.puzzle': '新谜题 {seed}，难度 {d}。',
    'log.found': '找到 nonce {nonce}（{zeros} 个前导零位）。',
    'log.won': '已收到邀请码。',
    'log.lost': '晚了一步：{msg}',
    'log.fewerWorkers': '内存不足以运行 {n} 个 Worker，改用 {m} 个重试。',
    'log.submitted': '已提交最佳哈希：{msg}。',
    'log.timeoutCode': '收到超时奖励（{zeros} 个前导零位）。',
    'log.copyFailed': '无法复制，请手动选择并复制邀请码。',
  },
};

let lang = 'en';

/** Picks the language: stored choice, else the browser's. */
export function initLanguage() {
  const stored = localStorage.getItem('hashpass.lang');
  lang = stored && TEXT[stored] ? stored : (navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';
  apply();
  return lang;
}

/** Switches the language and re-renders every `data-i18n` element. */
export function setLanguage(next) {
  if (!TEXT[next]) return;
  lang = next;
  localStorage.setItem('hashpass.lang', next);
  apply();
}

/** The text for `key` with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = TEXT[lang][key] ?? TEXT.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
}

function apply() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
}
