// studio/assets/app.js: the studio page. Hash routes (#/overview, #/samples?filters, #/sample/ID, #/problem/ID,
// #/log) fetch /api with the session token in a header and render every value from the store as text
// (textContent via el(), never innerHTML), so a completion holding markup is shown, never run. #/compare shows the
// compare report for the eval runs ticked.
'use strict';

const TOKEN = new URLSearchParams(location.search).get('token') || '';
const FILTERS = ['status', 'verdict', 'split', 'run', 'model', 'problem', 'min_tokens', 'max_tokens', 'search', 'sort'];
const S = { facets: null, rows: [], sel: 0, next: null, query: new URLSearchParams(), count: null, sample: null,
            lastAction: null, dialogOpen: false };

// ---- DOM helpers ------------------------------------------------------------------------------------------
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
}
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(e, attrs);
  for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === 'cls') e.setAttribute('class', v);
    else if (k === 'href') { if (String(v).startsWith('#')) e.setAttribute('href', v); }  // in-page links only
    else e.setAttribute(k, String(v));
  }
}
const view = () => document.getElementById('view');
function show(...nodes) { view().replaceChildren(...nodes.flat()); }
const fmt = n => (n === null || n === undefined) ? '?' : Number(n).toLocaleString('en-US');
const badge = s => el('span', { cls: 'badge ' + s }, s);
const verdict = v => el('span', { cls: 'v-' + v }, v);

function banner(msg, kind, extra) {
  const b = document.getElementById('banner');
  b.className = kind || '';
  b.replaceChildren(el('span', { id: 'banner-text' }, msg), ...(extra || []),
                    el('button', { on: { click: () => { b.hidden = true; } } }, 'dismiss'));
  b.hidden = false;
}
function clearBanner() { document.getElementById('banner').hidden = true; }

// ---- the API ------------------------------------------------------------------------------------------------
async function api(path, body) {
  const opts = { headers: { 'X-Distill-Token': TOKEN } };
  if (body !== undefined) {
    opts.method = 'POST';
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const j = await r.json().catch(() => ({ error: 'HTTP ' + r.status }));
  if (!r.ok) { const e = new Error(j.error || ('HTTP ' + r.status)); e.status = r.status; throw e; }
  return j;
}
// A refused write: a stale view (409) says what changed and offers a reload; other errors say what was wrong.
function failed(e, reload) {
  if (e.status === 409) banner('Not applied: ' + e.message, '', [el('button', { id: 'banner-reload', on: { click: () => { clearBanner(); reload(); } } }, 'reload')]);
  else banner(e.message);
}
async function facets() { if (!S.facets) S.facets = await api('/api/facets'); return S.facets; }

// ---- routing ------------------------------------------------------------------------------------------------
function route() {
  if (!S.keepBanner) clearBanner();  // a banner lasts until the next view, or one view more when an action asked
  S.keepBanner = false;
  const h = location.hash || '#/samples';
  const [path, qs] = h.slice(1).split('?');
  const parts = path.split('/').filter(Boolean);
  for (const n of ['overview', 'samples', 'log', 'compare']) document.getElementById('nav-' + n).classList.toggle('on', parts[0] === n);
  const go = { overview: viewOverview, sample: () => viewSample(+parts[1]), problem: () => viewProblem(+parts[1]),
               log: viewLog, compare: () => viewCompare(new URLSearchParams(qs || '')) }[parts[0]] ||
             (() => viewSamples(new URLSearchParams(qs || '')));
  go().catch(e => banner(e.message));
}
window.addEventListener('hashchange', route);

// ---- overview -----------------------------------------------------------------------------------------------
const COLORS = { kept: '#1f8a4c', rejected: '#c0392b', pending: '#8a6d1f', bar: '#2c5fb8', grid: '#dde1e8' };

// Round axis steps (1, 2 or 5 x 10^k), so the ticks read well: [step, number of steps].
function niceAxis(max) {
  const raw = Math.max(1, max) / 4, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(x => x >= raw);
  return [step, Math.max(1, Math.ceil(max / step))];
}

function barChart(title, items, opts) {  // items: [{label, value, color?, note?}], horizontal bars
  const w = 460, row = 22, left = opts.left || 120, h = items.length * row + 34;
  const [step, n] = opts.pct ? [0.25, 4] : niceAxis(Math.max(1, ...items.map(i => i.value))), max = step * n;
  const g = svg('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': title });
  const span = w - left - 96;
  for (let t = 0; t <= n; t++) {  // the value axis
    const x = left + span * t / n;
    g.append(svg('line', { x1: x, x2: x, y1: 4, y2: h - 24, stroke: COLORS.grid }));
    g.append(svg('text', { x, y: h - 10, 'text-anchor': 'middle' }, opts.pct ? Math.round(100 * t * step) + '%' : fmt(t * step)));
  }
  items.forEach((it, i) => {
    const y = 6 + i * row, bw = span * it.value / max;
    g.append(svg('text', { x: left - 6, y: y + 13, 'text-anchor': 'end' }, it.label));
    g.append(svg('rect', { x: left, y, width: Math.max(1, bw), height: row - 6, fill: it.color || COLORS.bar }));
    g.append(svg('text', { x: left + bw + 4, y: y + 13 }, it.note || fmt(it.value)));
  });
  return el('div', { cls: 'chart' }, el('h3', {}, title), g);
}

function stackedChart(title, rows, parts, colors) {  // rows: [{label, values: {part: n}}], one stacked bar each
  const w = 460, row = 24, left = 90, h = rows.length * row + 58;
  const [step, n] = niceAxis(Math.max(1, ...rows.map(r => parts.reduce((a, p) => a + (r.values[p] || 0), 0)))), max = step * n;
  const g = svg('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': title });
  const span = w - left - 30;
  for (let t = 0; t <= n; t++) {
    const x = left + span * t / n;
    g.append(svg('line', { x1: x, x2: x, y1: 4, y2: h - 48, stroke: COLORS.grid }));
    g.append(svg('text', { x, y: h - 34, 'text-anchor': 'middle' }, fmt(t * step)));
  }
  rows.forEach((r, i) => {
    const y = 6 + i * row;
    let x = left;
    g.append(svg('text', { x: left - 6, y: y + 13, 'text-anchor': 'end' }, r.label));
    for (const p of parts) {
      const v = r.values[p] || 0, bw = span * v / max;
      if (v) g.append(svg('rect', { x, y, width: bw, height: row - 6, fill: colors[p] }, svg('title', {}, `${r.label}, ${p}: ${fmt(v)}`)));
      x += bw;
    }
  });
  let lx = left;
  for (const p of parts) {  // the legend
    g.append(svg('rect', { x: lx, y: h - 18, width: 10, height: 10, fill: colors[p] }));
    g.append(svg('text', { x: lx + 14, y: h - 9 }, p));
    lx += 24 + 7 * p.length;
  }
  return el('div', { cls: 'chart' }, el('h3', {}, title), g);
}

function histogram(title, bins, width) {  // vertical bars with both axes
  const w = 460, h = 220, left = 60, bottom = 36;
  const [step, n] = niceAxis(Math.max(1, ...bins.map(b => b.samples))), max = step * n;
  const g = svg('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': title });
  const plotW = w - left - 10, plotH = h - bottom - 10, bw = plotW / Math.max(1, bins.length);
  for (let t = 0; t <= n; t++) {
    const y = 10 + plotH - plotH * t / n;
    g.append(svg('line', { x1: left, x2: w - 10, y1: y, y2: y, stroke: COLORS.grid }));
    g.append(svg('text', { x: left - 4, y: y + 4, 'text-anchor': 'end' }, fmt(t * step)));
  }
  bins.forEach((b, i) => {
    const bh = plotH * b.samples / max, x = left + i * bw;
    g.append(svg('rect', { x: x + 1, y: 10 + plotH - bh, width: Math.max(1, bw - 2), height: bh, fill: COLORS.bar },
                 svg('title', {}, `${b.from}-${b.from + width - 1} tokens: ${fmt(b.samples)} samples`)));
    if (bins.length <= 12 || i % Math.ceil(bins.length / 8) === 0)
      g.append(svg('text', { x: x + bw / 2, y: h - bottom + 14, 'text-anchor': 'middle' }, fmt(b.from)));
  });
  g.append(svg('text', { x: left + plotW / 2, y: h - 6, 'text-anchor': 'middle' }, 'completion length (tokens)'));
  g.append(svg('text', { x: 10, y: 10 + plotH / 2, transform: `rotate(-90 10 ${10 + plotH / 2})`, 'text-anchor': 'middle' }, 'samples'));
  return el('div', { cls: 'chart' }, el('h3', {}, title), g);
}

async function viewOverview() {
  show(el('p', { cls: 'muted' }, 'Reading the store...'));
  const o = await api('/api/overview');
  const total = Object.values(o.by_status).reduce((a, b) => a + b, 0);
  const cards = el('div', { cls: 'cards' },
    el('div', { cls: 'card' }, el('div', { cls: 'muted' }, 'samples'), el('div', { cls: 'n' }, fmt(total))),
    ...['pending', 'kept', 'rejected'].map(s => el('a', { href: '#/samples?status=' + s, cls: 'card' },
      el('div', { cls: 'muted' }, s), el('div', { cls: 'n', id: 'count-' + s }, fmt(o.by_status[s] || 0)))));
  const splits = Object.keys(o.by_split_verdict), verdicts = ['correct', 'incorrect', 'unparsable', 'unverified'];
  const table = el('table', { id: 'split-verdict' },
    el('tr', {}, el('th', {}, 'split'), verdicts.map(v => el('th', {}, v))),
    splits.map(sp => el('tr', {}, el('td', {}, sp), verdicts.map(v => el('td', {}, fmt(o.by_split_verdict[sp][v] || 0))))));
  const charts = el('div', { cls: 'charts' },
    barChart('Curation funnel', o.funnel.map(f => ({ label: f.stage, value: f.samples, color: f.stage === 'kept' ? COLORS.kept : COLORS.bar })), {}),
    barChart('Samples by status', ['pending', 'kept', 'rejected'].map(s => ({ label: s, value: o.by_status[s] || 0, color: COLORS[s] })), {}),
    stackedChart('Samples by split and verdict', splits.map(sp => ({ label: sp, values: o.by_split_verdict[sp] })), verdicts,
                 { correct: COLORS.kept, incorrect: COLORS.rejected, unparsable: '#999999', unverified: '#c9b26b' }),
    histogram('Completion lengths', o.length_histogram, o.length_bucket || 1),
    barChart('Pass rate by difficulty', o.by_difficulty.map(d => ({ label: 'difficulty ' + d.difficulty, value: d.samples ? d.correct / d.samples : 0,
      note: (d.samples ? Math.round(1000 * d.correct / d.samples) / 10 : 0) + '% (' + fmt(d.samples) + ')' })), { pct: true, left: 100 }));
  show(el('h2', {}, 'Overview'), el('p', { cls: 'muted' }, o.store), cards, charts, el('h3', {}, 'Samples by split and verdict'), table);
}

// ---- samples ------------------------------------------------------------------------------------------------
function filterBar(f, q) {
  const sel = (name, label, options) => el('label', {}, label, el('select', { name, id: 'f-' + name, on: { change: applyFilters } },
    options.map(([v, t]) => el('option', { value: v, selected: (q.get(name) || '') === String(v) ? 'selected' : null }, t))));
  const inp = (name, label, cls, ph) => el('label', {}, label, el('input', { name, id: 'f-' + name, cls, placeholder: ph || '',
    value: q.get(name) || '', on: { change: applyFilters, keydown: e => { if (e.key === 'Enter') applyFilters(); e.stopPropagation(); } } }));
  return el('div', { cls: 'filters', id: 'filters' },
    sel('status', 'status', [['', 'any'], ['pending', 'pending'], ['kept', 'kept'], ['rejected', 'rejected']]),
    sel('verdict', 'verdict', [['', 'any'], ['correct', 'correct'], ['incorrect', 'incorrect'], ['unparsable', 'unparsable'], ['unverified', 'unverified']]),
    sel('split', 'split', [['', 'any'], ...f.splits.map(s => [s, s])]),
    sel('run', 'run', [['', 'any'], ...f.runs.map(r => [r.id, '#' + r.id + ' ' + r.name])]),
    sel('model', 'teacher', [['', 'any'], ...f.models.map(m => [m.id, '#' + m.id + ' ' + m.name])]),
    inp('problem', 'problem', 'num'), inp('min_tokens', 'min tokens', 'num'), inp('max_tokens', 'max tokens', 'num'),
    inp('search', 'full-text search', 'search', 'carry AND "mod 10"'),
    sel('sort', 'sort', [['', 'id'], ['-id', 'id, newest first'], ['tokens', 'shortest first'], ['-tokens', 'longest first']]));
}
function applyFilters() {
  const q = new URLSearchParams();
  for (const n of FILTERS) { const e = document.getElementById('f-' + n); if (e && e.value.trim() !== '') q.set(n, e.value.trim()); }
  location.hash = '#/samples?' + q.toString();
}

function sampleRow(r, i) {
  return el('tr', { cls: 'row' + (i === S.sel ? ' sel' : ''), 'data-id': r.id, on: { click: () => { S.sel = i; openSel(); } } },
    el('td', {}, '#' + r.id), el('td', {}, el('a', { href: '#/problem/' + r.problem_id, on: { click: e => e.stopPropagation() } }, '#' + r.problem_id)),
    el('td', {}, r.split), el('td', {}, badge(r.status)), el('td', {}, verdict(r.verdict)), el('td', {}, fmt(r.n_tokens)),
    el('td', { cls: 'snip', title: r.snippet }, r.snippet));
}
function renderRows() {
  const body = document.getElementById('rows');
  if (!body) return;
  body.replaceChildren(...S.rows.map(sampleRow));
  const more = document.getElementById('more');
  if (more) more.hidden = !S.next;
  const sel = body.children[S.sel];
  if (sel) sel.scrollIntoView({ block: 'nearest' });
}

async function viewSamples(q) {
  const f = await facets();
  const same = q.toString() === S.query.toString() && S.rows.length;
  S.query = q;
  if (!same) { S.rows = []; S.sel = 0; S.next = null; S.count = null; }
  const countEl = el('span', { id: 'count' }, S.count === null ? 'counting...' : fmt(S.count) + ' samples');
  const bulk = el('span', { id: 'bulk' },
    el('button', { cls: 'keep', id: 'bulk-keep', on: { click: () => bulkDialog(true) } }, 'Accept all matching...'),
    el('button', { cls: 'reject', id: 'bulk-reject', on: { click: () => bulkDialog(false) } }, 'Reject all matching...'));
  show(el('h2', {}, 'Samples'), filterBar(f, q), el('div', { cls: 'bar' }, countEl, f.read_only ? el('span', { cls: 'muted' }, 'read-only store') : bulk),
       el('table', { id: 'samples' }, el('thead', {}, el('tr', {}, ['id', 'problem', 'split', 'status', 'verdict', 'tokens', 'answer / match'].map(t => el('th', {}, t)))),
          el('tbody', { id: 'rows' })),
       el('div', { cls: 'bar' }, el('button', { id: 'more', hidden: 'hidden', on: { click: loadMore } }, 'Load more')));
  if (same) return renderRows();
  await loadMore();
  api('/api/count?' + q.toString()).then(c => { S.count = c.count; const e = document.getElementById('count'); if (e) e.textContent = fmt(c.count) + ' samples'; })
    .catch(e => banner(e.message));
}
async function loadMore() {
  const q = new URLSearchParams(S.query);
  if (S.next) q.set('after', S.next);
  q.set('limit', '50');
  const page = await api('/api/samples?' + q.toString());
  S.rows.push(...page.samples);
  S.next = page.next;
  renderRows();
}
function openSel() { const r = S.rows[S.sel]; if (r) location.hash = '#/sample/' + r.id; }

function queryObject() { const o = {}; for (const n of FILTERS) if (S.query.get(n) && n !== 'sort') o[n] = S.query.get(n); return o; }

async function bulkDialog(keep) {
  const c = await api('/api/count?stamp=1&' + S.query.toString());  // counted now: the action must find these same matches
  const what = Object.entries(queryObject()).map(([k, v]) => k + '=' + v).join(', ') || 'every sample';
  const reason = el('input', { id: 'bulk-reason', placeholder: 'reason', value: '' });
  const d = el('dialog', { id: 'bulk-dialog' },
    el('p', {}, (keep ? 'Accept ' : 'Reject ') + fmt(c.count) + ' samples matching ' + what + '?'),
    el('p', { cls: 'muted' }, 'One logged action; one undo reverses it. Refused if the count changes before it applies.'),
    keep ? null : reason,
    el('div', { cls: 'bar' },
      el('button', { id: 'bulk-confirm', cls: keep ? 'keep' : 'reject', on: { click: async () => {
        d.close(); d.remove(); S.dialogOpen = false;
        try {
          const r = await api('/api/bulk', { query: queryObject(), decision: keep ? 'keep' : 'reject', reason: reason.value, stamp: c.stamp });
          S.lastAction = r.action_id;
          banner(r.action_id ? `${keep ? 'Accepted' : 'Rejected'} ${fmt(r.changed.length)} samples as action #${r.action_id}` +
                 (r.unchanged.length ? ` (${fmt(r.unchanged.length)} were so already)` : '') : 'Nothing changed: every one was so already', 'info',
                 r.action_id ? [el('button', { id: 'banner-undo', on: { click: () => undoLast() } }, 'undo')] : []);
          S.rows = []; S.next = null; S.count = null; await viewSamples(S.query);
        } catch (e) { failed(e, () => viewSamples(S.query)); }
      } } }, (keep ? 'Accept ' : 'Reject ') + fmt(c.count)),
      el('button', { on: { click: () => { d.close(); d.remove(); S.dialogOpen = false; } } }, 'cancel')));
  d.addEventListener('close', () => { d.remove(); S.dialogOpen = false; });  // Esc closes it too
  document.body.append(d);
  S.dialogOpen = true;
  d.showModal();
}

// ---- one sample ---------------------------------------------------------------------------------------------
function kv(pairs) { return el('dl', { cls: 'kv' }, pairs.filter(p => p[1] !== null && p[1] !== undefined && p[1] !== '').map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])); }

async function viewSample(id) {
  const s = await api('/api/sample/' + id);
  S.sample = s;
  const i = S.rows.findIndex(r => r.id === id);
  if (i >= 0) S.sel = i;
  s.think = s.think.replace(/^\n+|\s+$/g, '');
  s.answer = s.answer.replace(/^\n+|\s+$/g, '');
  const long = s.think.length > 4000;
  const hist = el('ul', { cls: 'hist', id: 'history' }, s.history.map(h => el('li', { cls: h.undone_by ? 'undone' : '' },
    `#${h.action_id} ${h.kind}${h.decision ? ' ' + h.decision : ''} by ${h.actor} at ${h.at}` + (h.reason ? ` ("${h.reason}")` : '') +
    (h.undone_by ? ` (undone by #${h.undone_by})` : ''))));
  const ro = S.facets && S.facets.read_only;
  const buttons = ro ? el('span', { cls: 'muted' }, 'read-only store') : el('span', {},
    el('button', { cls: 'keep', id: 'accept', on: { click: () => decide(true) } }, 'accept (a)'), ' ',
    el('button', { cls: 'reject', id: 'reject', on: { click: () => rejectDialog() } }, 'reject (r)'), ' ',
    el('button', { id: 'undo', on: { click: () => undoLast() } }, 'undo (u)'));
  show(
    el('div', { cls: 'bar' }, el('a', { href: '#/samples?' + S.query.toString() }, '< samples'),
      el('h2', { id: 'sample-title' }, `Sample #${s.id}`), badge(s.status), verdict(s.verdict), el('span', { cls: 'muted' }, fmt(s.n_tokens) + ' tokens'),
      buttons, el('button', { on: { click: () => nextPending() } }, 'next pending (n)')),
    el('div', { cls: 'grid2' },
      el('div', {},
        el('h3', {}, 'Prompt ', el('a', { href: '#/problem/' + s.problem_id }, `(problem #${s.problem_id})`)), el('pre', { cls: 'text', id: 'prompt' }, s.prompt),
        el('details', { cls: 'think', open: long ? null : 'open' }, el('summary', {}, `Think block (${fmt(s.think.length)} characters)`),
          el('pre', { cls: 'text', id: 'think' }, s.think)),
        el('h3', {}, 'Answer'), el('pre', { cls: 'text', id: 'answer' }, s.answer)),
      el('div', {},
        el('h3', {}, 'Verdict'), kv([['verdict', s.verdict], ['gold', s.gold], ['extracted', s.extracted_answer], ['rule', s.extract_rule], ['verifier', s.verifier]]),
        el('h3', {}, 'Lineage'), kv([['teacher', s.model.role + ' ' + s.model.path], ['run', '#' + s.run_id], ['sample', `${s.sample_idx} (seed ${s.seed})`],
          ['sampling', `temperature ${s.temperature}, top-p ${s.top_p}`], ['finish', s.finish_reason], ['prompt format', s.prompt_format],
          ['imported from', s.imported_from], ['created', s.created_at], ['split', s.split], ['difficulty', s.difficulty]]),
        el('h3', {}, 'Curation history'), s.history.length ? hist : el('p', { cls: 'muted', id: 'history' }, 'no decisions yet'))),
    el('h3', {}, `Other samples of problem #${s.problem_id}`),
    el('div', { cls: 'side', id: 'siblings' }, s.siblings.map(o => el('a', { href: '#/sample/' + o.id, cls: 'sib' },
      el('div', { cls: 'bar' }, '#' + o.id, badge(o.status), verdict(o.verdict), el('span', { cls: 'muted' }, fmt(o.n_tokens) + ' tokens')),
      el('pre', { cls: 'text' }, o.answer)))));
}

async function decide(keep, reason) {
  const s = S.sample;
  if (!s) return;
  try {
    const seen = {}; seen[s.id] = s.status_action;
    const r = await api('/api/review', { ids: [s.id], decision: keep ? 'keep' : 'reject', reason: reason || '', seen });
    if (r.action_id) S.lastAction = r.action_id;
    const row = S.rows.find(x => x.id === s.id);
    if (row) row.status = keep ? 'kept' : 'rejected';
    if (reason && S.facets && !S.facets.reasons.includes(reason)) S.facets.reasons.unshift(reason);
    banner(r.action_id ? `#${s.id} ${keep ? 'kept' : 'rejected'} (action #${r.action_id})` : `#${s.id} was ${keep ? 'kept' : 'rejected'} by a review already: nothing logged`, 'info',
           r.action_id ? [el('button', { id: 'banner-undo', on: { click: () => undoLast() } }, 'undo')] : []);
    S.keepBanner = true;  // shown over the next sample, which opens at once
    await nextPending();
  } catch (e) { failed(e, () => viewSample(s.id)); }
}

function rejectDialog() {
  const reasons = (S.facets && S.facets.reasons) || [];
  const input = el('input', { id: 'reason', placeholder: 'a reason, or pick 1-9' });
  let pick = -1;
  const items = reasons.slice(0, 9).map((r, i) => el('li', { 'data-i': i }, `${i + 1}  ${r}`));
  const d = el('dialog', { id: 'reject-dialog' }, el('p', {}, `Reject #${S.sample.id} because...`), input, el('ul', {}, items),
    el('div', { cls: 'muted' }, 'Enter rejects, Esc cancels'));
  const close = () => { d.close(); d.remove(); S.dialogOpen = false; };
  input.addEventListener('keydown', e => {
    e.stopPropagation();
    if (e.key === 'Escape') { close(); return; }
    if (e.key === 'Enter') { const r = input.value.trim(); close(); decide(false, r); return; }
    if (/^[1-9]$/.test(e.key) && input.value === '' && +e.key <= items.length) {
      e.preventDefault(); pick = +e.key - 1; input.value = reasons[pick];
      items.forEach((li, i) => li.classList.toggle('pick', i === pick));
    }
  });
  d.addEventListener('close', () => { d.remove(); S.dialogOpen = false; });  // Esc closes it too
  document.body.append(d);
  S.dialogOpen = true;
  d.showModal();
  input.focus();
}

async function undoLast() {
  if (!S.lastAction) { banner('Nothing to undo in this session: the Log view undoes any action'); return; }
  try {
    const id = S.lastAction;
    await api('/api/undo', { action_id: id });
    S.lastAction = null;
    banner(`Undid action #${id}`, 'info');
    S.rows = []; S.next = null; S.count = null;
    S.keepBanner = true;
    route();
  } catch (e) { failed(e, route); }
}

// The next pending sample after this one: in the list as it is sorted (loading more pages as needed), else (a
// sample opened directly) in the current filter's id order.
async function nextPending() {
  const cur = S.sample ? S.sample.id : 0;
  let i = S.rows.findIndex(r => r.id === cur);
  while (i >= 0) {
    const k = S.rows.findIndex((r, j) => j > i && r.status === 'pending');
    if (k >= 0) { S.sel = k; location.hash = '#/sample/' + S.rows[k].id; return; }
    if (!S.next) { banner('No pending sample after #' + cur + ' in this list', 'info'); return viewSample(cur); }
    i = S.rows.length - 1;
    await loadMore();
  }
  const q = new URLSearchParams(S.query);
  q.set('status', 'pending'); q.delete('sort'); q.set('after', cur + ':' + cur); q.set('limit', '1');
  const page = await api('/api/samples?' + q.toString());
  if (!page.samples.length) { banner('No pending sample after #' + cur + ' in this filter', 'info'); if (S.sample) viewSample(cur); return; }
  location.hash = '#/sample/' + page.samples[0].id;
}
function step(delta) {  // previous/next in the sample list
  if (!S.rows.length) return;
  const i = Math.max(0, Math.min(S.rows.length - 1, S.sel + delta));
  S.sel = i;
  location.hash = '#/sample/' + S.rows[i].id;
}

// ---- problem and log ----------------------------------------------------------------------------------------
async function viewProblem(id) {
  const p = await api('/api/problem/' + id);
  const groups = {};
  for (const e of p.evals) (groups[`${e.role} ${e.model} (eval run #${e.run_id})`] ||= []).push(e);
  show(el('h2', {}, `Problem #${p.id}`), kv([['split', p.split], ['source', p.source], ['difficulty', p.difficulty], ['gold', p.gold],
       ['samples', fmt(p.n_samples)]]),
    el('h3', {}, 'Prompt'), el('pre', { cls: 'text', id: 'problem-prompt' }, p.prompt),
    p.solution ? el('details', {}, el('summary', {}, 'Gold solution'), el('pre', { cls: 'text' }, p.solution)) : null,
    el('h3', {}, 'Eval answers, side by side'),
    Object.keys(groups).length ? el('div', { cls: 'side', id: 'evals' }, Object.entries(groups).map(([name, es]) => el('div', { cls: 'sib' },
      el('b', {}, name), es.map(e => el('div', {}, el('div', { cls: 'bar' }, 'sample ' + e.sample_idx, verdict(e.verdict), el('span', { cls: 'muted' }, fmt(e.n_tokens) + ' tokens')),
        el('pre', { cls: 'text' }, e.answer)))))) : el('p', { cls: 'muted' }, 'no eval run answered this problem'),
    el('h3', {}, 'Samples'),
    el('table', {}, el('tr', {}, ['id', 'status', 'verdict', 'tokens', 'answer'].map(t => el('th', {}, t))),
      p.samples.map(r => el('tr', {}, el('td', {}, el('a', { href: '#/sample/' + r.id }, '#' + r.id)), el('td', {}, badge(r.status)),
        el('td', {}, verdict(r.verdict)), el('td', {}, fmt(r.n_tokens)), el('td', { cls: 'snip' }, r.snippet)))));
}

async function viewLog() {
  const l = await api('/api/log?limit=200');
  const ro = S.facets && S.facets.read_only;
  show(el('h2', {}, 'Curation log'), el('table', { id: 'log' },
    el('tr', {}, ['action', 'kind', 'at', 'by', 'kept', 'rejected', 'reason', 'parameters', ''].map(t => el('th', {}, t))),
    l.actions.map(a => el('tr', { 'data-id': a.action_id }, el('td', {}, '#' + a.action_id), el('td', {}, a.kind), el('td', {}, a.at),
      el('td', {}, a.actor), el('td', {}, a.kind === 'undo' ? '' : fmt(a.n_kept)), el('td', {}, a.kind === 'undo' ? '' : fmt(a.n_rejected)),
      el('td', {}, a.reason), el('td', { cls: 'snip', title: JSON.stringify(a.params) }, JSON.stringify(a.params)),
      el('td', {}, a.undone_by ? `undone by #${a.undone_by}` : a.undoes ? `undoes #${a.undoes}` : ro ? '' :
        el('button', { cls: 'undo-action', on: { click: async () => {
          try { await api('/api/undo', { action_id: a.action_id }); banner(`Undid action #${a.action_id}`, 'info'); S.rows = []; viewLog(); }
          catch (e) { failed(e, viewLog); }
        } } }, 'undo'))))));
}

// ---- compare ------------------------------------------------------------------------------------------------
const pct = x => (x === null || x === undefined) ? '?' : (100 * x).toFixed(1);

async function viewCompare(q) {
  const runs = (await api('/api/runs')).runs;
  if (!runs.length) return show(el('h2', {}, 'Compare'), el('p', { cls: 'muted' }, 'No eval runs in this store: `distill eval` makes them.'));
  let report;
  try { report = await api('/api/compare' + (q.get('runs') ? '?runs=' + encodeURIComponent(q.get('runs')) : '')); }
  catch (e) { report = null; banner(e.message); }
  const chosen = new Set(report ? report.models.map(m => m.run_id) : []);
  const boxes = el('div', { cls: 'filters', id: 'run-choice' }, runs.map(r => el('label', {},
    el('span', {}, el('input', { type: 'checkbox', value: r.id, checked: chosen.has(r.id) ? 'checked' : null }),
       ` eval run #${r.id}${r.hidden ? ' (hidden)' : ''}, ${r.started_at}, ${fmt(r.answers)} answers`))),
    el('button', { id: 'compare-go', on: { click: () => {
      const ids = [...document.querySelectorAll('#run-choice input:checked')].map(i => i.value);
      location.hash = '#/compare' + (ids.length ? '?runs=' + ids.join(',') : '');
    } } }, 'compare these'));
  if (!report) return show(el('h2', {}, 'Compare'), boxes);
  const models = report.models;
  const table = el('table', { id: 'compare' },
    el('tr', {}, ['model', 'eval run', 'params', 'active', 'pass@1 %', 'maj@k %', 'tokens/answer', 'cost vs ' + report.cost_relative_to].map(t => el('th', {}, t))),
    models.map(m => { const a = m.by_difficulty.all; return el('tr', {}, el('td', {}, m.label), el('td', {}, '#' + m.run_id),
      el('td', {}, fmt(m.n_params)), el('td', {}, fmt(m.n_active_params)),
      el('td', {}, `${pct(a['pass@1'].value)} [${pct(a['pass@1'].lo)}, ${pct(a['pass@1'].hi)}]`),
      el('td', {}, `${pct(a['maj@k'].value)} (k=${a.k})`), el('td', {}, a.mean_tokens.toFixed(1)), el('td', {}, m.relative_cost.toFixed(2) + 'x')); }));
  const dis = el('table', { id: 'disagreements' },
    el('tr', {}, el('th', {}, 'problem'), el('th', {}, 'gold'), models.map(m => el('th', {}, m.label))),
    report.disagreements.slice(0, 100).map(d => el('tr', {},
      el('td', {}, el('a', { href: '#/problem/' + d.problem_id }, '#' + d.problem_id), el('div', { cls: 'muted' }, d.prompt)),
      el('td', {}, d.gold), d.majority.map((a, i) => el('td', { cls: d.correct[i] ? 'v-correct' : 'v-incorrect' }, a || '(none)')))));
  show(el('h2', {}, 'Compare'), el('p', { cls: 'muted' }, 'Tick the eval runs to compare (by default each model\'s newest run that is not hidden).'),
    boxes, report.warnings.map(w => el('p', { cls: 'v-incorrect' }, 'Warning: ' + w)),
    el('p', {}, `${fmt(report.problems)} problems answered by every run compared.`), table,
    el('h3', {}, `Where their majority answers are not equally right (${fmt(report.disagreements.length)})`), dis);
}

// ---- keyboard -----------------------------------------------------------------------------------------------
document.addEventListener('keydown', e => {
  if (S.dialogOpen || e.ctrlKey || e.metaKey || e.altKey) return;
  if (['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement.tagName)) return;
  const onSample = location.hash.startsWith('#/sample/');
  const onList = location.hash.startsWith('#/samples') || location.hash === '';
  const k = e.key;
  if (onList && (k === 'j' || k === 'ArrowDown')) { S.sel = Math.min(S.rows.length - 1, S.sel + 1); renderRows(); }
  else if (onList && (k === 'k' || k === 'ArrowUp')) { S.sel = Math.max(0, S.sel - 1); renderRows(); }
  else if (onList && k === 'Enter') openSel();
  else if (onSample && k === 'a') decide(true);
  else if (onSample && k === 'r') { e.preventDefault(); rejectDialog(); }
  else if (onSample && (k === 'j' || k === 'ArrowRight')) step(1);
  else if (onSample && (k === 'k' || k === 'ArrowLeft')) step(-1);
  else if (onSample && k === 'n') nextPending();
  else if (onSample && k === 'Escape') location.hash = '#/samples?' + S.query.toString();
  else if (k === 'u') undoLast();
  else if (k === '?') banner('j/k or arrows: move; Enter: open; a: accept; r: reject with a reason; u: undo your last action; n: next pending; Esc: back to the list', 'info');
  else return;
  e.preventDefault();
});

facets().then(f => { document.getElementById('who').textContent = f.user + (f.read_only ? ' (read-only)' : ''); route(); })
  .catch(e => banner(e.message));
