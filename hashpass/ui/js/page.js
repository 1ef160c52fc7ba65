// What the miner page and the admin console share: where HashPass is mounted, the theme switch
// and the language switch.

/**
 * The mount directory of HashPass, computed once. Both pages live in it (the miner page at
 * `<mount>/`, the console at `<mount>/admin`), so resolving '.' against the document's base (the
 * page's `<base href="./">`, which a server may rewrite to name the directory) gives the mount
 * whether a host serves HashPass at its root or under a prefix like `/invite`. Every API and
 * socket URL is built from it, so nothing in the pages names the mount point.
 */
export const MOUNT = new URL('.', document.baseURI);

/** The URL of an API path relative to the mount (`apiUrl('api/verify')`). */
export function apiUrl(path) {
  return new URL(path, MOUNT).href;
}

/** The `ws:`/`wss:` URL of a socket path relative to the mount, on the page's own scheme. */
export function wsUrl(path) {
  const url = new URL(path, MOUNT);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

/** Wires a light/dark/system `<select>`, remembered in localStorage. */
export function initTheme(select) {
  select.value = localStorage.getItem('hashpass.theme') || 'system';
  const apply = () => {
    if (select.value === 'system') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = select.value;
  };
  apply();
  select.addEventListener('change', () => {
    localStorage.setItem('hashpass.theme', select.value);
    apply();
  });
}

/**
 * A translator over `dictionary` ({ en: {...}, zh: {...} }): the language is the stored choice,
 * else the browser's. `t(key, vars)` fills `{name}` placeholders; `bind(select, onChange)` wires
 * the language `<select>` and re-renders every `data-i18n` element (and `data-i18n-placeholder`).
 */
export function createTranslator(dictionary) {
  const stored = localStorage.getItem('hashpass.lang');
  let lang = stored && dictionary[stored] ? stored : (navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';
  const t = (key, vars = {}) =>
    (dictionary[lang][key] ?? dictionary.en[key] ?? key).replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
  const apply = () => {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  };
  const bind = (select, onChange) => {
    select.value = lang;
    apply();
    select.addEventListener('change', () => {
      lang = select.value;
      localStorage.setItem('hashpass.lang', lang);
      apply();
      if (onChange) onChange();
    });
  };
  return { t, bind };
}
