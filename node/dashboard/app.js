// The hotcache dashboard: polls api/overview every second and renders it.
// Every string from the server (member names, keys, errors) goes into the
// page as textContent, never as markup: keys are user data.
'use strict';

(function () {
  const POLL_MS = 1000;
  const FETCH_TIMEOUT_MS = 3000;
  const HISTORY = 60; // samples kept for each member's sparkline
  const RATE_WINDOW_MS = 3000; // rates are averaged over this span of the node's clock

  // Counter readings over the last RATE_WINDOW_MS, for rates: per member
  // (requests) and per hot key (edge hits, keyed by owner and key).
  const requestSeries = new Map(); // name -> [{t, v}]
  const edgeSeries = new Map(); // owner + '\n' + key -> [{t, v}]
  const rates = new Map(); // name -> latest requests/s
  const history = new Map(); // name -> [requests/s, ...]
  const palette = ['#2f6fdf', '#e0672b', '#2a9d6f', '#9b4dca', '#c9a227', '#d6456b', '#3aa3b8', '#7a8b2e'];
  const colors = new Map();

  const $ = (id) => document.getElementById(id);

  // el makes an element with a class and text (both optional), and children.
  function el(tag, cls, text, ...children) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const c of children) e.appendChild(c);
    return e;
  }

  function colorOf(name) {
    if (!colors.has(name)) colors.set(name, palette[colors.size % palette.length]);
    return colors.get(name);
  }

  function fmtInt(v) {
    return v === undefined || v === null ? '–' : Math.round(v).toLocaleString('en-US');
  }

  function fmtRate(v) {
    if (v === undefined || v === null || !isFinite(v)) return '–';
    if (v >= 100) return fmtInt(v);
    return v.toFixed(1);
  }

  function fmtPct(v) {
    return v === undefined || v === null || !isFinite(v) ? '–' : (v * 100).toFixed(1) + '%';
  }

  function fmtBytes(v) {
    if (v === undefined || v === null) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v : v.toFixed(1)) + ' ' + units[i];
  }

  function fmtDuration(ms) {
    if (!isFinite(ms) || ms < 0) return '–';
    const s = Math.floor(ms / 1000);
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  }

  // windowRate adds the reading v of a counter at time t (ms, the node's
  // clock) to series[id] and returns the counter's rate per second over
  // the readings of the last RATE_WINDOW_MS, or null before there are two.
  function windowRate(series, id, t, v) {
    let s = series.get(id);
    const last = s && s[s.length - 1];
    if (!last || v < last.v || t < last.t) { // the first reading, or the counter was reset
      s = [];
      series.set(id, s);
    }
    if (!last || t > last.t) s.push({ t: t, v: v });
    while (s.length > 2 && t - s[1].t >= RATE_WINDOW_MS) s.shift();
    if (s.length < 2) return null;
    const first = s[0], end = s[s.length - 1];
    return (end.v - first.v) * 1000 / (end.t - first.t);
  }

  // prune forgets the series whose ids were not seen in the last overview.
  function prune(series, seen) {
    for (const id of series.keys()) if (!seen.has(id)) series.delete(id);
  }

  // updateRates folds each member's counters into its request rate: delta
  // requests over delta of the member's own clock.
  function updateRates(members) {
    const seen = new Set();
    for (const m of members) {
      const c = m.counters;
      if (!c) { rates.delete(m.name); continue; }
      seen.add(m.name);
      const rate = windowRate(requestSeries, m.name, c.time_ms, c.requests);
      if (rate === null) { rates.delete(m.name); continue; }
      rates.set(m.name, rate);
      const h = history.get(m.name) || [];
      h.push(rate);
      if (h.length > HISTORY) h.shift();
      history.set(m.name, h);
    }
    prune(requestSeries, seen);
  }

  // sparkline draws a member's recent request rates (up to the last
  // HISTORY readings, spread over the width) as a small SVG area chart.
  function sparkline(values) {
    const ns = 'http://www.w3.org/2000/svg';
    const w = 90, h = 22;
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    svg.setAttribute('width', String(w));
    svg.setAttribute('height', String(h));
    if (!values || values.length < 2) return svg;
    const top = Math.max(1, ...values);
    const step = w / (values.length - 1);
    const pts = values.map((v, i) => (i * step).toFixed(1) + ',' + (h - 1 - (v / top) * (h - 3)).toFixed(1));
    const area = document.createElementNS(ns, 'polygon');
    area.setAttribute('points', '0,' + h + ' ' + pts.join(' ') + ' ' + w + ',' + h);
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', pts.join(' '));
    svg.appendChild(area);
    svg.appendChild(line);
    return svg;
  }

  function renderHeader(ov) {
    $('self').textContent = ov.self;
    $('identity').textContent = ov.identity;
    $('generation').textContent = String(ov.generation);
    $('updated').textContent = new Date(ov.time_ms).toLocaleTimeString('en-GB');
    document.title = 'hotcache · ' + ov.self;
  }

  function card(label, value, sub) {
    return el('div', 'card', null, el('div', 'card-value', value), el('div', 'card-label', label),
      el('div', 'card-sub', sub || ''));
  }

  function renderCards(ov, hot) {
    const alive = ov.members.filter((m) => m.state === 'alive').length;
    const down = ov.members.filter((m) => !m.reachable).length;
    let total = 0, known = 0;
    for (const m of ov.members) {
      if (rates.has(m.name)) { total += rates.get(m.name); known++; }
    }
    const atEdge = hot.filter((k) => k.served === 'edge').length;
    $('cards').replaceChildren(
      card('members alive', alive + ' / ' + ov.members.length, down ? down + ' not answering' : 'all answering'),
      card('requests/s', known ? fmtRate(total) : '–', 'served by the nodes'),
      card('hot keys', String(hot.length), atEdge + ' served at the edge'),
      card('ring partitions', String(ov.partitions), 'generation ' + ov.generation));
  }

  function renderRing(ov) {
    const bar = $('ringbar');
    const segs = [];
    for (const m of ov.members) {
      const share = ov.partitions ? m.partitions / ov.partitions : 0;
      const seg = el('div', 'seg', m.name);
      seg.style.width = (share * 100).toFixed(2) + '%';
      seg.style.background = colorOf(m.name);
      seg.title = m.name + ': ' + m.partitions + ' of ' + ov.partitions + ' partitions';
      segs.push(seg);
    }
    bar.replaceChildren(...segs);
  }

  function stateBadge(state) {
    return el('span', 'badge state-' + (['alive', 'suspect', 'dead', 'left'].includes(state) ? state : 'unknown'), state);
  }

  function renderMembers(ov) {
    const rows = ov.members.map((m) => {
      const c = m.counters;
      const share = ov.partitions ? m.partitions / ov.partitions : 0;
      const name = el('td', 'name', null, el('span', 'dot'), el('span', null, m.name));
      name.firstChild.style.background = colorOf(m.name);
      if (m.name === ov.self) name.appendChild(el('span', 'tag', 'this node'));
      name.appendChild(el('div', 'addr mono', m.addr));
      const shareCell = el('td', 'share', null,
        el('span', 'sharebar', null, el('span', 'sharefill')), el('span', null, fmtPct(share) + ' (' + m.partitions + ')'));
      const fill = shareCell.querySelector('.sharefill');
      fill.style.width = (share * 100).toFixed(1) + '%';
      fill.style.background = colorOf(m.name);
      const reads = c ? c.hits + c.misses : 0;
      const admin = m.reachable
        ? el('td', m.error ? 'warn' : 'ok', m.error ? m.error : 'ok')
        : el('td', 'err', m.error || 'unreachable');
      admin.title = m.admin || 'admin address unknown';
      const tr = el('tr', m.reachable ? '' : 'down', null,
        name,
        el('td', null, null, stateBadge(m.state)),
        shareCell,
        el('td', 'num', rates.has(m.name) ? fmtRate(rates.get(m.name)) : '–'),
        el('td', null, null, sparkline(history.get(m.name))),
        el('td', 'num', c ? fmtInt(c.gets) : '–'),
        el('td', 'num', c ? fmtInt(c.sets) : '–'),
        el('td', 'num', c && reads ? fmtPct(c.hits / reads) : '–'),
        el('td', 'num', c ? fmtInt(c.items) : '–'),
        el('td', 'num', c ? fmtBytes(c.bytes) : '–'),
        el('td', 'num', c ? fmtInt(c.forwarded) : '–'),
        el('td', 'num', m.hotkeys ? String(m.hotkeys.keys.length) : '–'),
        el('td', 'num', m.hotkeys ? String(m.hotkeys.replica_streams) : '–'),
        admin);
      return tr;
    });
    $('members').tBodies[0].replaceChildren(...rows);
  }

  // collectHot lists every member's hot keys with their owner and edge
  // share: the rate of reads edges reported answering (edge_hits over the
  // owner's clock) over the key's read rate, which includes them.
  function collectHot(ov) {
    const out = [];
    const seen = new Set();
    for (const m of ov.members) {
      if (!m.hotkeys) continue;
      const now = m.counters ? m.counters.time_ms : ov.time_ms;
      for (const k of m.hotkeys.keys) {
        const id = m.name + '\n' + k.key;
        seen.add(id);
        const edgeRate = windowRate(edgeSeries, id, now, k.edge_hits);
        let share = null;
        if (k.served === 'node') {
          share = 0;
        } else if (edgeRate !== null && k.reads_per_s > 0) {
          share = Math.min(1, edgeRate / k.reads_per_s);
        }
        const since = Date.parse(k.since);
        out.push({ owner: m.name, key: k.key, reads: k.reads_per_s, writes: k.writes_per_s, served: k.served,
          share: share, edgeHits: k.edge_hits, bytes: k.bytes, edges: m.hotkeys.replica_streams,
          age: since > 0 ? now - since : NaN });
      }
    }
    prune(edgeSeries, seen);
    out.sort((a, b) => b.reads - a.reads);
    return out;
  }

  function renderHot(hot) {
    const rows = hot.map((k) => {
      const owner = el('td', 'name', null, el('span', 'dot'), el('span', null, k.owner));
      owner.firstChild.style.background = colorOf(k.owner);
      const share = el('td', 'share', null,
        el('span', 'sharebar', null, el('span', 'sharefill edgefill')), el('span', null, fmtPct(k.share)));
      share.querySelector('.sharefill').style.width = k.share === null ? '0' : (k.share * 100).toFixed(1) + '%';
      const served = el('td', null, null,
        el('span', 'badge served-' + (['edge', 'node', 'draining'].includes(k.served) ? k.served : 'unknown'), k.served));
      if (k.served !== 'node' && k.edges === 0) {
        served.appendChild(el('span', 'hint', 'no edge watching'));
      }
      return el('tr', null, null,
        el('td', 'key mono', k.key),
        owner,
        el('td', 'num', fmtRate(k.reads)),
        el('td', 'num', fmtRate(k.writes)),
        served,
        share,
        el('td', 'num', fmtInt(k.edgeHits)),
        el('td', 'num', k.bytes ? fmtBytes(k.bytes) : '–'),
        el('td', 'num', fmtDuration(k.age)));
    });
    $('hotkeys').tBodies[0].replaceChildren(...rows);
    $('nohot').hidden = hot.length > 0;
  }

  function render(ov) {
    updateRates(ov.members);
    const hot = collectHot(ov);
    renderHeader(ov);
    renderCards(ov, hot);
    renderRing(ov);
    renderMembers(ov);
    renderHot(hot);
  }

  function setStatus(ok, text) {
    const s = $('status');
    s.textContent = text;
    s.className = 'status ' + (ok ? 'live' : 'stale');
    const b = $('banner');
    b.hidden = ok;
    b.textContent = ok ? '' : text;
  }

  async function poll() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const resp = await fetch('api/overview', { cache: 'no-store', signal: ctl.signal });
      if (!resp.ok) throw new Error('HTTP ' + resp.status);
      const ov = await resp.json();
      render(ov);
      setStatus(true, 'live');
    } catch (e) {
      setStatus(false, 'cannot reach this node: ' + (e && e.message ? e.message : String(e)) + ' (showing the last data)');
    } finally {
      clearTimeout(timer);
      setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
