// inlet dashboard. Plain ES2020, no build step. Everything it shows comes from
// the JSON API in docs/http.md. Device-provided strings (names, payloads) only
// ever reach the page through textContent or attributes, never as HTML.
'use strict';

(() => {
  const POLL_MS = 1000;
  const MAX_POINTS = 20000; // kept on the chart, oldest dropped first
  const RAW_ROWS = 50;
  const REDRAW_MS = 200; // live points are drawn at most 5 times a second
  const RANGES = { '5m': 300, '1h': 3600, '24h': 86400, all: 0 };
  const DEFAULT_RANGE = '1h';
  const COLORS = ['#2563eb', '#16a34a', '#9333ea', '#0891b2', '#ea580c', '#db2777', '#65a30d', '#4f46e5'];
  const COLORS_DARK = ['#6ea0ff', '#4ade80', '#c084fc', '#22d3ee', '#fb923c', '#f472b6', '#a3e635', '#818cf8'];

  const $ = (sel, root = document) => root.querySelector(sel);

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k.startsWith('data-') || k === 'title' || k === 'href' || k === 'role' || k === 'tabindex') e.setAttribute(k, v);
        else e[k] = v;
      }
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  // --- connection state and fetch ---------------------------------------------

  let redirecting = false;
  const failures = new Set(); // which pollers are failing now

  function setFailing(who, failing) {
    if (failing) failures.add(who);
    else failures.delete(who);
    $('#conn-status').hidden = failures.size === 0;
    document.body.classList.toggle('disconnected', failures.size > 0);
  }

  function toLogin() {
    if (redirecting) return;
    redirecting = true;
    location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search + location.hash);
  }

  class HTTPError extends Error {}

  async function api(path) {
    const r = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (r.status === 401) {
      toLogin();
      throw new HTTPError('unauthorized');
    }
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
      throw new HTTPError(msg);
    }
    return r.json();
  }

  // poll runs fn every interval, after the previous run finished, whatever it threw.
  function poll(name, fn, interval) {
    const tick = async () => {
      if (redirecting) return;
      try {
        await fn();
        setFailing(name, false);
      } catch (err) {
        setFailing(name, true);
        if (!(err instanceof HTTPError) && !(err instanceof TypeError)) console.error(name, err);
      }
      setTimeout(tick, interval);
    };
    tick();
  }

  // --- formatting ----------------------------------------------------------------

  const nf = new Intl.NumberFormat();
  const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const nf2 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

  function fmtNum(n) {
    if (n == null || Number.isNaN(n)) return '–';
    return nf.format(n);
  }

  function fmtRate(r) {
    if (r == null) return '–';
    if (r >= 100) return nf.format(Math.round(r));
    if (r >= 10) return nf1.format(r);
    return nf2.format(r);
  }

  function fmtAge(s) {
    if (s == null || !Number.isFinite(s)) return '–';
    if (s < 1) return 'just now';
    if (s < 60) return Math.floor(s) + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }

  // printable shows control characters as escapes (\0, \n, \x1b) so that a
  // payload with NULs or line breaks stays one readable line in any font.
  const ESC = { '\0': '\\0', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
  function printable(s) {
    return String(s).replace(/[\u0000-\u001f\u007f]/g,
      (c) => ESC[c] || '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));
  }

  function truncate(s, n) {
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  }

  function hexOfBase64(b64, max) {
    try {
      const bin = atob(b64);
      let out = '';
      for (let i = 0; i < Math.min(bin.length, max); i++) out += bin.charCodeAt(i).toString(16).padStart(2, '0') + ' ';
      return out.trim() + (bin.length > max ? ' …' : '');
    } catch (_) {
      return '';
    }
  }

  function fmtTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso || '';
    const p = (n, w = 2) => String(n).padStart(w, '0');
    const now = new Date();
    const t = p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds()) + '.' + p(d.getMilliseconds(), 3);
    if (d.toDateString() === now.toDateString()) return t;
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + t;
  }

  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  // tickLabel is a short 24-hour time axis label: the date at midnight or for
  // day-long steps, seconds only for steps under a minute.
  function tickLabel(sec, incr) {
    const d = new Date(sec * 1000);
    const p = (n) => String(n).padStart(2, '0');
    const date = MONTHS[d.getMonth()] + ' ' + d.getDate();
    if (incr >= 86400) return date;
    if (d.getHours() === 0 && d.getMinutes() === 0 && d.getSeconds() === 0 && incr >= 60) return date;
    const hm = p(d.getHours()) + ':' + p(d.getMinutes());
    if (incr >= 60) return hm;
    const hms = hm + ':' + p(d.getSeconds());
    if (incr >= 1) return hms;
    const digits = incr >= 0.1 ? 1 : incr >= 0.01 ? 2 : 3;
    return hms + '.' + String(d.getMilliseconds()).padStart(3, '0').slice(0, digits);
  }

  // fmtDateTime is a local 24-hour date and time to the second, as inlet devices prints it.
  function fmtDateTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso || '–';
    const p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' '
      + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }

  function plural(n, one, many) {
    return fmtNum(n) + ' ' + (n === 1 ? one : many);
  }

  // KINDS says what a device's kind means for its loss (docs/http.md).
  const KINDS = {
    counter: 'counter: its readings count up by one, so a value that never came is a reading lost',
    values: 'not a counter (sensor readings, text): inlet cannot tell whether a reading was lost',
    acked: 'acknowledged protocol (INLET/1): loss is counted by sequence number',
  };

  // lossBadges describes a device's loss accounting as badges: green "0 lost"
  // when clean, otherwise red facts; grey "values, loss unknown" when the device
  // is not a counter, whose loss is not known.
  function lossBadges(d) {
    const out = [];
    if (d.kind === 'values') {
      out.push(el('span', { class: 'badge neutral', text: 'values, loss unknown', title: KINDS.values }));
      return out;
    }
    if (d.kind === 'counter') out.push(el('span', { class: 'kind', text: 'counter', title: KINDS.counter }));
    if (d.clean) {
      out.push(el('span', { class: 'badge ok', text: '0 lost' }));
      return out;
    }
    if (d.lost > 0) out.push(el('span', { class: 'badge bad', text: fmtNum(d.lost) + ' lost' }));
    if (d.resets > 0) out.push(el('span', { class: 'badge bad', text: plural(d.resets, 'reset', 'resets') }));
    if (d.duplicates > 0) out.push(el('span', { class: 'badge bad', text: plural(d.duplicates, 'duplicate', 'duplicates') }));
    if (out.length === 0) {
      if (d.gaps > 0) out.push(el('span', { class: 'badge bad', text: plural(d.gaps, 'gap', 'gaps') }));
      else out.push(el('span', { class: 'badge bad', text: 'not clean' }));
    }
    return out;
  }

  function lastValueText(d) {
    if (d.last_payload != null) return printable(d.last_payload);
    if (d.last_fields && typeof d.last_fields === 'object') {
      return Object.entries(d.last_fields).map(([k, v]) => k + '=' + v).join(',');
    }
    return null;
  }

  // --- overview strip --------------------------------------------------------------

  let serverOffsetMs = 0; // server clock minus ours, from /api/overview's now
  let clockKnown = false;
  const serverNow = () => Date.now() + serverOffsetMs;

  function sparkline(svg, values) {
    const line = svg.querySelector('polyline');
    if (!Array.isArray(values) || values.length < 2) {
      line.setAttribute('points', '');
      svg.querySelector('polygon').setAttribute('points', '');
      return;
    }
    const nums = values.map((v) => (typeof v === 'number' && Number.isFinite(v) ? v : 0));
    const max = Math.max(1, ...nums);
    const step = 60 / (nums.length - 1);
    const pts = nums.map((v, i) => (i * step).toFixed(2) + ',' + (19 - (v / max) * 18).toFixed(2)).join(' ');
    line.setAttribute('points', pts);
    svg.querySelector('polygon').setAttribute('points', '0,20 ' + pts + ' 60,20');
  }

  function sumValues(o) {
    if (o == null) return null;
    if (typeof o === 'number') return o;
    return Object.values(o).reduce((a, v) => a + (Number(v) || 0), 0);
  }

  async function refreshOverview() {
    const o = await api('/api/overview');
    const now = Date.parse(o.now);
    if (Number.isFinite(now)) {
      serverOffsetMs = now - Date.now();
      clockKnown = true;
    }
    const ov = $('#overview');
    $('[data-k=rate]', ov).textContent = fmtRate(o.messages_per_second);
    sparkline($('#ov-rate .spark'), o.rate_history);
    $('[data-k=conns]', ov).textContent = fmtNum(sumValues(o.connections_open));
    $('[data-k=devices]', ov).textContent = fmtNum(o.devices);

    const rej = $('[data-k=rejected]', ov);
    const reasons = Object.entries(o.rejected || {}).filter(([, n]) => n > 0);
    if (o.udp_kernel_drops > 0) reasons.push(['kernel drops', o.udp_kernel_drops]);
    if (reasons.length === 0) {
      rej.replaceChildren(el('span', { class: 'muted', text: 'none' }));
    } else {
      rej.replaceChildren(...reasons.map(([k, n]) =>
        el('span', { class: 'rej' }, k.replace(/_/g, ' ') + ' ', el('b', { text: fmtNum(n) }))));
    }

    const store = $('[data-k=store]', ov);
    const healthy = o.store && o.store.healthy;
    const errors = (o.store && o.store.errors) || 0;
    store.className = 'pill ' + (healthy ? 'ok' : 'bad');
    store.textContent = healthy ? 'store ok' : 'store failing (' + plural(errors, 'error', 'errors') + ')';
    store.title = healthy && errors > 0 ? plural(errors, 'failed commit', 'failed commits') + ' since start, all retried' : '';
    $('#ov-store').dataset.healthy = healthy ? 'true' : 'false';

    if (o.version) $('#version').textContent = o.version;
    renderEmptyHint(o.listen || {}, Array.isArray(o.hosts) ? o.hosts : []);
    $('#logout').hidden = !o.auth;
  }

  // splitAddr splits a listener's "host:port" ("[::]:3000", "127.0.0.1:3000").
  function splitAddr(addr) {
    const m = /^\[?(.*?)\]?:(\d+)$/.exec(addr || '');
    return m ? { host: m[1], port: m[2] } : null;
  }

  const isLoopback = (h) => h === 'localhost' || h === '::1' || /^127\./.test(h);
  const hostPort = (h, p) => (h.includes(':') ? '[' + h + ']' : h) + ':' + p;

  // renderEmptyHint names the ports this server really listens on, the
  // addresses devices on the network can reach, and a command that sends to it.
  function renderEmptyHint(listen, hosts) {
    const tcp = splitAddr(listen.tcp), udp = splitAddr(listen.udp);
    $('#port-tcp').textContent = tcp ? tcp.port : 'off';
    $('#port-udp').textContent = udp ? udp.port : 'off';
    const local = tcp && isLoopback(tcp.host) && (!udp || isLoopback(udp.host));
    $('#loopback-only').hidden = !local;
    // A listener on one address is reached there only.
    const any = (h) => h === '' || h === '::' || h === '0.0.0.0';
    const bound = tcp && !any(tcp.host) && !isLoopback(tcp.host) ? [tcp.host] : null;
    const lines = local ? [] : (bound || hosts).map((h) => {
      const parts = [];
      if (tcp) parts.push(hostPort(h, tcp.port) + ' (tcp)');
      if (udp) parts.push((tcp ? ':' + udp.port : hostPort(h, udp.port)) + ' (udp)');
      return parts.join(', ');
    }).filter((l) => l !== '');
    $('#host-list').replaceChildren(...lines.map((l) => el('li', { text: l })));
    $('#hosts').hidden = lines.length === 0;
    // inlet send's default is 127.0.0.1:3000; a listener on every interface or
    // on loopback is reached there, one on a single address at that address.
    let cmd = 'inlet send';
    if (tcp) {
      const h = any(tcp.host) || isLoopback(tcp.host) ? '127.0.0.1' : tcp.host;
      const addr = hostPort(h, tcp.port);
      if (addr !== '127.0.0.1:3000') cmd += ' --addr ' + addr;
    } else if (udp) {
      cmd += ' --mode udp --addr ' + hostPort(any(udp.host) || isLoopback(udp.host) ? '127.0.0.1' : udp.host, udp.port);
    }
    $('#try-send').textContent = cmd;
  }

  // --- devices ---------------------------------------------------------------------

  const devices = new Map(); // name -> latest record from /api/devices
  let devicesFetchedAt = 0; // performance.now() of that answer
  const rows = new Map(); // name -> { tr, cells, messages }

  function deviceHash(name, range) {
    return '#/device/' + encodeURIComponent(name) + (range && range !== DEFAULT_RANGE ? '?range=' + range : '');
  }

  function makeRow(name) {
    const link = el('a', { href: deviceHash(name), text: name });
    const cells = {
      dev: el('td', { class: 'dev' }, link),
      last: el('td', { class: 'last-value' }),
      messages: el('td', { class: 'messages r' }),
      rate: el('td', { class: 'rate r hide-phone' }),
      age: el('td', { class: 'age r' }),
      loss: el('td', { class: 'loss' }),
    };
    const tr = el('tr', { 'data-device': name }, ...Object.values(cells));
    tr.addEventListener('click', (ev) => {
      if (ev.target.closest('a')) return; // the link navigates by itself
      location.hash = deviceHash(name);
    });
    return { tr, cells, messages: null };
  }

  // Device names in natural order: 127.0.0.2 before 127.0.0.10, sensor-9 before sensor-10.
  const natural = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

  function renderDevices(list) {
    const tbody = $('#devices tbody');
    const seen = new Set();
    let prev = null;
    list = list.slice().sort((a, b) => natural.compare(String(a.device), String(b.device)));
    for (const d of list) {
      const name = String(d.device);
      seen.add(name);
      let row = rows.get(name);
      if (!row) {
        row = makeRow(name);
        rows.set(name, row);
      }
      const c = row.cells;
      const lv = lastValueText(d);
      if (lv == null) {
        c.last.replaceChildren(el('span', { class: 'nil', text: d.messages > 0 ? 'binary' : '–' }));
        c.last.title = '';
      } else {
        c.last.textContent = truncate(lv, 120);
        c.last.title = truncate(lv, 2000);
      }
      c.messages.textContent = fmtNum(d.messages);
      c.messages.dataset.unit = d.messages === 1 ? 'message' : 'messages';
      c.rate.textContent = fmtRate(d.rate_per_minute);
      c.age.title = d.last_seen ? fmtDateTime(d.last_seen) : '';
      c.loss.replaceChildren(el('span', { class: 'badges' }, ...lossBadges(d)));
      if (row.messages != null && d.messages > row.messages) {
        row.tr.classList.remove('flash');
        void row.tr.offsetWidth; // restart the animation
        row.tr.classList.add('flash');
      }
      row.messages = d.messages;
      // Keep that order, moving rows only when it changed.
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== row.tr) tbody.insertBefore(row.tr, want);
      prev = row.tr;
    }
    for (const [name, row] of rows) {
      if (!seen.has(name)) {
        row.tr.remove();
        rows.delete(name);
      }
    }
    const empty = list.length === 0;
    $('#empty').hidden = !empty;
    $('#home').classList.toggle('is-empty', empty);
    tickAges();
  }

  // tickAges updates "last seen" every second between polls, from the server's
  // age_seconds plus the time since that answer.
  function tickAges() {
    const since = (performance.now() - devicesFetchedAt) / 1000;
    for (const [name, row] of rows) {
      const d = devices.get(name);
      if (!d) continue;
      const age = d.age_seconds == null ? null : d.age_seconds + since;
      row.cells.age.textContent = fmtAge(age);
      row.cells.age.classList.toggle('fresh', age != null && age < 60);
    }
  }

  async function refreshDevices() {
    const list = await api('/api/devices');
    devicesFetchedAt = performance.now();
    devices.clear();
    for (const d of list || []) devices.set(String(d.device), d);
    renderDevices(list || []);
    if (page) page.renderFacts();
  }

  // --- device page -----------------------------------------------------------------

  let page = null; // the open DevicePage, if any

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function lowerBound(arr, x) {
    let lo = 0;
    let hi = arr.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (arr[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function markerText(m) {
    if (m.kind === 'gap') {
      const n = m.missing || 0;
      let s = plural(n, 'reading', 'readings') + ' missing';
      if (m.from != null && m.to != null) s += m.from === m.to ? ' (' + m.from + ')' : ' (' + m.from + '–' + m.to + ')';
      return s;
    }
    const range = m.from == null ? '' : m.to == null || m.to === m.from ? ' (' + m.from + ')' : ' (' + m.from + '–' + m.to + ')';
    if (m.kind === 'reset') return 'counter reset' + (m.from != null && m.to != null ? ' (' + m.from + ' → ' + m.to + ')' : '');
    if (m.kind === 'duplicate') return 'duplicate' + range;
    if (m.kind === 'late') return 'arrived late' + range;
    return String(m.kind || 'marker') + range;
  }

  // Marker kinds the legend names, with their plural; any other kind is shown
  // by its name.
  const KIND_PLURAL = { reset: 'resets', duplicate: 'duplicates', late: 'late' };

  function markerStyle(m, colors) {
    if (m.kind === 'gap') return { color: colors.bad, dash: [] };
    if (m.kind === 'late') return { color: colors.muted, dash: [2, 3] };
    return { color: colors.warn, dash: [4, 3] };
  }

  class DevicePage {
    constructor(name, range) {
      this.name = name;
      this.range = range;
      this.closed = false;
      this.fields = [];
      this.t = [];
      this.cols = {}; // field -> values aligned with t
      this.markers = [];
      this.lastId = 0; // newest message id applied
      this.lastCounter = null; // for client-side gap detection on live points
      this.chart = null;
      this.es = null;
      this.redrawTimer = null;
      this.zoomed = false;
      this.rawIds = new Set();
      this.rawMax = 0;
      this.retryTimer = null;
      this.gen = 0;

      $('#dev-name').textContent = name;
      document.title = name + ' · inlet';
      for (const b of document.querySelectorAll('#range button')) {
        b.setAttribute('aria-pressed', String(b.dataset.range === range));
      }
      const csv = $('#csv');
      let q = '/api/messages?device=' + encodeURIComponent(name);
      if (RANGES[range]) q += '&since=' + range;
      csv.href = q + '&format=csv';
      const safe = name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'device';
      const day = new Date().toISOString().slice(0, 10);
      csv.setAttribute('download', 'inlet-' + safe + '-' + (range === 'all' ? 'all' : 'last-' + range) + '-' + day + '.csv');

      $('#raw tbody').replaceChildren();
      $('#raw').classList.add('no-seq');
      $('#zoom-reset').hidden = true;
      $('#marker-legend').hidden = true;
      $('#marker-tip').hidden = true;
      this.setLive('connecting…', '');
      const chartEl = $('#chart');
      chartEl.replaceChildren();
      chartEl.dataset.points = '0';
      chartEl.dataset.lastValue = '';
      chartEl.dataset.breaks = '[]';
      this.resizeObs = new ResizeObserver(() => this.resize());
      this.resizeObs.observe(chartEl);
      this.renderFacts();
      this.load();
    }

    close() {
      this.closed = true;
      if (this.es) this.es.close();
      this.es = null;
      clearTimeout(this.redrawTimer);
      clearTimeout(this.retryTimer);
      this.resizeObs.disconnect();
      if (this.chart) this.chart.destroy();
      this.chart = null;
    }

    setLive(text, cls) {
      const live = $('#live');
      live.textContent = text;
      live.className = 'live small ' + (cls || 'muted');
    }

    // load reads the raw messages and the series, then follows the stream from the
    // newest id read; on failure it tries again.
    async load() {
      const gen = ++this.gen;
      const enc = encodeURIComponent(this.name);
      try {
        const raw = await api('/api/messages?device=' + enc + '&limit=' + RAW_ROWS + '&last=1');
        if (this.closed || gen !== this.gen) return;
        let q = '/api/series?device=' + enc;
        if (RANGES[this.range]) q += '&since=' + this.range;
        const s = await api(q);
        if (this.closed || gen !== this.gen) return;
        setFailing('device', false);
        this.applyRaw(raw || []);
        this.applySeries(s);
        this.follow();
      } catch (err) {
        if (this.closed || redirecting) return;
        setFailing('device', true);
        this.setLive('retrying…', 'off');
        this.retryTimer = setTimeout(() => this.load(), 2000);
      }
    }

    applyRaw(list) {
      const tbody = $('#raw tbody');
      tbody.replaceChildren();
      this.rawIds.clear();
      // Oldest first in the answer; the table shows the newest on top.
      for (const m of list) this.addRaw(m, false);
    }

    addRaw(m, live) {
      if (m.id != null) {
        if (this.rawIds.has(m.id)) return;
        this.rawIds.add(m.id);
        this.rawMax = Math.max(this.rawMax, m.id);
      }
      const tbody = $('#raw tbody');
      let payload;
      if (m.payload != null) {
        const p = printable(m.payload);
        payload = el('td', { class: 'payload', text: truncate(p, 200), title: truncate(p, 2000) });
      } else if (m.payload_base64 != null) {
        payload = el('td', { class: 'payload' }, el('span', { class: 'nil', text: 'binary ' }), hexOfBase64(m.payload_base64, 24));
      } else {
        payload = el('td', { class: 'payload' }, el('span', { class: 'nil', text: 'empty' }));
      }
      const seq = m.seq != null ? String(m.seq) : '–';
      // The seq column is for acknowledged devices: shown once a row has one.
      if (m.seq != null) $('#raw').classList.remove('no-seq');
      const tr = el('tr', { 'data-id': String(m.id) },
        el('td', { class: 't', text: fmtTime(m.received_at), title: m.received_at || '' }),
        payload,
        el('td', { text: m.transport || '' }),
        el('td', { class: 'muted', text: m.remote || '' }),
        el('td', { class: 'r seq', text: seq, title: m.boot != null ? 'boot ' + m.boot : '' }));
      if (live) tr.className = 'new';
      tbody.prepend(tr);
      while (tbody.rows.length > RAW_ROWS) tbody.lastElementChild.remove();
    }

    applySeries(s) {
      this.fields = Array.isArray(s.fields) ? s.fields.slice() : [];
      this.t = Array.isArray(s.t) ? s.t.slice() : [];
      this.cols = {};
      for (const f of this.fields) {
        const col = s.series && Array.isArray(s.series[f]) ? s.series[f].slice() : [];
        while (col.length < this.t.length) col.push(null);
        this.cols[f] = col;
      }
      this.markers = Array.isArray(s.markers) ? s.markers.slice() : [];
      this.lastId = Math.max(Number(s.last_id) || 0, this.rawMax);
      // Counter jumps on live points are detected from the last exact value.
      this.lastCounter = null;
      if (!s.bucketed && this.cols.value) {
        for (let i = this.t.length - 1; i >= 0; i--) {
          const v = this.cols.value[i];
          if (v != null) {
            if (Number.isInteger(v)) this.lastCounter = v;
            break;
          }
        }
      }
      this.trim();
      this.rebuild();
    }

    follow() {
      if (this.es) this.es.close();
      let url = '/api/stream?device=' + encodeURIComponent(this.name);
      // Always from a known id (0 on an empty database): a stream opened without
      // one would start at whatever commits next and could skip what came in
      // between the series read and now.
      url += '&after_id=' + this.lastId;
      const es = new EventSource(url, { withCredentials: false });
      this.es = es;
      es.onopen = () => this.setLive('live', 'on');
      es.onmessage = (ev) => {
        let m;
        try { m = JSON.parse(ev.data); } catch (_) { return; }
        this.onMessage(m);
      };
      es.onerror = () => {
        if (this.closed) return;
        if (es.readyState === EventSource.CLOSED) {
          // The browser gave up (an HTTP error, perhaps 401): check the API, then
          // resume from the last id we have.
          this.setLive('reconnecting…', 'off');
          es.close();
          clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(async () => {
            try { await api('/api/overview'); } catch (_) { /* shown by the poller */ }
            if (!this.closed && !redirecting) this.follow();
          }, 2000);
        } else {
          this.setLive('reconnecting…', 'off'); // the browser retries by itself
        }
      };
    }

    onMessage(m) {
      if (m == null || typeof m !== 'object') return;
      if (m.id != null && m.id <= this.lastId) return; // already shown
      if (m.id != null) this.lastId = m.id;
      if (m.device != null && String(m.device) !== this.name) return;
      this.addRaw(m, true);
      const f = m.fields;
      if (f == null || typeof f !== 'object') return;
      const nums = Object.entries(f).filter(([, v]) => typeof v === 'number' && Number.isFinite(v));
      if (nums.length === 0) return;
      const t = Date.parse(m.received_at) / 1000;
      if (!Number.isFinite(t)) return;

      let newField = false;
      for (const [k] of nums) {
        if (!(k in this.cols)) {
          this.fields.push(k);
          this.cols[k] = new Array(this.t.length).fill(null);
          newField = true;
        }
      }
      // Points arrive in id order, which is time order; keep t sorted anyway.
      let i = this.t.length;
      if (i > 0 && t < this.t[i - 1]) i = lowerBound(this.t, t);
      this.t.splice(i, 0, t);
      for (const k of this.fields) {
        const v = typeof f[k] === 'number' && Number.isFinite(f[k]) ? f[k] : null;
        this.cols[k].splice(i, 0, v);
      }
      // A counter payload that jumps forward by more than 1 lost readings. As
      // the server does, a fall of more than 16 is a reset, a smaller step back
      // a late reading, and the highest value seen is kept. Only for a device
      // the server takes for a counter: a sensor's readings are not loss.
      const v = f.value;
      const known = devices.get(this.name);
      if (typeof v === 'number' && Number.isInteger(v) && known && known.kind === 'counter') {
        const prev = this.lastCounter;
        if (prev == null || v === prev + 1) {
          this.lastCounter = v;
        } else if (v > prev + 1) {
          this.markers.push({ t, kind: 'gap', missing: v - prev - 1, from: prev + 1, to: v - 1, live: true });
          this.lastCounter = v;
        } else if (v === prev) {
          this.markers.push({ t, kind: 'duplicate', from: v, live: true });
        } else if (prev - v > 16) {
          this.markers.push({ t, kind: 'reset', from: prev, to: v, live: true });
          this.lastCounter = v;
        } else {
          this.markers.push({ t, kind: 'late', from: v, live: true });
        }
      }
      if (newField) {
        this.trim();
        this.rebuild();
      } else {
        this.scheduleRedraw();
      }
    }

    // trim drops points older than the picked range and beyond the cap.
    trim() {
      let drop = Math.max(0, this.t.length - MAX_POINTS);
      // Range trimming needs the server's clock: readings carry its times.
      const span = clockKnown ? RANGES[this.range] : 0;
      if (span) {
        const cutoff = serverNow() / 1000 - span;
        drop = Math.max(drop, lowerBound(this.t, cutoff));
      }
      if (drop > 0) {
        this.t.splice(0, drop);
        for (const k of this.fields) this.cols[k].splice(0, drop);
      }
      if (span || drop > 0) {
        const first = this.t.length ? this.t[0] : (span ? serverNow() / 1000 - span : Infinity);
        this.markers = this.markers.filter((m) => m.t >= first);
      }
    }

    data() {
      return [this.t, ...this.fields.map((k) => this.cols[k])];
    }

    scheduleRedraw() {
      if (this.redrawTimer) return;
      this.redrawTimer = setTimeout(() => {
        this.redrawTimer = null;
        if (this.closed) return;
        this.trim();
        // A zoomed chart keeps its scales while points arrive.
        if (this.chart) this.chart.setData(this.data(), !this.zoomed);
        this.afterDraw();
      }, REDRAW_MS);
    }

    // afterDraw records the chart's state on #chart for tests and scripts.
    afterDraw() {
      const chartEl = $('#chart');
      const n = this.t.length;
      chartEl.dataset.points = String(n);
      let last = '';
      if (n > 0 && this.fields.length > 0) {
        const v = this.cols[this.fields[0]][n - 1];
        last = v == null ? '' : String(v);
      }
      chartEl.dataset.lastValue = last;
      const empty = n === 0 || this.fields.length === 0;
      $('#chart-empty').hidden = !empty;
      this.renderMarkerLegend();
    }

    renderMarkerLegend() {
      const lg = $('#marker-legend');
      const gaps = this.markers.filter((m) => m.kind === 'gap');
      const other = this.markers.filter((m) => m.kind !== 'gap');
      if (this.markers.length === 0) {
        lg.hidden = true;
        return;
      }
      const parts = [];
      if (gaps.length) {
        const missing = gaps.reduce((a, m) => a + (m.missing || 0), 0);
        parts.push(el('span', null, el('span', { class: 'key' }),
          plural(gaps.length, 'gap', 'gaps') + ' · ' + plural(missing, 'reading', 'readings') + ' missing'));
      }
      const counts = new Map();
      for (const m of other) counts.set(String(m.kind), (counts.get(String(m.kind)) || 0) + 1);
      for (const [kind, n] of counts) {
        const key = kind === 'late' ? 'key late' : 'key warn';
        parts.push(el('span', { 'data-kind': kind }, el('span', { class: key }), plural(n, kind, KIND_PLURAL[kind] || kind)));
      }
      lg.replaceChildren(...parts);
      lg.title = 'In the range shown. Point at a line on the chart for details.';
      lg.hidden = false;
    }

    setZoomed(on) {
      this.zoomed = on;
      $('#zoom-reset').hidden = !on;
    }

    resetZoom() {
      this.setZoomed(false);
      if (this.chart) this.chart.setData(this.data(), true);
    }

    latest(f) {
      const col = this.cols[f];
      if (!col) return null;
      for (let i = col.length - 1; i >= 0; i--) if (col[i] != null) return col[i];
      return null;
    }

    size() {
      const w = Math.max(200, $('#chart').clientWidth);
      const h = window.innerWidth < 560 ? 220 : Math.min(360, Math.max(240, Math.round(window.innerHeight * 0.38)));
      return { width: w, height: h };
    }

    resize() {
      if (!this.chart) return;
      const s = this.size();
      if (s.width !== this.chart.width || s.height !== this.chart.height) this.chart.setSize(s);
    }

    rebuild() {
      if (this.chart) {
        this.chart.destroy();
        this.chart = null;
      }
      const chartEl = $('#chart');
      chartEl.replaceChildren();
      if (this.fields.length === 0 || typeof uPlot === 'undefined') {
        this.afterDraw();
        return;
      }
      const axis = cssVar('--muted') || '#667085';
      const grid = cssVar('--line') || '#e4e7ec';
      const colors = { bad: cssVar('--bad') || '#c0262d', warn: cssVar('--warn') || '#b45309', muted: axis };
      const self = this;
      const palette = matchMedia('(prefers-color-scheme: dark)').matches ? COLORS_DARK : COLORS;
      const axisOpts = { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
      const opts = {
        ...this.size(),
        cursor: { drag: { x: true, y: false } },
        legend: { live: true },
        scales: { x: { time: true } },
        axes: [
          {
            ...axisOpts,
            // Labels with seconds or fractions are wider: space them further.
            space: (u, ai, min, max) => (max - min < 60 ? 90 : max - min < 600 ? 70 : 50),
            values: (u, splits, ai, space, incr) => splits.map((v) => tickLabel(v, incr)),
          },
          { ...axisOpts, size: 56 },
        ],
        series: [
          {
            label: 'time',
            value: (u, v, si, idx) => (idx == null || v == null ? 'latest' : fmtTime(new Date(v * 1000).toISOString())),
          },
          ...this.fields.map((f, i) => ({
            label: f,
            stroke: palette[i % palette.length],
            width: 1.5,
            // null means the field was absent from that message, not a pause:
            // the line goes on across it. It breaks where the device was silent.
            spanGaps: false,
            gaps: (u, si, i0, i1) => self.silenceGaps(u, si, i0, i1),
            // Off the chart, the legend shows each field's latest value.
            value: (u, v, si, idx) => {
              if (idx == null) v = self.latest(f);
              return v == null ? '–' : nf2.format(v);
            },
          })),
        ],
        hooks: {
          draw: [(u) => self.drawMarkers(u, colors)],
          setCursor: [(u) => self.markerTip(u)],
          setSelect: [(u) => {
            if (u.select.width > 0) self.setZoomed(true);
          }],
        },
      };
      this.chart = new uPlot(opts, this.data(), chartEl);
      this.setZoomed(false);
      // uPlot resets the zoom on a double click.
      this.chart.over.addEventListener('dblclick', () => this.setZoomed(false));
      this.afterDraw();
    }

    // silenceLimit is how long a pause must be to break the chart's line: five
    // times the median interval between readings, and at least a second.
    silenceLimit(xs) {
      if (this.limitFor === xs.length + ':' + xs[xs.length - 1]) return this.limit;
      const d = [];
      for (let i = Math.max(1, xs.length - 2000); i < xs.length; i++) d.push(xs[i] - xs[i - 1]);
      d.sort((a, b) => a - b);
      const median = d.length ? d[d.length >> 1] : 0;
      this.limit = Math.max(1, 5 * median);
      this.limitFor = xs.length + ':' + xs[xs.length - 1];
      return this.limit;
    }

    // silenceGaps gives uPlot the stretches, in canvas pixels, where a series'
    // line is not drawn: between two readings further apart than silenceLimit.
    silenceGaps(u, si, i0, i1) {
      const xs = u.data[0];
      const limit = this.silenceLimit(xs);
      const gaps = [];
      for (let i = Math.max(i0, 0) + 1; i <= i1 && i < xs.length; i++) {
        if (xs[i] - xs[i - 1] > limit) {
          uPlot.addGap(gaps, Math.round(u.valToPos(xs[i - 1], 'x', true)), Math.round(u.valToPos(xs[i], 'x', true)));
        }
      }
      if (si === 1) $('#chart').dataset.breaks = JSON.stringify(gaps); // for tests and scripts
      return gaps;
    }

    drawMarkers(u, colors) {
      if (this.markers.length === 0) return;
      const { ctx } = u;
      const { left, top, width, height } = u.bbox;
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, top, width, height);
      ctx.clip();
      const px = devicePixelRatio || 1;
      for (const m of this.markers) {
        const x = Math.round(u.valToPos(m.t, 'x', true));
        if (x < left - 1 || x > left + width + 1) continue;
        const { color, dash } = markerStyle(m, colors);
        if (m.kind === 'gap') {
          // Shade from the reading before the loss to the one after it.
          const i = lowerBound(this.t, m.t);
          if (i > 0) {
            const x0 = Math.max(left, Math.round(u.valToPos(this.t[i - 1], 'x', true)));
            if (x - x0 > 1) {
              ctx.globalAlpha = 0.12;
              ctx.fillStyle = color;
              ctx.fillRect(x0, top, x - x0, height);
            }
          }
        }
        ctx.globalAlpha = 0.9;
        ctx.strokeStyle = color;
        ctx.lineWidth = 1.5 * px;
        ctx.setLineDash(dash.map((d) => d * px));
        ctx.beginPath();
        ctx.moveTo(x + 0.5, top);
        ctx.lineTo(x + 0.5, top + height);
        ctx.stroke();
      }
      ctx.restore();
    }

    markerTip(u) {
      const tip = $('#marker-tip');
      const left = u.cursor.left;
      if (left == null || left < 0 || this.markers.length === 0) {
        tip.hidden = true;
        return;
      }
      let best = null;
      let bestDist = 7; // css px
      for (const m of this.markers) {
        const d = Math.abs(u.valToPos(m.t, 'x') - left);
        if (d < bestDist) {
          bestDist = d;
          best = m;
        }
      }
      if (!best) {
        tip.hidden = true;
        return;
      }
      tip.textContent = markerText(best) + ' · ' + fmtTime(new Date(best.t * 1000).toISOString());
      const over = u.over.getBoundingClientRect();
      const panel = tip.parentElement.getBoundingClientRect();
      const x = over.left - panel.left + u.valToPos(best.t, 'x');
      tip.style.left = Math.min(Math.max(x, 90), panel.width - 90) + 'px';
      tip.style.top = (over.top - panel.top + 4) + 'px';
      tip.hidden = false;
    }

    renderFacts() {
      const d = devices.get(this.name);
      const dl = $('#facts');
      const badge = $('#dev-badge');
      if (!d) {
        dl.replaceChildren(el('dt', { text: 'status' }), el('dd', { class: 'muted', text: devices.size ? 'no messages yet' : 'loading…' }));
        badge.replaceChildren();
        $('#boots').hidden = true;
        return;
      }
      badge.replaceChildren(...lossBadges(d));
      // Loss figures only where they are known: a values device has none.
      const rows = [
        ['kind', d.kind === 'values' ? 'values, loss unknown' : d.kind === 'acked' ? 'acknowledged (INLET/1)' : String(d.kind || '–')],
        ['messages', fmtNum(d.messages)],
      ];
      if (d.lost != null) {
        rows.push(
          ['lost', fmtNum(d.lost), d.lost > 0 ? 'bad' : 'ok'],
          ['gaps', fmtNum(d.gaps), d.gaps > 0 ? 'bad' : ''],
          ['missing', fmtNum(d.missing), d.missing > 0 ? 'bad' : ''],
          ['duplicates', fmtNum(d.duplicates), d.duplicates > 0 ? 'bad' : ''],
          ['resets', fmtNum(d.resets), d.resets > 0 ? 'bad' : ''],
        );
      }
      if (d.kind === 'counter') rows.push(['last counter', d.last_counter == null ? '–' : fmtNum(d.last_counter)]);
      rows.push(
        ['per minute', fmtRate(d.rate_per_minute)],
        ['first seen', fmtDateTime(d.first_seen)],
        ['last seen', fmtDateTime(d.last_seen)],
      );
      dl.replaceChildren(...rows.flatMap(([k, v, cls]) => [el('dt', { text: k }), el('dd', { class: cls || '', text: v })]));
      dl.querySelector('dd').title = KINDS[d.kind] || '';
      this.renderBoots(Array.isArray(d.boots) ? d.boots : [], Number(d.boots_total) || 0);
    }

    // renderBoots lists an acknowledged device's boots, newest first: the few
    // most recent, since a device that reboots often has many.
    renderBoots(boots, total) {
      total = Math.max(total || 0, boots.length); // the API lists the most recent few
      const box = $('#boots');
      box.hidden = boots.length === 0;
      if (boots.length === 0) return;
      const sorted = boots.slice().sort((a, b) => String(b.last_seen).localeCompare(String(a.last_seen)));
      const shown = sorted.slice(0, 5);
      const items = shown.map((b) => {
        const ranges = (b.missing_ranges || []).map((r) => (r[0] === r[1] ? String(r[0]) : r[0] + '–' + r[1])).join(', ');
        const facts = [
          ['messages', fmtNum(b.messages)],
          ['last seq', fmtNum(b.last_seq)],
          ['durable', fmtNum(b.durable)],
          ['missing', fmtNum(b.missing), b.missing > 0 ? 'bad' : ''],
        ];
        if (ranges) facts.push(['missing seqs', ranges, 'bad']);
        facts.push(['last seen', fmtDateTime(b.last_seen)]);
        return el('div', { class: 'boot', 'data-boot': String(b.boot) },
          el('div', { class: 'boot-id', text: 'boot ' + b.boot, title: b.first_seen ? 'first seen ' + fmtDateTime(b.first_seen) : '' }),
          el('dl', { class: 'facts compact' },
            ...facts.flatMap(([k, v, cls]) => [el('dt', { text: k }), el('dd', { class: cls || '', text: v })])));
      });
      const head = el('h3', { text: total === 1 ? 'Boot' : plural(total, 'boot', 'boots') });
      const more = total > shown.length
        ? el('p', { class: 'muted small', text: 'and ' + plural(total - shown.length, 'earlier boot', 'earlier boots') + ' (inlet devices lists them all)' })
        : null;
      box.replaceChildren(head, ...items, ...(more ? [more] : []));
    }
  }

  // --- routing -----------------------------------------------------------------------

  function parseRoute() {
    const h = location.hash || '';
    const m = /^#\/device\/([^?]*)(?:\?(.*))?$/.exec(h);
    if (!m) return { view: 'home' };
    let name;
    try { name = decodeURIComponent(m[1]); } catch (_) { return { view: 'home' }; }
    const params = new URLSearchParams(m[2] || '');
    let range = params.get('range') || DEFAULT_RANGE;
    if (!(range in RANGES)) range = DEFAULT_RANGE;
    return { view: 'device', name, range };
  }

  function route() {
    const r = parseRoute();
    if (r.view === 'device') {
      if (page && page.name === r.name && page.range === r.range) return;
      if (page) page.close();
      $('#home').hidden = true;
      $('#device-page').hidden = false;
      page = new DevicePage(r.name, r.range);
      window.scrollTo(0, 0);
    } else {
      if (page) page.close();
      page = null;
      setFailing('device', false);
      $('#device-page').hidden = true;
      $('#home').hidden = false;
      document.title = 'inlet';
    }
  }

  function init() {
    for (const b of document.querySelectorAll('#range button')) {
      b.addEventListener('click', () => {
        if (page) location.hash = deviceHash(page.name, b.dataset.range);
      });
    }
    $('#zoom-reset').addEventListener('click', () => {
      if (page) page.resetZoom();
    });
    window.addEventListener('hashchange', route);
    route();
    poll('overview', refreshOverview, POLL_MS);
    poll('devices', refreshDevices, POLL_MS);
    setInterval(tickAges, 1000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
