// grantpool's accounts page. Plain JavaScript, no build step: it talks to
// the proxy's /ui/api/* endpoints and listens to /ui/api/stream (server-sent
// events). The admin key is sent once, to sign in, and never kept; the
// session lives in an HttpOnly cookie, and changes carry the session's CSRF
// token in x-csrf-token. Nothing here ever holds a token of an account.


import { $, ui, hooks, h, s, show, rel, abs, when, toast, result, pct, api } from './page.js';
import { loadServed, servedLine, showView, stopUsagePolling, wireUsage } from './usage.js';


const STATES = {
  active: { words: 'active', order: 3 },
  cooling_down: { words: 'cooling down', order: 1 },
  off_proxy: { words: 'off the proxy', order: 2 },
  disabled: { words: 'disabled', order: 0 },
};

const KIND_WORDS = {
  added: 'joined', verdict: 'verdict', shadow: 'shadow', disabled: 'disabled', off_proxy: 'off the proxy',
  back_on_proxy: 'back on', cooldown: 'cooldown', cooldown_over: 'cooldown over', recovered: 'recovered', note: 'note',
};


// ---- session -----------------------------------------------------------------

function view(name) {
  for (const v of ['loading', 'signin', 'closed', 'app']) show($(`${v}-view`), v === name);
}

async function boot() {
  wire();
  try {
    onSession(await api('GET', '/ui/api/session'));
  } catch (e) {
    view('closed');
    $('closed-message').textContent = `The proxy did not answer: ${e.message}`;
  }
  setInterval(tick, 1000);
}

function onSession(s) {
  ui.access = s.access;
  if (s.access === 'closed') {
    view('closed');
    $('closed-message').textContent = s.message;
    return;
  }
  if (!s.signed_in) {
    signedOut();
    return;
  }
  ui.csrf = s.csrf;
  view('app');
  show($('sign-out'), s.access === 'key');
  const banner = $('open-banner');
  banner.textContent = s.message || '';
  show(banner, s.access === 'open');
  start();
}

function signedOut() {
  if (ui.es) { ui.es.close(); ui.es = null; }
  stopUsagePolling();
  if (ui.servedTimer) { clearInterval(ui.servedTimer); ui.servedTimer = null; }
  ui.csrf = null;
  show($('live'), false);
  show($('sign-out'), false);
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  view('signin');
  $('admin-key').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const input = $('admin-key');
  const key = input.value;
  input.value = '';
  const err = $('signin-error');
  show(err, false);
  try {
    onSession(await api('POST', '/ui/api/session', { admin_key: key }));
  } catch (e) {
    err.textContent = e.message;
    show(err, true);
    input.focus();
  }
}

async function signOut() {
  try { await api('DELETE', '/ui/api/session'); } catch { /* signed out either way */ }
  signedOut();
}

// ---- live updates --------------------------------------------------------------

async function start() {
  await Promise.all([loadOverview(), loadTraffic()]);
  connect();
  // The tokens each account served in its windows: the server sums them at
  // most every 10 s, so asking more often would show nothing new.
  if (!ui.servedTimer) ui.servedTimer = setInterval(() => { if (ui.view === 'accounts' && !document.hidden) loadServed(); }, 10000);
  showView(location.hash === '#usage' ? 'usage' : 'accounts');
}

function live(text, cls) {
  const el = $('live');
  el.textContent = text;
  el.className = `live ${cls}`;
  show(el, true);
}

function connect() {
  if (ui.es) ui.es.close();
  live('connecting…', 'wait');
  const es = new EventSource('/ui/api/stream');
  ui.es = es;
  es.addEventListener('open', () => live('live', 'on'));
  es.addEventListener('snapshot', (e) => {
    const d = JSON.parse(e.data);
    ui.accounts.clear();
    for (const a of d.accounts) ui.accounts.set(a.id, a);
    renderAll();
    if (ui.why) refreshWhy();
  });
  es.addEventListener('account', (e) => {
    const a = JSON.parse(e.data);
    const before = ui.accounts.get(a.id);
    ui.accounts.set(a.id, a);
    changed(a.id, !before || before.state !== a.state);
  });
  es.addEventListener('removed', (e) => {
    const { id } = JSON.parse(e.data);
    ui.accounts.delete(id);
    const tr = ui.rowsEl.get(id);
    if (tr) { tr.remove(); ui.rowsEl.delete(id); }
    renderTotals();
    if (ui.why === id) { $('why-dialog').close(); toast('The account was removed.'); }
  });
  es.addEventListener('note', (e) => {
    const { id, event } = JSON.parse(e.data);
    if (ui.why === id) {
      ui.whyEvents.push(event);
      renderEvents();
    }
  });
  es.addEventListener('activity', (e) => onActivity(JSON.parse(e.data)));
  es.addEventListener('signed_out', () => signedOut());
  es.addEventListener('error', async () => {
    if (ui.es !== es) return;
    live('reconnecting…', 'wait');
    if (es.readyState === EventSource.CLOSED) {
      // The stream was refused (signed out, or the proxy restarted).
      try {
        const s = await api('GET', '/ui/api/session');
        if (!s.signed_in) { signedOut(); return; }
        ui.csrf = s.csrf;
      } catch { /* the proxy is away: try again */ }
      setTimeout(() => { if (ui.es === es) connect(); }, 2000);
    }
  });
}

function onActivity(t) {
  // The chart's last step grows; a new step starts every step_secs.
  const c = ui.chart;
  if (c) {
    const step = Math.floor(t.t / 1000 / c.step_secs);
    shift(c, step, ['requests', 'errors']);
    c.requests[c.requests.length - 1] += t.requests / c.step_secs;
    c.errors[c.errors.length - 1] += t.errors / c.step_secs;
    drawChart();
  }
  for (const [id, [req, fail, lastMs]] of Object.entries(t.accounts || {})) {
    const a = ui.accounts.get(id);
    if (!a) continue;
    const sp = a.spark;
    shift(sp, Math.floor(t.t / 1000 / sp.bucket_secs), ['requests', 'failures']);
    sp.requests[sp.requests.length - 1] += req;
    sp.failures[sp.failures.length - 1] += fail;
    a.successes += req - fail;
    a.failures += fail;
    if (lastMs) a.last_used = Math.floor(lastMs / 1000);
    patchActivity(a);
  }
  if (ui.policyGen !== null && t.policy !== ui.policyGen) loadOverview();
}

// Move a series' window forward to end at `index`.
function shift(series, index, keys) {
  const by = index - series.end;
  if (by <= 0) return;
  for (const k of keys) {
    const arr = series[k];
    const n = Math.min(by, arr.length);
    arr.splice(0, n);
    for (let i = 0; i < n; i++) arr.push(0);
  }
  series.end = index;
}

function tick() {
  for (const t of document.querySelectorAll('time[data-at]')) {
    const at = Number(t.dataset.at);
    if (at) t.textContent = (t.dataset.prefix || '') + rel(at);
  }
}

// ---- overview ----------------------------------------------------------------

async function loadOverview() {
  try {
    const o = await api('GET', '/ui/api/overview');
    ui.overview = o;
    ui.policyGen = o.policy.generation;
    $('version').textContent = `v${o.version}`;
    $('policy-text').textContent = o.policy.describe;
    $('policy-file').textContent = o.policy.file ? `from ${o.policy.file} (watched: saving it reloads)` : 'the bundled default policy (set `policy` in grantpool.toml to use a file)';
    const r = o.policy.last_reload;
    const el = $('reload-result');
    el.replaceChildren();
    if (r) {
      el.className = `small ${r.ok ? 'ok-text' : 'bad-text'}`;
      if (r.ok) el.append('Last reload: in force ', when(r.at_ms));
      else {
        el.append('Last reload refused ', when(r.at_ms), ' — ',
          h('span', { class: 'mono' }, r.file ? `${r.file}${r.line ? `:${r.line}` : ''}` : ''), ': ',
          h('span', { class: 'reload-error' }, r.error || ''), ' — the running policy stays.');
      }
    }
    const sel = $('add-client');
    const keep = sel.value;
    sel.replaceChildren(...o.clients.map((c) => h('option', { value: c, selected: c === (keep || o.default_client) }, c === o.default_client ? `${c} (default)` : c)));
    const eg = $('add-egress');
    const keepEgress = eg.value;
    eg.replaceChildren(...egressOptions(keepEgress));
    show($('add-egress-field'), egressProxies().length > 0);
    if (ui.why) renderWhy();
  } catch (e) {
    if (e.status !== 401) toast(`Overview: ${e.message}`, true);
  }
}

async function loadTraffic() {
  try {
    ui.chart = await api('GET', '/ui/api/traffic');
    drawChart();
  } catch { /* drawn at the next tick */ }
}

function drawChart() {
  const c = ui.chart;
  const svg = $('chart');
  if (!c) return;
  const n = c.requests.length;
  const max = Math.max(...c.requests, ...c.errors, 0.1);
  const mag = Math.pow(10, Math.floor(Math.log10(max)));
  const top = [1, 2, 5, 10].map((m) => m * mag).find((v) => v >= max);
  const x = (i) => (i / (n - 1)) * 360;
  const y = (v) => 98 - (v / top) * 94;
  const line = (arr) => arr.map((v, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('');
  svg.replaceChildren(
    s('line', { x1: 0, x2: 360, y1: y(top / 2), y2: y(top / 2), class: 'grid' }),
    s('path', { d: `${line(c.requests)}L360,98L0,98Z`, class: 'area req' }),
    s('path', { d: line(c.requests), class: 'stroke req' }),
    s('path', { d: line(c.errors), class: 'stroke err' }),
  );
  $('chart-max').textContent = `${+top.toFixed(2)}/s`;
  // The rates of the last minute (six steps of the chart).
  const last = (arr) => arr.slice(-6).reduce((x, y) => x + y, 0) / Math.min(6, arr.length);
  $('rate-req').textContent = last(c.requests).toFixed(2);
  $('rate-err').textContent = last(c.errors).toFixed(2);
}

// ---- the table ---------------------------------------------------------------

function matches(a) {
  if (ui.filter.state && a.state !== ui.filter.state) return false;
  const q = ui.filter.text.trim().toLowerCase();
  if (!q) return true;
  const hay = [a.email, a.id, a.state_words, a.reason, a.client, a.profile, a.project_id,
    ...Object.entries(a.labels || {}).map(([k, v]) => `${k}=${v}`),
    ...(a.cooldowns || []).map((c) => `${c.model} ${c.reason}`)].filter(Boolean).join(' ').toLowerCase();
  return hay.includes(q);
}

function sortKey(a) {
  switch (ui.sort.key) {
    case 'email': return [a.email.toLowerCase()];
    case 'state': return [STATES[a.state].order, a.email.toLowerCase()];
    case 'last_used': return [-(a.last_used || 0), a.email.toLowerCase()];
    case 'recent': return [-a.spark.requests.reduce((x, y) => x + y, 0), a.email.toLowerCase()];
    case 'client': return [a.client, a.project_id || '', a.email.toLowerCase()];
    default: return [a.email.toLowerCase()];
  }
}

function compare(a, b) {
  const ka = sortKey(a), kb = sortKey(b);
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] < kb[i]) return -ui.sort.dir;
    if (ka[i] > kb[i]) return ui.sort.dir;
  }
  return 0;
}

function renderAll() {
  const tbody = $('rows');
  const list = [...ui.accounts.values()].filter(matches).sort(compare);
  const keep = new Set(list.map((a) => a.id));
  for (const [id, tr] of ui.rowsEl) {
    if (!keep.has(id)) { tr.remove(); ui.rowsEl.delete(id); }
  }
  // Rows move only when out of place (a moved row would replay its flash).
  list.forEach((a, i) => {
    let tr = ui.rowsEl.get(a.id);
    if (!tr) { tr = rowEl(a); ui.rowsEl.set(a.id, tr); } else fillRow(tr, a);
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
  });
  show($('empty'), ui.accounts.size === 0);
  show($('no-match'), ui.accounts.size > 0 && list.length === 0);
  for (const b of document.querySelectorAll('th button[data-sort]')) {
    const on = b.dataset.sort === ui.sort.key;
    b.closest('th').setAttribute('aria-sort', on ? (ui.sort.dir > 0 ? 'ascending' : 'descending') : 'none');
  }
  renderTotals();
}

function queueRender() {
  if (ui.renderQueued) return;
  ui.renderQueued = true;
  requestAnimationFrame(() => { ui.renderQueued = false; renderAll(); });
}

function changed(id, stateChanged) {
  const a = ui.accounts.get(id);
  const known = ui.rowsEl.has(id);
  // Only a change of state flashes the row (quota and token refreshes do not).
  if (!known || stateChanged || !matches(a)) queueRender();
  else patchRow(a, false);
  if (stateChanged) {
    queueRender();
    requestAnimationFrame(() => flash(id));
  }
  renderTotals();
  if (ui.why === id) renderWhy();
}

function flash(id) {
  const tr = ui.rowsEl.get(id);
  if (!tr) return;
  tr.classList.remove('flash');
  void tr.offsetWidth;
  tr.classList.add('flash');
}

function patchRow(a, doFlash) {
  const tr = ui.rowsEl.get(a.id);
  if (!tr) return;
  fillRow(tr, a);
  if (doFlash) flash(a.id);
}

function rowEl(a) {
  const tr = h('tr', {});
  tr.addEventListener('animationend', () => tr.classList.remove('flash'));
  fillRow(tr, a);
  return tr;
}

function stateBadge(a) {
  const badge = h('span', { class: `state s-${a.state}` }, a.state_words);
  // Google's own refusal (a ban, a licence, a retired client) stands apart
  // from an account taken off by hand or by quota protection.
  return a.standing ? [badge, ' ', h('span', { class: 'standing' }, a.standing)] : badge;
}

// A reason as text, its https addresses as links (the appeal or verify page).
function withLinks(text) {
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/https:\/\/[^\s"'<>)]+/g)) {
    const url = m[0].replace(/[.,;:]+$/, '');
    parts.push(text.slice(last, m.index));
    parts.push(h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, url));
    last = m.index + url.length;
  }
  parts.push(text.slice(last));
  return parts;
}

function stateDetail(a) {
  const out = [];
  if (a.reason) out.push(h('div', { class: 'reason', title: a.reason }, withLinks(a.reason)));
  if (a.state === 'disabled' || a.state === 'off_proxy') {
    if (a.since) out.push(h('div', { class: 'muted small' }, when(a.since * 1000, 'set ')));
  }
  if (a.until_ms) out.push(h('div', { class: 'muted small' }, 'all models, ', when(a.until_ms, 'ends '), h('span', { class: 'abs' }, ` (${new Date(a.until_ms).toLocaleTimeString()})`)));
  for (const c of a.cooldowns || []) {
    out.push(h('div', { class: 'small cool', title: c.reason }, h('span', { class: 'mono' }, c.model), ', ', when(c.until_ms, 'ends '), h('span', { class: 'muted' }, ` · ${c.reason}`)));
  }
  return out;
}

function spark(a) {
  const sp = a.spark;
  const n = sp.requests.length;
  const max = Math.max(1, ...sp.requests);
  const svg = s('svg', { viewBox: `0 0 ${n * 3} 20`, class: 'spark', role: 'img', 'aria-label': 'requests per minute, last 30 minutes' });
  for (let i = 0; i < n; i++) {
    const r = sp.requests[i], f = sp.failures[i];
    if (r) {
      const hgt = Math.max(1.5, (r / max) * 19);
      svg.append(s('rect', { x: i * 3, y: 20 - hgt, width: 2.2, height: hgt, class: 'ok' }));
    }
    if (f) {
      const hf = Math.max(1.5, (f / max) * 19);
      svg.append(s('rect', { x: i * 3, y: 20 - hf, width: 2.2, height: hf, class: 'bad' }));
    }
  }
  const total = sp.requests.reduce((x, y) => x + y, 0);
  const failed = sp.failures.reduce((x, y) => x + y, 0);
  return h('div', { class: 'recent' }, svg,
    h('span', { class: 'small' }, `${total} req`, failed ? h('span', { class: 'bad-text' }, ` · ${failed} failed`) : null));
}

function quotaBars(a, limit) {
  const list = [...(a.quota || [])].sort((x, y) => x.remaining_fraction - y.remaining_fraction);
  if (!list.length) return (a.windows || []).length ? [] : [h('span', { class: 'muted small' }, 'not fetched')];
  const shown = limit ? list.slice(0, limit) : list;
  const out = shown.map((q) => {
    const fill = h('i', {});
    fill.style.width = pct(Math.max(0, Math.min(1, q.remaining_fraction)));
    const level = q.remaining_fraction < 0.1 ? 'low' : q.remaining_fraction < 0.5 ? 'mid' : 'high';
    return h('div', { class: 'quota', title: `${q.model}: ${pct(q.remaining_fraction)} left${q.reset_at ? `, resets ${abs(q.reset_at * 1000)}` : ''}` },
      h('span', { class: 'qm mono' }, q.model),
      h('span', { class: `bar ${level}` }, fill),
      h('span', { class: 'qp' }, pct(q.remaining_fraction)),
      q.reset_at ? h('span', { class: 'qr muted' }, when(q.reset_at * 1000, 'resets ')) : null);
  });
  if (limit && list.length > limit) out.push(h('span', { class: 'muted small' }, `+${list.length - limit} more (Why)`));
  return out;
}

// Google's 5-hour and weekly windows: one small bar per bucket, with its reset.
function windowLabel(w) {
  const g = (w.group || w.bucket || '').toLowerCase();
  const family = g.includes('gemini') ? 'Gemini' : (g.includes('claude') || g.includes('gpt') || w.bucket.startsWith('3p')) ? 'Claude/GPT' : (w.group || w.bucket);
  const span = w.window === 'weekly' ? 'week' : w.window || 'window';
  return `${family} ${span}`;
}

function windowBars(a) {
  return (a.windows || []).map((w) => {
    const f = w.remaining_fraction;
    const known = typeof f === 'number';
    const fill = h('i', {});
    fill.style.width = known ? pct(Math.max(0, Math.min(1, f))) : '0%';
    const level = w.exhausted || (known && f < 0.1) ? 'low' : known && f < 0.5 ? 'mid' : 'high';
    const left = w.exhausted ? 'used up' : known ? pct(f) : (w.remaining_amount ? `${w.remaining_amount} left` : '?');
    const title = `${w.bucket} (${w.group || 'quota window'}): ${left}${w.reset_at ? `, resets ${abs(w.reset_at * 1000)}` : ''}`;
    return h('div', { class: `quota window${w.exhausted ? ' used-up' : ''}`, title },
      h('span', { class: 'qm' }, windowLabel(w)),
      h('span', { class: `bar ${level}` }, fill),
      h('span', { class: 'qp' }, w.exhausted ? '0%' : known ? pct(f) : '?'),
      w.reset_at ? h('span', { class: 'qr muted' }, when(w.reset_at * 1000, 'resets ')) : null);
  });
}

function labelChips(a) {
  const entries = Object.entries(a.labels || {});
  if (!entries.length) return [h('span', { class: 'muted small' }, '—')];
  return entries.map(([k, v]) => h('span', { class: 'chip small' }, `${k} ${v}`));
}

function primaryAction(a) {
  if (a.state === 'disabled') return h('button', { type: 'button', class: 'small primary', onclick: () => openAdd(a) }, 'Re-add…');
  if (a.state === 'off_proxy') return h('button', { type: 'button', class: 'small', onclick: () => setProxy(a, true) }, 'Put back');
  return h('button', { type: 'button', class: 'small ghost', onclick: () => setProxy(a, false) }, 'Take off');
}

function fillRow(tr, a) {
  tr.dataset.id = a.id;
  tr.dataset.state = a.state;
  tr.className = `row r-${a.state}${tr.classList.contains('flash') ? ' flash' : ''}`;
  tr.replaceChildren(
    h('td', { class: 'who' }, h('div', { class: 'email' }, a.email), h('div', { class: 'muted small mono', title: a.id }, a.id.slice(0, 12))),
    h('td', { class: 'st' }, stateBadge(a), ...stateDetail(a)),
    lastUsedCell(a),
    h('td', {}, spark(a)),
    // With the four window bars, two model bars (the rest under Why).
    h('td', { class: 'quotas' }, ...windowBars(a), servedLine(a), ...quotaBars(a, (a.windows || []).length ? 2 : 3)),
    h('td', { class: 'small' }, h('div', {}, a.client, a.profile !== a.client ? h('span', { class: 'muted' }, ` (${a.profile})`) : null),
      h('div', { class: 'muted mono' }, a.project_id || 'no project yet'),
      a.egress ? h('div', { class: 'muted', title: a.egress.error || a.egress.endpoint },
        `via ${a.egress.name}`, a.egress.healthy ? null : h('span', { class: 'bad-text' }, ' (unreachable)')) : null),
    h('td', { class: 'labels' }, ...labelChips(a)),
    h('td', { class: 'acts' },
      h('button', { type: 'button', class: 'small', 'aria-label': `Why: ${a.email}`, onclick: () => openWhy(a.id) }, 'Why'),
      primaryAction(a)),
  );
}

function lastUsedCell(a) {
  return h('td', { class: 'small' }, a.last_used ? when(a.last_used * 1000) : h('span', { class: 'muted' }, 'never'),
    a.in_flight ? h('div', { class: 'muted small' }, `${a.in_flight} in flight`) : null);
}

// Only the traffic cells change once a second (buttons stay put under the pointer).
function patchActivity(a) {
  const tr = ui.rowsEl.get(a.id);
  if (!tr || tr.children.length < 4) return;
  tr.children[2].replaceWith(lastUsedCell(a));
  tr.children[3].replaceChildren(spark(a));
}

function renderTotals() {
  const counts = { active: 0, disabled: 0, off_proxy: 0, cooling_down: 0 };
  for (const a of ui.accounts.values()) counts[a.state] += 1;
  $('total-accounts').textContent = ui.accounts.size;
  $('total-word').textContent = ui.accounts.size === 1 ? 'account' : 'accounts';
  const box = $('totals');
  box.replaceChildren(...['active', 'cooling_down', 'off_proxy', 'disabled'].map((st) =>
    h('button', {
      type: 'button', class: `chip s-${st}${ui.filter.state === st ? ' on' : ''}`, 'aria-pressed': ui.filter.state === st ? 'true' : 'false',
      onclick: () => { ui.filter.state = ui.filter.state === st ? '' : st; $('filter-state').value = ui.filter.state; renderAll(); },
    }, h('b', {}, counts[st]), ` ${STATES[st].words}`)));
}

// ---- actions -----------------------------------------------------------------

// The proxies an account may pick ([egress.proxies]: names and health only).
function egressProxies() {
  return (ui.overview && ui.overview.egress && ui.overview.egress.proxies) || [];
}

function healthWords(p) {
  if (!p.checked_at && p.healthy) return 'not checked yet';
  return p.healthy ? 'reachable' : 'unreachable';
}

// "pool default" and each configured proxy, with its health; `chosen` selected.
function egressOptions(chosen) {
  const d = ui.overview && ui.overview.egress && ui.overview.egress.default;
  const opts = [h('option', { value: '', selected: !chosen }, `pool default (${d ? `via ${d.name}` : 'direct'})`)];
  for (const p of egressProxies()) {
    opts.push(h('option', { value: p.name, selected: p.name === chosen }, `${p.name} (${healthWords(p)})`));
  }
  // A name the record holds but the configuration lost: shown, not offered.
  if (chosen && !egressProxies().some((p) => p.name === chosen)) {
    opts.push(h('option', { value: chosen, selected: true, disabled: true }, `${chosen} (not configured)`));
  }
  return opts;
}

async function setEgress(id, name) {
  const a = ui.accounts.get(id);
  const who = a ? a.email : id;
  const note = $('why-egress-note');
  note.textContent = 'Saving…';
  try {
    const r = await api('POST', `/ui/api/accounts/${encodeURIComponent(id)}/egress`, { egress: name || null });
    if (r.account) { ui.accounts.set(r.account.id, r.account); changed(r.account.id, true); }
    note.textContent = 'Saved: the next call goes this way.';
    toast(r.message);
  } catch (e) {
    note.textContent = '';
    toast(`${who}: ${e.message}`, true);
    if (ui.why === id) renderWhy();
  }
}

async function setProxy(a, on) {
  try {
    const r = await api('POST', `/ui/api/accounts/${encodeURIComponent(a.id)}/${on ? 'on' : 'off'}`);
    if (r.account) { ui.accounts.set(r.account.id, r.account); changed(r.account.id, true); }
    toast(on ? `${a.email} is back on the proxy${r.note ? ` — ${r.note}` : ''}` : `${a.email} is off the proxy`);
  } catch (e) {
    toast(`${a.email}: ${e.message}`, true);
  }
}

function confirmRemove(a) {
  const d = $('confirm-dialog');
  $('confirm-title').textContent = 'Remove the account?';
  $('confirm-ok').textContent = 'Remove';
  $('confirm-text').textContent = `Remove ${a.email} from the pool? Its account file is deleted; adding it again takes a refresh token or a Google sign-in.`;
  $('confirm-ok').onclick = async () => {
    d.close();
    try {
      const r = await api('DELETE', `/ui/api/accounts/${encodeURIComponent(a.id)}`);
      toast(r.message);
    } catch (e) {
      toast(`${a.email}: ${e.message}`, true);
    }
  };
  d.showModal();
  $('confirm-cancel').focus();
}

function openLabels(a) {
  const d = $('labels-dialog');
  $('labels-for').textContent = a.email;
  $('label-weight').value = a.labels.weight || '';
  $('label-tier').value = a.labels.tier || '';
  $('label-priority').value = a.labels.priority || '';
  show($('labels-result'), false);
  d.dataset.id = a.id;
  d.showModal();
}

async function saveLabels(ev) {
  ev.preventDefault();
  const d = $('labels-dialog');
  const v = (id) => $(id).value.trim() || null;
  try {
    const r = await api('POST', `/ui/api/accounts/${encodeURIComponent(d.dataset.id)}/labels`, {
      labels: { weight: v('label-weight'), tier: v('label-tier'), priority: v('label-priority') },
    });
    if (r.account) { ui.accounts.set(r.account.id, r.account); changed(r.account.id, false); }
    d.close();
    toast('Labels saved');
  } catch (e) {
    result($('labels-result'), false, e.message);
  }
}

async function reload() {
  const btn = $('reload');
  btn.disabled = true;
  try {
    const r = await api('POST', '/ui/api/reload');
    toast(r.message);
  } catch (e) {
    toast(`Reload refused: ${e.message}`, true);
  } finally {
    btn.disabled = false;
    loadOverview();
  }
}

// ---- add / re-add --------------------------------------------------------------

function openAdd(a) {
  ui.addFor = a ? a.email : null;
  if (egressProxies().length) loadOverview(); // the proxies' health, fresh
  const note = $('add-for');
  if (a) {
    note.textContent = `Re-add ${a.email}: paste a new refresh token of this account, or sign in with Google as ${a.email}. Its history and labels stay.`;
    const sel = $('add-client');
    if ([...sel.options].some((o) => o.value === a.client)) sel.value = a.client;
  }
  show(note, !!a);
  $('add-egress').value = (a && a.egress_choice) || '';
  $('add-title').textContent = a ? 'Re-add an account' : 'Add an account';
  show($('add-result'), false);
  $('refresh-token').value = '';
  resetFlow();
  tab('token');
  $('add-dialog').showModal();
  $('refresh-token').focus();
}

function tab(which) {
  const token = which === 'token';
  $('tab-token').setAttribute('aria-selected', token ? 'true' : 'false');
  $('tab-google').setAttribute('aria-selected', token ? 'false' : 'true');
  show($('add-form'), token);
  show($('pane-google'), !token);
}

async function addToken(ev) {
  ev.preventDefault();
  const area = $('refresh-token');
  const token = area.value.trim();
  area.value = '';
  const out = $('add-result');
  if (!token) { result(out, false, 'Paste a refresh token first (it starts with 1//).'); return; }
  result(out, true, 'Asking Google…');
  out.className = 'result wait';
  try {
    const r = await api('POST', '/ui/api/accounts', { refresh_token: token, client: $('add-client').value || null, email: ui.addFor, egress: $('add-egress').value || null });
    result(out, true, r.message);
    if (r.account) { ui.accounts.set(r.account.id, r.account); changed(r.account.id, true); }
  } catch (e) {
    result(out, false, e.message);
  }
}

function resetFlow() {
  ui.flow = null;
  show($('google-steps'), false);
  $('redirect-url').value = '';
}

async function startGoogle() {
  const out = $('add-result');
  show(out, false);
  try {
    const r = await api('POST', '/ui/api/signin', { client: $('add-client').value || null, email: ui.addFor, egress: $('add-egress').value || null });
    ui.flow = r.state;
    const link = $('google-link');
    link.href = r.url;
    $('google-where').textContent = r.same_machine
      ? `Google sends you back to this proxy (${r.redirect_uri}); this dialog updates by itself.`
      : `This browser is not on the proxy's machine: after you sign in, Google sends the browser to ${r.redirect_uri}, which will not load here. Copy that whole address from the address bar and paste it below.`;
    show($('google-steps'), true);
    link.focus();
    pollFlow(r.state);
  } catch (e) {
    result(out, false, e.message);
  }
}

async function pollFlow(state) {
  while (ui.flow === state && $('add-dialog').open) {
    await new Promise((r) => setTimeout(r, 1200));
    if (ui.flow !== state) return;
    try {
      const st = await api('GET', `/ui/api/signin/${encodeURIComponent(state)}`);
      if (st.stage === 'done') {
        result($('add-result'), st.ok, st.message);
        ui.flow = null;
        return;
      }
      if (st.stage === 'unknown') {
        result($('add-result'), false, 'The sign-in expired (they wait 10 minutes): start again.');
        ui.flow = null;
        return;
      }
    } catch { /* try again */ }
  }
}

async function pasteRedirect(ev) {
  ev.preventDefault();
  const url = $('redirect-url').value.trim();
  const out = $('add-result');
  if (!ui.flow) { result(out, false, 'Start a Google sign-in first.'); return; }
  try {
    const state = ui.flow;
    const r = await api('POST', `/ui/api/signin/${encodeURIComponent(state)}`, { url });
    ui.flow = null;
    result(out, true, r.message);
    $('redirect-url').value = '';
  } catch (e) {
    result(out, false, e.message);
  }
}

// ---- the why panel -------------------------------------------------------------

async function openWhy(id) {
  ui.why = id;
  $('why-egress-note').textContent = '';
  if (egressProxies().length) loadOverview(); // the proxies' health, fresh
  ui.whyEvents = [];
  renderWhy();
  $('why-dialog').showModal();
  await refreshWhy();
}

async function refreshWhy() {
  const id = ui.why;
  try {
    const r = await api('GET', `/ui/api/accounts/${encodeURIComponent(id)}/events`);
    if (ui.why !== id) return;
    ui.whyEvents = r.events;
    renderEvents();
  } catch (e) {
    if (e.status === 404) $('why-dialog').close();
  }
}

function renderWhy() {
  const a = ui.accounts.get(ui.why);
  if (!a) return;
  $('why-title').textContent = a.email;
  $('why-sub').textContent = a.id;
  $('why-state').replaceChildren(...[stateBadge(a)].flat(), ...stateDetail(a));
  const acts = [];
  if (a.state === 'disabled') acts.push(h('button', { type: 'button', class: 'primary', onclick: () => { $('why-dialog').close(); openAdd(a); } }, 'Re-add with a new token…'));
  if (a.state === 'off_proxy') acts.push(h('button', { type: 'button', onclick: () => setProxy(a, true) }, 'Put back on the proxy'));
  else acts.push(h('button', { type: 'button', onclick: () => setProxy(a, false) }, 'Take off the proxy'));
  acts.push(h('button', { type: 'button', onclick: () => openLabels(a) }, 'Edit labels…'));
  acts.push(h('button', { type: 'button', class: 'danger', onclick: () => confirmRemove(a) }, 'Remove…'));
  $('why-actions').replaceChildren(...acts);
  const eg = $('why-egress');
  // Not rebuilt under the pointer (rows refresh while the list is open).
  if (document.activeElement !== eg) {
    eg.replaceChildren(...egressOptions(a.egress_choice || ''));
    eg.dataset.id = a.id;
  }
  show($('why-egress-field'), egressProxies().length > 0 || !!a.egress_choice);
  const fact = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
  $('why-facts').replaceChildren(
    ...fact('OAuth client', `${a.client} (profile ${a.profile})`),
    ...fact('Project', a.project_id || 'not known yet (found on first use)'),
    ...fact('Egress proxy', a.egress ? `${a.egress.name} (${a.egress.endpoint || 'not configured'}): ${a.egress.healthy ? 'reachable' : 'unreachable' + (a.egress.error ? ': ' + a.egress.error : '')}` : 'direct'),
    ...fact('Last used', a.last_used ? when(a.last_used * 1000) : 'never'),
    ...fact('Requests', `${a.successes + a.failures} since start, ${a.failures} failed, ${a.in_flight} in flight`),
    ...fact('Labels', Object.keys(a.labels).length ? Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(', ') : 'none'),
  );
  $('why-quota').replaceChildren(...windowBars(a), ...quotaBars(a, 0));
}

function renderEvents() {
  const list = $('why-events');
  const evs = [...ui.whyEvents].reverse();
  if (!evs.length) {
    list.replaceChildren(h('li', { class: 'muted' }, 'Nothing happened to this account since the proxy started.'));
    return;
  }
  list.replaceChildren(...evs.map((e) => h('li', { class: `ev k-${e.kind}` },
    h('div', { class: 'ev-head' },
      h('span', { class: `kind k-${e.kind}` }, KIND_WORDS[e.kind] || e.kind),
      e.source ? h('span', { class: 'chip small', title: 'the classifier that decided' }, `by ${e.source}`) : null,
      when(e.at_ms)),
    h('div', { class: 'ev-text' }, e.text),
    e.detail ? h('div', { class: 'ev-detail mono small' }, e.detail) : null)));
}

// ---- wiring ------------------------------------------------------------------

function wire() {
  $('signin-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('open-add').addEventListener('click', () => openAdd(null));
  $('add-form').addEventListener('submit', addToken);
  $('tab-token').addEventListener('click', () => tab('token'));
  $('tab-google').addEventListener('click', () => tab('google'));
  $('google-start').addEventListener('click', startGoogle);
  $('paste-form').addEventListener('submit', pasteRedirect);
  $('labels-form').addEventListener('submit', saveLabels);
  $('why-egress').addEventListener('change', (e) => setEgress(e.target.dataset.id, e.target.value));
  $('confirm-cancel').addEventListener('click', () => $('confirm-dialog').close());
  $('reload').addEventListener('click', reload);
  $('why-dialog').addEventListener('close', () => { ui.why = null; });
  $('add-dialog').addEventListener('close', () => { ui.flow = null; $('refresh-token').value = ''; });
  for (const b of document.querySelectorAll('[data-close]')) b.addEventListener('click', () => b.closest('dialog').close());
  wireUsage();
  $('filter-text').addEventListener('input', (e) => { ui.filter.text = e.target.value; renderAll(); });
  $('filter-state').addEventListener('change', (e) => { ui.filter.state = e.target.value; renderAll(); });
  for (const b of document.querySelectorAll('th button[data-sort]')) {
    b.addEventListener('click', () => {
      const key = b.dataset.sort;
      ui.sort = { key, dir: ui.sort.key === key ? -ui.sort.dir : 1 };
      renderAll();
    });
  }
}

hooks.signedOut = signedOut;
boot();
