// What the miner page and the admin console share: the theme switch and the language switch.

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
