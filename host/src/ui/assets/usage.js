// The Usage view of the accounts page: tokens and requests over time, the
// named keys with their limits and today's use, and making (shown once),
// editing and revoking keys; and the tokens each account served in its
// current quota windows, shown in the accounts table.

import { $, ui, h, s, show, abs, when, toast, result, api } from './page.js';

const PERIODS = {
  // hours per bar, bars
  '24h': { step: 1, n: 24, words: 'last 24 hours', from: '24 h ago', stepWords: 'per hour' },
  '7d': { step: 6, n: 28, words: 'last 7 days', from: '7 days ago', stepWords: 'per 6 hours' },
  '30d': { step: 24, n: 30, words: 'last 30 days', from: '30 days ago', stepWords: 'per day (UTC)' },
};
const TOP = 5;
const HOUR = 3600 * 1000;

function showView(name) {
  ui.view = name;
  const usage = name === 'usage';
  $('view-accounts').setAttribute('aria-selected', usage ? 'false' : 'true');
  $('view-usage').setAttribute('aria-selected', usage ? 'true' : 'false');
  show($('accounts-view'), !usage);
  show($('usage-view'), usage);
  const hash = usage ? '#usage' : '';
  if (location.hash !== hash) history.replaceState(null, '', location.pathname + hash);
  if (usage) startUsagePolling(); else { stopUsagePolling(); loadServed(); }
}

// Poll while the view is visible (the log is written in batches, so a
// push per request would show nothing sooner).
function startUsagePolling() {
  loadUsage();
  if (!ui.usage.timer) ui.usage.timer = setInterval(() => { if (!document.hidden) loadUsage(); }, 4000);
}

function stopUsagePolling() {
  if (ui.usage.timer) { clearInterval(ui.usage.timer); ui.usage.timer = null; }
}

function compact(n) {
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toFixed(a >= 1e10 ? 0 : 1)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e3) return `${+(n / 1e3).toFixed(a >= 1e4 ? 0 : 1)}k`;
  return `${Math.round(n)}`;
}

function num(n) { return (n || 0).toLocaleString(); }

// A group's name in words: an account's email, an unnamed key, …
function groupName(by, g) {
  if (by === 'account') {
    if (!g) return '(no account served)';
    const a = ui.accounts.get(g);
    return a ? a.email : g;
  }
  if (by === 'key') return g || '(no named key)';
  return g || '(unknown model)';
}

async function loadUsage() {
  // One load at a time; a change meanwhile loads again when it ends.
  if (ui.usage.loading) { ui.usage.again = true; return; }
  ui.usage.loading = true;
  ui.usage.again = false;
  const { by, since } = ui.usage;
  const q = `by=${encodeURIComponent(by)}&since=${encodeURIComponent(since)}`;
  const err = $('usage-error');
  try {
    const [keys, series, totals] = await Promise.all([
      api('GET', '/ui/api/keys'),
      api('GET', `/ui/api/usage/series?${q}`).catch((e) => ({ error: e })),
      api('GET', `/ui/api/usage?${q}`).catch((e) => ({ error: e })),
    ]);
    // A change of the selectors meanwhile: the next poll draws it.
    if (by !== ui.usage.by || since !== ui.usage.since) return;
    ui.usage.keys = keys.keys || [];
    renderKeys();
    const failed = series.error || totals.error;
    if (failed) {
      err.textContent = `Usage: ${failed.message}`;
      show(err, true);
    } else {
      show(err, false);
      drawUsage(series);
      renderUsageTotals(totals);
    }
    $('usage-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    if (e.status !== 401) { err.textContent = `Usage: ${e.message}`; show(err, true); }
  } finally {
    ui.usage.loading = false;
    if (ui.usage.again && ui.view === 'usage') loadUsage();
  }
}

// Hourly points → bars of the period (top groups by tokens, the rest as "other").
function buckets(points, period, now) {
  const stepMs = period.step * HOUR;
  const last = Math.floor(now / stepMs) * stepMs;
  const first = last - (period.n - 1) * stepMs;
  const totals = new Map();
  for (const p of points) {
    const t = totals.get(p.group) || { tokens: 0, requests: 0 };
    t.tokens += p.tokens; t.requests += p.requests;
    totals.set(p.group, t);
  }
  const ranked = [...totals.entries()].sort((a, b) => b[1].tokens - a[1].tokens || b[1].requests - a[1].requests);
  const top = ranked.slice(0, ranked.length > TOP + 1 ? TOP : TOP + 1).map(([g]) => g);
  const other = ranked.length > top.length;
  const series = top.map((g, i) => ({ key: g, cls: `s${i}`, total: totals.get(g) }));
  if (other) {
    const rest = ranked.slice(top.length).reduce((acc, [, t]) => ({ tokens: acc.tokens + t.tokens, requests: acc.requests + t.requests }), { tokens: 0, requests: 0 });
    series.push({ key: null, cls: 's-other', total: rest, count: ranked.length - top.length });
  }
  const index = new Map(top.map((g, i) => [g, i]));
  const bars = Array.from({ length: period.n }, (_, i) => ({ at: first + i * stepMs, tokens: series.map(() => 0), requests: series.map(() => 0) }));
  for (const p of points) {
    const b = Math.floor((Math.floor(p.hour_ms / stepMs) * stepMs - first) / stepMs);
    if (b < 0 || b >= period.n) continue;
    const si = index.has(p.group) ? index.get(p.group) : series.length - 1;
    bars[b].tokens[si] += p.tokens;
    bars[b].requests[si] += p.requests;
  }
  return { series, bars, stepMs };
}

function niceTop(max) {
  if (max <= 0) return 1;
  const mag = Math.pow(10, Math.floor(Math.log10(max)));
  return [1, 2, 5, 10].map((m) => m * mag).find((v) => v >= max);
}

function drawStack(svg, data, field, by, unit) {
  const { series, bars, stepMs } = data;
  const n = bars.length;
  const w = 300 / n;
  const max = Math.max(0, ...bars.map((b) => b[field].reduce((x, y) => x + y, 0)));
  const top = niceTop(max);
  const out = [s('line', { x1: 0, x2: 300, y1: 50, y2: 50, class: 'grid' })];
  bars.forEach((b, i) => {
    let y = 100;
    b[field].forEach((v, si) => {
      if (!v) return;
      const hgt = Math.max(0.8, (v / top) * 96);
      y -= hgt;
      const r = s('rect', { x: (i * w + w * 0.12).toFixed(2), y: y.toFixed(2), width: (w * 0.76).toFixed(2), height: hgt.toFixed(2), class: series[si].cls });
      const t = s('title', {});
      const name = series[si].key === null ? 'other' : groupName(by, series[si].key);
      t.textContent = `${name}: ${num(v)} ${unit}, ${new Date(b.at).toLocaleString()} – ${new Date(b.at + stepMs).toLocaleTimeString()}`;
      r.append(t);
      out.push(r);
    });
  });
  svg.replaceChildren(...out);
  return top;
}

function drawUsage(data) {
  const { by } = ui.usage;
  const period = PERIODS[ui.usage.since];
  const b = buckets(data.points || [], period, Date.now());
  const tokensTop = drawStack($('chart-tokens'), b, 'tokens', by, 'tokens');
  const requestsTop = drawStack($('chart-requests'), b, 'requests', by, 'requests');
  // An empty period has no scale to speak of.
  $('tokens-max').textContent = b.series.length ? compact(tokensTop) : '';
  $('requests-max').textContent = b.series.length ? compact(requestsTop) : '';
  $('tokens-step').textContent = period.stepWords;
  $('requests-step').textContent = period.stepWords;
  for (const el of document.querySelectorAll('.usage-from')) el.textContent = period.from;
  const legend = $('usage-legend');
  if (!b.series.length) {
    legend.replaceChildren(h('li', { class: 'muted' }, 'No requests in this period.'));
    return;
  }
  legend.replaceChildren(...b.series.map((sr) => h('li', { class: sr.cls },
    h('span', { class: 'sw' }),
    h('b', {}, sr.key === null ? `other (${sr.count})` : groupName(by, sr.key)),
    h('span', { class: 'muted' }, `${compact(sr.total.tokens)} tokens · ${num(sr.total.requests)} req`))));
}

function renderUsageTotals(r) {
  const by = ui.usage.by;
  const words = { key: 'key', model: 'model', account: 'account' }[by];
  $('totals-by').textContent = words;
  $('totals-group-head').textContent = words[0].toUpperCase() + words.slice(1);
  $('totals-period').textContent = `${PERIODS[ui.usage.since].words}${r.cluster ? ' · the whole cluster' : ''}${r.exact_since ? '' : ' · first hour counted whole'}`;
  const cells = (g) => [
    h('td', { class: 'num' }, num(g.requests)),
    h('td', { class: 'num' }, g.errors ? h('span', { class: 'bad-text' }, num(g.errors)) : '0'),
    h('td', { class: 'num' }, num(g.input_tokens)),
    h('td', { class: 'num' }, num(g.output_tokens)),
    h('td', { class: 'num' }, num(g.cached_tokens)),
    h('td', { class: 'num' }, num(g.thinking_tokens)),
    h('td', { class: 'num' }, `${num(g.avg_latency_ms)} ms`),
  ];
  const groups = r.groups || [];
  $('usage-totals-rows').replaceChildren(...groups.map((g) => h('tr', { 'data-group': g.group },
    h('td', { class: by === 'account' ? '' : 'mono' }, groupName(by, g.group)), ...cells(g))));
  $('usage-totals-foot').replaceChildren(groups.length > 1 ? h('tr', {}, h('td', {}, 'Total'), ...cells(r.total)) : '');
  show($('usage-totals-empty'), groups.length === 0);
}

function dayShare(used, limit) {
  const p = (used / limit) * 100;
  return used > 0 && p < 1 ? '<1%' : `${Math.min(100, Math.round(p))}%`;
}

function keyLimit(v) { return v ? num(v) : h('span', { class: 'muted' }, 'no limit'); }

function renderKeys() {
  const keys = ui.usage.keys;
  const order = { active: 0, expired: 1, revoked: 2 };
  const list = [...keys].sort((a, b) => order[a.state] - order[b.state] || a.name.localeCompare(b.name));
  $('key-rows').replaceChildren(...list.map((k) => h('tr', { class: `k-${k.state}`, 'data-key': k.name },
    h('td', { class: 'name' }, k.name),
    h('td', { class: 'mono small' }, `${k.hint}…`),
    h('td', {}, h('span', { class: `state k-${k.state}` }, k.state),
      k.revoked_at ? h('div', { class: 'muted small' }, when(k.revoked_at * 1000)) : null),
    h('td', { class: 'mono small' }, k.models.length ? k.models.join(', ') : h('span', { class: 'muted' }, 'every model')),
    h('td', { class: 'num' }, keyLimit(k.requests_per_minute)),
    h('td', { class: 'num' }, keyLimit(k.tokens_per_day)),
    h('td', { class: 'small' }, k.expires_at ? when(k.expires_at * 1000) : h('span', { class: 'muted' }, 'never')),
    h('td', { class: 'small' }, k.last_used ? when(k.last_used * 1000) : h('span', { class: 'muted' }, 'never')),
    h('td', { class: 'num today-requests' }, num(k.today.requests)),
    h('td', { class: 'num today-tokens' }, num(k.today.tokens),
      k.tokens_per_day ? h('div', { class: 'muted small' }, `${dayShare(k.today.tokens, k.tokens_per_day)} of the day's`) : null),
    h('td', { class: 'acts' }, k.state === 'revoked' ? null : [
      h('button', { type: 'button', class: 'small', 'aria-label': `Edit ${k.name}`, onclick: () => openKey(k) }, 'Edit…'),
      h('button', { type: 'button', class: 'small danger', 'aria-label': `Revoke ${k.name}`, onclick: () => confirmRevoke(k) }, 'Revoke…'),
    ]))));
  show($('keys-empty'), keys.length === 0);
}

// The key dialog: make one (`k` null) or change one's limits and expiry.
function openKey(k) {
  ui.usage.editing = k ? k.name : null;
  $('key-title').textContent = k ? `Edit key ${k.name}` : 'New key';
  $('key-submit').textContent = k ? 'Save' : 'Create key';
  const name = $('key-name');
  name.value = k ? k.name : '';
  name.disabled = !!k;
  $('key-models').value = k ? k.models.join(', ') : '';
  $('key-rpm').value = k && k.requests_per_minute ? k.requests_per_minute : '';
  $('key-tpd').value = k && k.tokens_per_day ? k.tokens_per_day : '';
  $('key-expires').value = '';
  $('key-expires-note').textContent = k
    ? `Now: ${k.expires_at ? `expires ${abs(k.expires_at * 1000)}` : 'never expires'}. Leave empty to keep it; "never" removes the expiry.`
    : 'Empty: never expires. A duration (30d, 12h) counts from now; a date is UTC midnight.';
  show($('key-result'), false);
  $('key-dialog').showModal();
  (k ? $('key-models') : name).focus();
}

async function submitKey(ev) {
  ev.preventDefault();
  const editing = ui.usage.editing;
  const out = $('key-result');
  const count = (id) => { const v = $(id).value.trim(); return v === '' ? 0 : Number(v); };
  const body = {
    models: $('key-models').value.split(/[\s,]+/).filter(Boolean),
    requests_per_minute: count('key-rpm'),
    tokens_per_day: count('key-tpd'),
  };
  for (const [field, v] of [['Requests per minute', body.requests_per_minute], ['Tokens per day', body.tokens_per_day]]) {
    if (!Number.isInteger(v) || v < 0) { result(out, false, `${field}: a whole number, 0 for no limit`); return; }
  }
  const expires = $('key-expires').value.trim();
  if (!editing) { body.name = $('key-name').value.trim(); body.expires = expires || 'never'; } else if (expires) body.expires = expires;
  const btn = $('key-submit');
  btn.disabled = true;
  try {
    if (editing) {
      await api('POST', `/ui/api/keys/${encodeURIComponent(editing)}`, body);
      $('key-dialog').close();
      toast(`Key ${editing} changed`);
    } else {
      const r = await api('POST', '/ui/api/keys', body);
      $('key-dialog').close();
      showSecret(r.record ? r.record.name : body.name, r.key);
    }
    loadUsage();
  } catch (e) {
    result(out, false, e.message);
  } finally {
    btn.disabled = false;
  }
}

// The new key, this once. Closing the dialog (any way) removes it from the DOM.
function showSecret(name, secret) {
  $('secret-title').textContent = `Key made: ${name}`;
  $('secret-value').textContent = secret;
  $('secret-copied').textContent = '';
  $('secret-dialog').showModal();
  $('secret-copy').focus();
}

async function copySecret() {
  const el = $('secret-value');
  const note = $('secret-copied');
  try {
    await navigator.clipboard.writeText(el.textContent);
    note.textContent = 'Copied to the clipboard.';
  } catch {
    // Without the clipboard API (an insecure origin): select it for Ctrl+C.
    const range = document.createRange();
    range.selectNodeContents(el);
    const sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    note.textContent = 'Selected: press Ctrl+C (or ⌘C) to copy.';
  }
}

function confirmRevoke(k) {
  const d = $('confirm-dialog');
  $('confirm-title').textContent = `Revoke key ${k.name}?`;
  $('confirm-text').textContent = `Clients using ${k.name} (${k.hint}…) are refused at once, on every node. A revoked key cannot be used again; its name and usage stay.`;
  $('confirm-ok').textContent = 'Revoke';
  $('confirm-ok').onclick = async () => {
    d.close();
    try {
      await api('POST', `/ui/api/keys/${encodeURIComponent(k.name)}/revoke`);
      toast(`Key ${k.name} revoked`);
    } catch (e) {
      toast(`${k.name}: ${e.message}`, true);
    }
    loadUsage();
  };
  d.showModal();
  $('confirm-cancel').focus();
}

// ---- tokens each account served in its quota windows ---------------------------

function servedLine(a) {
  const sv = a.served;
  if (!sv || !sv.five_hour.since_ms) return h('div', { class: 'served' });
  const since = (w) => `since ${new Date(w.since_ms).toLocaleString()}`;
  return h('div', { class: 'served', title: `Tokens this account served (input, output and thinking): 5-hour window ${since(sv.five_hour)}, weekly window ${since(sv.weekly)}` },
    'served ', h('b', {}, compact(sv.five_hour.tokens)), ' tok in 5 h · ', h('b', {}, compact(sv.weekly.tokens)), ' this week');
}

async function loadServed() {
  try {
    const r = await api('GET', '/ui/api/usage/accounts');
    for (const [id, sv] of Object.entries(r.accounts || {})) {
      const a = ui.accounts.get(id);
      if (!a) continue;
      const was = a.served;
      a.served = sv;
      if (was && was.five_hour.tokens === sv.five_hour.tokens && was.weekly.tokens === sv.weekly.tokens && was.five_hour.since_ms === sv.five_hour.since_ms) continue;
      const cell = ui.rowsEl.get(id) && ui.rowsEl.get(id).querySelector('td.quotas .served');
      if (cell) cell.replaceWith(servedLine(a));
    }
  } catch { /* the next poll */ }
}

function wireUsage() {
  $('view-accounts').addEventListener('click', () => showView('accounts'));
  $('view-usage').addEventListener('click', () => showView('usage'));
  $('usage-by').addEventListener('change', (e) => { ui.usage.by = e.target.value; loadUsage(); });
  $('usage-since').addEventListener('change', (e) => { ui.usage.since = e.target.value; loadUsage(); });
  $('open-key').addEventListener('click', () => openKey(null));
  $('key-form').addEventListener('submit', submitKey);
  $('secret-copy').addEventListener('click', copySecret);
  $('secret-dialog').addEventListener('close', () => {
    $('secret-value').textContent = '';
    $('secret-copied').textContent = '';
    getSelection().removeAllRanges();
  });
  $('key-dialog').addEventListener('close', () => { ui.usage.editing = null; });
  document.addEventListener('visibilitychange', () => { if (!document.hidden && ui.view === 'usage' && ui.usage.timer) loadUsage(); });
}

export { loadServed, servedLine, showView, stopUsagePolling, wireUsage };
