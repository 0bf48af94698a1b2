//! The scripts the browser skill runs in the page. Each is a function called with one
//! JSON argument (see [`call`]); each returns plain JSON.

/// `(function)(argument)`: JSON is valid JavaScript, so the argument needs no escaping.
pub(super) fn call(function: &str, argument: &serde_json::Value) -> String {
    format!("({function})({argument})")
}

/// Run before every document of a tab: no pop-ups or new tabs (they would escape the
/// tab's request interception), links and forms open in the tab itself.
pub(super) const INIT: &str = r#"(() => { try {
  window.open = function () { return null; };
  const self = e => { const t = e.target && e.target.closest && e.target.closest('a[target], area[target], form[target]'); if (t) t.target = '_self'; };
  document.addEventListener('click', self, true);
  document.addEventListener('submit', self, true);
} catch (e) {} })();"#;

/// Readable text of the page: the article (or `main`, or the densest block of
/// paragraphs), without scripts, styles, navigation, footers, asides or hidden
/// elements, whitespace collapsed, at most `max` characters collected.
pub(super) const EXTRACT: &str = r#"function (max) {
  const SKIP = new Set(['SCRIPT','STYLE','NOSCRIPT','TEMPLATE','NAV','FOOTER','ASIDE','SVG','CANVAS','IFRAME','OBJECT','EMBED','HEAD','SELECT','DIALOG','MENU']);
  const SKIP_ROLES = new Set(['navigation','contentinfo','complementary','banner','menu','menubar','dialog']);
  const BLOCK = new Set(['P','DIV','SECTION','ARTICLE','MAIN','HEADER','H1','H2','H3','H4','H5','H6','LI','UL','OL','DL','DT','DD','TR','TABLE','PRE','BLOCKQUOTE','FORM','FIELDSET','FIGURE','FIGCAPTION','ADDRESS','DETAILS','SUMMARY','HR','CAPTION','LEGEND']);
  const info = { title: document.title || '', url: location.href, text: '', total: 0, cut: false };
  const body = document.body;
  if (!body) return info;
  const len = el => (el.textContent || '').length;
  const bodyLen = len(body) || 1;
  let root = null, best = null, bestLen = 0;
  for (const el of document.querySelectorAll('article, main, [role=main]')) {
    const l = len(el); if (l > bestLen) { best = el; bestLen = l; }
  }
  if (best && bestLen >= 0.2 * bodyLen) root = best;
  if (!root) {
    const scores = new Map();
    for (const p of document.querySelectorAll('p, pre, blockquote, td')) {
      const l = (p.textContent || '').trim().length; if (l < 25) continue;
      const a = p.parentElement; if (!a) continue;
      scores.set(a, (scores.get(a) || 0) + l);
      const b = a.parentElement; if (b) scores.set(b, (scores.get(b) || 0) + l / 2);
    }
    let top = null, topScore = 0;
    for (const [el, s] of scores) if (s > topScore) { top = el; topScore = s; }
    root = top && topScore >= 0.3 * bodyLen ? top : body;
  }
  const out = []; let n = 0; let cut = false;
  const push = s => {
    if (cut) return;
    if (n + s.length > max) { out.push(s.slice(0, max - n)); n = max; cut = true; }
    else { out.push(s); n += s.length; }
  };
  const hidden = el => {
    if (el.hidden || el.getAttribute('aria-hidden') === 'true') return true;
    const cs = getComputedStyle(el); return cs.display === 'none' || cs.visibility === 'hidden';
  };
  const stack = [root];
  while (stack.length && !cut) {
    const node = stack.pop();
    if (typeof node === 'string') { push(node); continue; }
    if (node.nodeType === 3) { const t = node.data.replace(/\s+/g, ' '); if (t) push(t); continue; }
    if (node.nodeType !== 1) continue;
    const tag = node.tagName;
    if (SKIP.has(tag)) continue;
    const role = node.getAttribute('role'); if (role && SKIP_ROLES.has(role)) continue;
    if (node !== root && hidden(node)) continue;
    if (tag === 'HEADER' && node !== root && !node.closest('article, main, [role=main]')) continue;
    if (tag === 'BR') { push('\n'); continue; }
    if (tag === 'IMG') { if (node.alt) push(' [image: ' + node.alt + '] '); continue; }
    if (tag === 'INPUT') {
      const ty = (node.type || 'text').toLowerCase(); if (ty === 'hidden') continue;
      const name = node.name || node.id || ty;
      if (ty === 'submit' || ty === 'button' || ty === 'reset') push(' [button: ' + (node.value || name) + '] ');
      else push(' [input ' + name + (node.value && ty !== 'password' ? ' = ' + node.value : '') + '] ');
      continue;
    }
    if (tag === 'TEXTAREA') { push(' [textarea ' + (node.name || node.id || '') + (node.value ? ' = ' + node.value : '') + '] '); continue; }
    const block = BLOCK.has(tag) || tag === 'TD' || tag === 'TH';
    if (block) { push(tag === 'TD' || tag === 'TH' ? ' ' : '\n'); stack.push(tag === 'TD' || tag === 'TH' ? ' ' : '\n'); }
    if (tag === 'BUTTON') { push(' [button: '); stack.push('] '); }
    const kids = node.childNodes;
    for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]);
  }
  info.text = out.join('').split('\n').map(l => l.replace(/\s+/g, ' ').trim()).join('\n').replace(/\n{3,}/g, '\n\n').trim();
  info.cut = cut;
  info.total = cut ? len(root) : info.text.length;
  return info;
}"#;

/// Visible links, in page order: `{links: [[text, href]...], count}` (at most `limit`).
pub(super) const LINKS: &str = r#"function (limit) {
  const links = []; let count = 0;
  for (const a of document.querySelectorAll('a[href], area[href]')) {
    if (!(a.offsetWidth || a.offsetHeight || a.getClientRects().length)) continue;
    const href = a.href; if (!href || href.startsWith('javascript:')) continue;
    let t = (a.innerText || a.getAttribute('aria-label') || a.title || a.alt || '').replace(/\s+/g, ' ').trim();
    if (!t) { const img = a.querySelector && a.querySelector('img[alt]'); if (img) t = img.alt.trim(); }
    count++;
    if (links.length < limit) links.push([t.slice(0, 120), href.slice(0, 500)]);
  }
  return { links, count };
}"#;

/// Click the first element matching `selector`, or the first visible link or button
/// whose text is `text` (exactly, else containing it, case-insensitive):
/// `{count, desc, how}` or `{error}`.
pub(super) const CLICK: &str = r#"function (a) {
  const norm = s => (s || '').replace(/\s+/g, ' ').trim();
  const visible = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const label = el => { const img = el.querySelector && el.querySelector('img[alt]');
    return norm(el.innerText || el.value || el.getAttribute('aria-label') || el.title || (img ? img.alt : '')); };
  let els, how;
  if (a.selector) {
    try { els = Array.from(document.querySelectorAll(a.selector)); }
    catch (e) { return { error: 'invalid CSS selector `' + a.selector + '`' }; }
    const vis = els.filter(visible); if (vis.length) els = vis;
    how = 'selector';
  } else {
    const want = norm(a.text).toLowerCase();
    const cands = Array.from(document.querySelectorAll('a, button, input[type=submit], input[type=button], input[type=reset], [role=button], [role=link], [role=tab], [role=menuitem], summary, label, [onclick]')).filter(visible);
    els = cands.filter(el => label(el).toLowerCase() === want); how = 'exact text';
    if (!els.length) { els = cands.filter(el => label(el).toLowerCase().includes(want)); how = 'text containing'; }
  }
  if (!els.length) return { error: a.selector ? 'no element matches `' + a.selector + '`' : 'no visible link or button with the text `' + a.text + '`' };
  const el = els[0];
  const desc = '<' + el.tagName.toLowerCase() + '> ' + label(el).slice(0, 80) + (el.href ? ' (' + String(el.href).slice(0, 200) + ')' : '');
  try { el.scrollIntoView({ block: 'center' }); } catch (e) {}
  if (el.target) el.target = '_self';
  el.click();
  return { count: els.length, desc, how };
}"#;

/// Focus the first element matching `selector`; `mode` `fill` replaces its value (with
/// `input` and `change` events), `type` puts the caret at the end for keystrokes:
/// `{count, desc}` or `{error}`.
pub(super) const FOCUS_FIELD: &str = r#"function (a) {
  let els;
  try { els = document.querySelectorAll(a.selector); }
  catch (e) { return { error: 'invalid CSS selector `' + a.selector + '`' }; }
  if (!els.length) return { error: 'no element matches `' + a.selector + '`' };
  const el = els[0];
  const field = el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement;
  if (!field && !el.isContentEditable) return { error: '`' + a.selector + '` is a <' + el.tagName.toLowerCase() + '>, not an input' };
  try { el.scrollIntoView({ block: 'center' }); } catch (e) {}
  el.focus();
  if (a.mode === 'fill') {
    if (!field) el.textContent = a.text;
    else { const d = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), 'value');
      if (d && d.set) d.set.call(el, a.text); else el.value = a.text; }
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  } else if (field) { try { const n = el.value.length; el.setSelectionRange(n, n); } catch (e) {} }
  else { const r = document.createRange(); r.selectNodeContents(el); r.collapse(false);
    const s = getSelection(); s.removeAllRanges(); s.addRange(r); }
  return { count: els.length, desc: '<' + el.tagName.toLowerCase() + (el.name ? ' name=' + el.name : '') + '>' };
}"#;

/// Submit the form of the element matching `selector`: `form` when submitted, `enter`
/// when there is no form (the caller presses Enter), `none` when the element is gone.
pub(super) const SUBMIT: &str = r#"function (a) {
  const el = document.querySelector(a.selector); if (!el) return 'none';
  const f = el.form || el.closest('form');
  if (!f) return 'enter';
  if (f.target) f.target = '_self';
  if (f.requestSubmit) f.requestSubmit(); else f.submit();
  return 'form';
}"#;

/// Title and URL of the page.
pub(super) const INFO: &str =
    "function () { return { title: document.title || '', url: location.href }; }";
