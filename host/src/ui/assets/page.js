// What every part of the accounts page shares: the page's state, small DOM
// helpers, and the one way to call the proxy's /ui/api/* (the session's CSRF
// token on every change; a 401 signs the page out). Plain JavaScript modules,
// no build step.

const $ = (id) => document.getElementById(id);

const ui = {
  csrf: null,
  access: null,
  accounts: new Map(),
  rowsEl: new Map(),
  sort: { key: 'state', dir: 1 },
  filter: { text: '', state: '' },
  overview: null,
  policyGen: null,
  chart: null,
  es: null,
  why: null,
  whyEvents: [],
  addFor: null,
  flow: null,
  renderQueued: false,
  view: 'accounts',
  usage: { by: 'key', since: '24h', keys: [], timer: null, loading: false, editing: null },
  servedTimer: null,
};


// Set by app.js: what a 401 from the API does.
const hooks = { signedOut: () => {} };

// ---- small helpers -----------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function show(el, on = true) { el.hidden = !on; }

function rel(ms) {
  if (!ms) return 'never';
  const d = Math.round((ms - Date.now()) / 1000);
  const a = Math.abs(d);
  let t;
  if (a < 5) return d >= 0 ? 'now' : 'just now';
  if (a < 120) t = `${a} s`;
  else if (a < 7200) t = `${Math.round(a / 60)} min`;
  else if (a < 172800) t = `${Math.round(a / 3600)} h`;
  else t = `${Math.round(a / 86400)} d`;
  return d >= 0 ? `in ${t}` : `${t} ago`;
}

function abs(ms) { return ms ? new Date(ms).toLocaleString() : ''; }

// A time that keeps itself fresh (see tick()).
function when(ms, prefix = '') {
  return h('time', { 'data-at': ms || 0, 'data-prefix': prefix, datetime: ms ? new Date(ms).toISOString() : null, title: abs(ms) }, prefix + rel(ms));
}

function toast(text, bad = false) {
  const t = h('div', { class: `toast ${bad ? 'bad' : 'ok'}`, role: bad ? 'alert' : 'status' }, text);
  $('toasts').append(t);
  setTimeout(() => t.remove(), bad ? 9000 : 5000);
}

function result(el, ok, text) {
  el.className = `result ${ok ? 'ok' : 'bad'}`;
  el.textContent = text;
  show(el, true);
}

function pct(f) { return `${Math.round(f * 100)}%`; }

// ---- API ---------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && ui.csrf) headers['x-csrf-token'] = ui.csrf;
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  if (!r.ok) {
    if (r.status === 401 && path !== '/ui/api/session') hooks.signedOut();
    const e = new Error((data && data.error && data.error.message) || `HTTP ${r.status}`);
    e.status = r.status;
    throw e;
  }
  return data;
}

export { $, ui, hooks, h, SVG, s, show, rel, abs, when, toast, result, pct, api };
