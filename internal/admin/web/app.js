// strata dashboard. Plain JavaScript, no build step: it reads the admin
// API once a second, computes rates from successive readings, and draws
// the chain, one table per pool and the traffic split over time. Every
// piece of text from the API goes through textContent, never innerHTML.
'use strict';
(() => {
  const POLL_MS = 1000;
  const CHAIN_MS = 10000; // the chain changes only on reload
  const HISTORY_MS = 120000; // the chart's window
  const TOKEN_KEY = 'strata-admin-token';
  // Okabe–Ito and friends: told apart by most colour-blind readers too.
  const COLORS = ['#2f6fd6', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#7a5af8', '#8c8c8c', '#c9a800', '#1b4f8a'];
  const COLUMNS = [
    { role: 'dns', title: 'DNS', what: 'answers a name with the address of a healthy balancer' },
    { role: 'l4', title: 'L4', what: 'spreads TCP/UDP connections over the L7 nodes' },
    { role: 'l7', title: 'L7', what: 'routes HTTP requests and spreads them over the instances' },
  ];

  // Everything the page knows; exposed for the curious (and the browser test).
  const state = {
    status: null,
    chain: [],
    chainAt: -Infinity, // so that the first tick reads the chain
    prev: new Map(), // "pool/backend" → {t, requests}
    history: new Map(), // pool → [{t, total, rates: {backend: req/s}}]
    panels: new Map(), // pool → panel
    pollError: '',
  };
  window.strataDashboard = state;

  const $ = (id) => document.getElementById(id);

  // el builds an element: el('td', {class: 'num', text: '3'}, child…).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  // ---- errors -----------------------------------------------------------
  let actionError = '';
  function showError() {
    const msg = actionError || state.pollError;
    $('error').hidden = !msg;
    $('error-text').textContent = msg;
  }
  function fail(msg) { actionError = msg; showError(); }

  // ---- API --------------------------------------------------------------
  async function getJSON(path) {
    const res = await fetch(path, { cache: 'no-store' });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await errorOf(res)}`);
    return res.json();
  }
  async function errorOf(res) {
    try {
      const j = await res.json();
      if (j && j.error) return j.error;
    } catch (_) { /* not JSON */ }
    return res.statusText;
  }
  // write sends a change with the token, if one was given; the browser
  // adds Origin and Sec-Fetch-Site, which the server checks.
  async function write(method, path, body) {
    const headers = {};
    const tok = sessionStorage.getItem(TOKEN_KEY);
    if (tok) headers.Authorization = 'Bearer ' + tok;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method, headers, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) {
      let msg = `${res.status}: ${await errorOf(res)}`;
      if (res.status === 401) msg += ' — enter the admin token at the top right';
      throw new Error(msg);
    }
    return res.json();
  }
  const backendPath = (pool, b) => `/api/v1/pools/${encodeURIComponent(pool)}/backends/${encodeURIComponent(b)}`;

  // ---- token ------------------------------------------------------------
  function showToken() {
    const has = !!sessionStorage.getItem(TOKEN_KEY);
    $('token-state').textContent = has ? 'token in use (this tab only)' : '';
    $('token').value = has ? sessionStorage.getItem(TOKEN_KEY) : '';
  }
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('token').value.trim();
    if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY);
    showToken();
  });
  $('token-clear').addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); showToken(); });
  $('error-close').addEventListener('click', () => { actionError = ''; showError(); });

  // ---- polling ----------------------------------------------------------
  async function tick() {
    const now = performance.now();
    try {
      if (now - state.chainAt > CHAIN_MS) {
        state.chain = await getJSON('/api/v1/chain');
        state.chainAt = now;
      }
      const st = await getJSON('/api/v1/status');
      record(st, performance.now());
      state.status = st;
      state.pollError = '';
      render();
    } catch (e) {
      state.pollError = 'Cannot read the admin API: ' + e.message;
      $('meta').textContent = 'disconnected';
    }
    showError();
  }
  async function loop() {
    const start = performance.now();
    await tick();
    setTimeout(loop, Math.max(100, POLL_MS - (performance.now() - start)));
  }

  // record turns the counters of a reading into rates since the last one.
  function record(st, t) {
    for (const p of st.pools) {
      const rates = {};
      let total = 0, known = false;
      for (const b of p.backends) {
        const key = p.name + '/' + b.name;
        const prev = state.prev.get(key);
        state.prev.set(key, { t, requests: b.requests });
        if (!prev || t <= prev.t) continue;
        // A counter that went down belongs to a backend that left and
        // came back: count from its new start.
        const d = b.requests >= prev.requests ? b.requests - prev.requests : b.requests;
        rates[b.name] = d / ((t - prev.t) / 1000);
        total += rates[b.name];
        known = true;
      }
      if (!known) continue;
      const h = state.history.get(p.name) || [];
      h.push({ t, total, rates });
      while (h.length && t - h[0].t > HISTORY_MS) h.shift();
      state.history.set(p.name, h);
    }
  }
  const latest = (pool) => {
    const h = state.history.get(pool);
    return h && h.length ? h[h.length - 1] : null;
  };

  // ---- formatting -------------------------------------------------------
  function fmtRate(r) {
    if (r === undefined || r === null) return '–';
    if (r >= 100) return Math.round(r).toString();
    return r.toFixed(1);
  }
  function fmtUptime(s) {
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }
  const statusClass = {
    up: 'ok', draining: 'warn', 'slow-start': 'info', 'weight-0': 'warn',
    maintenance: '', down: 'bad', unhealthy: 'bad', ejected: 'bad',
  };
  function pill(text, cls) { return el('span', { class: 'pill ' + (cls || ''), text }); }

  // ---- render -----------------------------------------------------------
  function render() {
    const st = state.status;
    $('meta').textContent = `${st.version || 'dev'} · up ${fmtUptime(st.uptime_seconds)} · ${st.pools.length} pool${st.pools.length === 1 ? '' : 's'} · updated ${new Date().toLocaleTimeString()}`;
    const pools = new Map(st.pools.map((p) => [p.name, p]));
    renderChain(pools);
    renderBGP(st.bgp);
    renderPools(pools);
  }

  // ---- BGP --------------------------------------------------------------
  // renderBGP shows the l4 speaker (the "bgp" section of /api/v1/status),
  // or hides its panel when the node runs none.
  function renderBGP(b) {
    $('bgp').hidden = !b;
    if (!b) return;
    const st = b.shutting_down ? pill('shutting down', 'warn')
      : b.drained ? pill('drained: nothing announced', 'warn')
        : b.announced.length ? pill(`announcing ${b.announced.length} of ${b.vips.length} VIPs`, 'ok')
          : pill('nothing announced', 'bad');
    $('bgp-state').replaceChildren(st);
    const attrs = [];
    if (b.med) attrs.push(`med ${b.med}`);
    if (b.as_path_prepend) attrs.push(`as-path prepend ${b.as_path_prepend}`);
    if (b.communities.length) attrs.push(`communities ${b.communities.join(' ')}`);
    $('bgp-who').textContent = `asn ${b.asn} · router-id ${b.router_id}` + (attrs.length ? ' · ' + attrs.join(' · ') : '');
    const btn = $('bgp-drain');
    btn.textContent = b.drained ? 'Undrain node' : 'Drain node';
    btn.className = b.drained ? 'restore' : 'drain';
    btn.dataset.drained = b.drained ? '1' : '';
    const rows = b.peers.map((p) => {
      const t = p.last_transition;
      const last = t ? `${t.from} → ${t.to} ${fmtUptime((Date.now() - Date.parse(t.at)) / 1000)} ago${t.reason ? ': ' + t.reason : ''}` : '—';
      return el('tr', { 'data-peer': p.address },
        el('td', { class: 'name', text: p.address }),
        el('td', { text: String(p.asn) }),
        el('td', {}, pill(p.state, p.state === 'established' ? 'ok' : 'bad')),
        el('td', { class: 'num', text: p.state === 'established' ? fmtUptime(p.uptime_seconds) : '—' }),
        el('td', { class: 'num', text: String(p.flaps) }),
        el('td', { text: last }));
    });
    $('bgp-peers').replaceChildren(...rows);
    const list = (xs) => (xs.length ? xs.join(', ') : 'none');
    $('bgp-routes').textContent = `announced: ${list(b.announced)} · VIPs: ${list(b.vips)} · put on lo by strata: ${list(b.on_lo)}`;
  }
  $('bgp-drain').addEventListener('click', async (ev) => {
    const btn = ev.currentTarget;
    const undrain = btn.dataset.drained === '1';
    btn.disabled = true;
    try {
      await write('POST', undrain ? '/api/v1/l4/undrain' : '/api/v1/l4/drain');
      actionError = '';
      await tick();
    } catch (e) {
      fail(`${undrain ? 'Undraining' : 'Draining'} the node: ${e.message}`);
    } finally {
      btn.disabled = false;
    }
  });

  const hopsOf = (role) => state.chain.filter((h) => h.role === role);
  // remoteL7 are the l4 services whose backends are l7 nodes run by other
  // processes (this one runs no l7 listener).
  const remoteL7 = () => hopsOf('l4').filter((h) => h.backend_role === 'l7');
  const uniq = (hs) => [...new Set(hs.flatMap((h) => h.pools))];
  // followed names the registry service a pool follows, if it does.
  const followed = (pn) => {
    const h = state.chain.find((x) => x.registry && x.registry[pn]);
    return h ? h.registry[pn] : '';
  };

  // appPools are the pools at the end of the chain, whose backends are the
  // app: those of the l7 listeners when this process runs any; else the
  // pools that only follow the registry (the instances the l7 nodes
  // elsewhere send to); else those of the last hop that sends traffic on.
  function appPools() {
    if (hopsOf('l7').length) return uniq(hopsOf('l7'));
    if (hopsOf('app').length || remoteL7().length) return uniq(hopsOf('app'));
    for (const role of ['l4', 'dns']) {
      const hs = hopsOf(role);
      if (hs.length) return uniq(hs);
    }
    return [];
  }

  // remoteL7Card draws the l7 nodes an l4 service sends to as the L7 hop:
  // each node's name and address, linked to its own dashboard when the
  // chain knows its admin address.
  function remoteL7Card(pools) {
    const card = el('div', { class: 'hop elsewhere', 'data-role': 'l7' },
      el('div', { class: 'role', text: 'l7' }),
      el('div', { class: 'title', text: 'L7' }),
      el('div', { class: 'sub', text: 'l7 nodes, in other processes: each routes HTTP requests over the app instances' }));
    const ul = el('ul');
    for (const h of remoteL7()) {
      for (const pn of h.pools) {
        const p = pools.get(pn);
        const li = el('li', { 'data-hop': pn }, el('div', { class: 'sub' }, `${pn} `, readyPill(p)));
        for (const b of p ? p.backends : []) {
          const admin = h.admin && h.admin[b.name];
          const name = admin
            ? el('a', { href: `http://${admin}/`, title: `the dashboard of ${b.name}`, text: b.name })
            : b.name;
          li.append(el('div', { class: 'name', 'data-node': b.name }, name),
            el('div', { class: 'sub mono', text: b.address }));
        }
        ul.append(li);
      }
    }
    card.append(ul);
    return card;
  }

  function readyPill(p) {
    if (!p) return pill('no such pool', 'bad');
    const cls = p.ready === 0 ? 'bad' : p.ready < p.total ? 'warn' : 'ok';
    return pill(`${p.ready}/${p.total} ready`, cls);
  }

  // tryCommands tell a newcomer how to send a request into the chain.
  // Non-breaking spaces keep "-p" with its port when the card wraps.
  function tryCommands() {
    const local = (listen) => {
      const first = listen.split(', ')[0];
      const i = first.lastIndexOf(':');
      let host = first.slice(0, i).replace(/^\[|\]$/g, '');
      if (host === '' || host === '0.0.0.0' || host === '::') host = '127.0.0.1';
      return { host, port: first.slice(i + 1) };
    };
    const out = [];
    const dns = hopsOf('dns').find((h) => h.names && h.names.length && h.listen);
    if (dns) {
      const { host, port } = local(dns.listen);
      const n = dns.names[0].replace(/\.$/, '');
      const zone = dns.name.replace(/\.$/, '');
      const fq = n === '@' ? zone : n.endsWith(zone) ? n : `${n}.${zone}`;
      out.push(`dig @${host} -p\u00a0${port} ${fq}`);
    }
    const web = hopsOf('l4').find((h) => h.protocol !== 'udp' && h.listen) || hopsOf('l7').find((h) => h.listen);
    if (web) {
      const { host, port } = local(web.listen);
      out.push(`curl http://${host.includes(':') ? '[' + host + ']' : host}:${port}/`);
    }
    return out;
  }

  function renderChain(pools) {
    const cols = [];
    const cmds = tryCommands();
    cols.push(el('div', { class: 'hop', 'data-role': 'client' },
      el('div', { class: 'role', text: 'client' }),
      el('div', { class: 'title', text: 'You' }),
      el('div', { class: 'sub', text: cmds.length ? 'try:' : 'browsers, curl, dig' }),
      ...cmds.map((c) => el('code', { text: c }))));
    for (const c of COLUMNS) {
      const hs = hopsOf(c.role);
      if (c.role === 'l7' && !hs.length && remoteL7().length) {
        cols.push(remoteL7Card(pools));
        continue;
      }
      const card = el('div', { class: 'hop' + (hs.length ? '' : ' off'), 'data-role': c.role },
        el('div', { class: 'role', text: c.role }),
        el('div', { class: 'title', text: c.title }));
      if (!hs.length) {
        card.append(el('div', { class: 'sub', text: 'not configured' }));
      } else {
        card.append(el('div', { class: 'sub', text: c.what }));
        const ul = el('ul');
        for (const h of hs) {
          const li = el('li', { 'data-hop': h.name },
            el('div', { class: 'name', text: h.name + (h.protocol ? ` (${h.protocol})` : '') }),
            el('div', { class: 'sub mono', text: h.listen }));
          // A listener with one catch-all route says nothing the pool line does not.
          const trivial = h.names && h.names.length === 1 && h.names[0] === `/ → ${h.pools[0]}`;
          if (h.names && h.names.length && !trivial) li.append(el('div', { class: 'sub', text: h.names.join(' · ') }));
          for (const pn of h.pools) li.append(el('div', { class: 'sub' }, `→ ${pn} `, readyPill(pools.get(pn))));
          ul.append(li);
        }
        card.append(ul);
      }
      cols.push(card);
    }
    const apps = appPools();
    const app = el('div', { class: 'hop' + (apps.length ? '' : ' off'), 'data-role': 'app' },
      el('div', { class: 'role', text: 'app' }),
      el('div', { class: 'title', text: 'App instances' }));
    if (!apps.length) app.append(el('div', { class: 'sub', text: remoteL7().length ? 'behind the l7 nodes: see their dashboards' : 'no pools' }));
    else if (!hopsOf('l7').length && hopsOf('app').length) app.append(el('div', { class: 'sub', text: 'app instances, as the registry sees them' }));
    const ul = el('ul');
    for (const pn of apps) {
      const p = pools.get(pn);
      const li = el('li', { 'data-hop': pn },
        el('div', { class: 'name' }, pn + ' ', readyPill(p)),
        el('div', { class: 'sub', text: p ? p.backends.map((b) => b.name).join(', ') : '' }));
      if (followed(pn)) li.append(el('div', { class: 'sub', text: `follows registry service ${followed(pn)}` }));
      ul.append(li);
    }
    app.append(ul);
    cols.push(app);

    const row = el('div', { class: 'chain' });
    cols.forEach((c, i) => {
      if (i) row.append(el('div', { class: 'arrow', text: '→', 'aria-hidden': 'true' }));
      row.append(c);
    });
    const reg = hopsOf('registry');
    const regCard = el('div', { class: 'hop' + (reg.length ? '' : ' off'), 'data-role': 'registry', 'data-hop': reg.length ? reg[0].name : null },
      el('div', { class: 'role', text: 'registry' }),
      el('div', { class: 'title', text: 'Registry' }),
      el('div', { class: 'sub', text: reg.length ? `instances register and heartbeat at ${reg.map((h) => h.listen).join(', ')}` : 'not configured' }));
    const beside = el('div', { class: 'beside' },
      el('span', { class: 'link', text: reg.length ? 'the app instances register here; callers inside look them up and connect directly' : '' }), regCard);
    $('chain').replaceChildren(row, beside);
  }

  // poolOrder lists the pools in the order a request meets them, each with
  // the hops that use it; pools no hop uses come last.
  function poolOrder(pools) {
    const out = new Map();
    for (const h of state.chain) {
      for (const pn of h.pools) {
        if (!out.has(pn)) out.set(pn, []);
        out.get(pn).push(h);
      }
    }
    for (const pn of pools.keys()) if (!out.has(pn)) out.set(pn, []);
    return [...out].filter(([pn]) => pools.has(pn));
  }

  function renderPools(pools) {
    const root = $('pools');
    const order = poolOrder(pools);
    const keep = new Set(order.map(([pn]) => pn));
    for (const [pn, panel] of state.panels) {
      if (!keep.has(pn)) { panel.el.remove(); state.panels.delete(pn); }
    }
    order.forEach(([pn, hops], i) => {
      const p = pools.get(pn);
      let panel = state.panels.get(pn);
      const sig = p.backends.map((b) => b.name).join('\n') + '\n' + hops.map((h) => h.role + h.name).join(',');
      if (!panel || panel.sig !== sig) {
        const next = buildPanel(p, hops, sig);
        if (panel) panel.el.replaceWith(next.el);
        panel = next;
        state.panels.set(pn, panel);
      }
      if (root.children[i] !== panel.el) root.insertBefore(panel.el, root.children[i] || null);
      updatePanel(panel, p);
    });
  }

  function buildPanel(p, hops, sig) {
    const onlyL4 = hops.length > 0 && hops.every((h) => h.role === 'l4');
    // The dns role answers with addresses and counts no traffic per backend;
    // a pool that only follows the registry takes none from this process.
    const onlyDNS = hops.length > 0 && hops.every((h) => h.role === 'dns');
    const onlyApp = hops.length > 0 && hops.every((h) => h.role === 'app');
    const unit = onlyL4 ? 'conn/s' : 'req/s';
    const used = onlyApp
      ? `the app instances as the registry sees them (service ${followed(p.name)}); no hop of this process sends traffic here`
      : hops.length ? 'used by ' + hops.map((h) => `${h.role} ${h.name}`).join(', ')
        : 'not used by any hop';
    const head = el('div', { class: 'pool-head' },
      el('h3', { text: `pool ${p.name}` }),
      el('span', { class: 'ready' }),
      el('span', { class: 'used', text: used }));
    const thead = el('tr', {},
      el('th', { text: 'backend' }), el('th', { text: 'zone' }), el('th', { text: 'status' }),
      el('th', { text: 'health' }), el('th', { text: 'weight' }),
      el('th', { class: 'num', text: 'effective', title: 'the weight the balancer uses now (0 while draining, lower during slow start)' }),
      el('th', { class: 'num', text: 'active', title: 'in flight now' }),
      el('th', { class: 'num', text: unit, title: 'new ' + (onlyL4 ? 'connections' : 'requests') + ' per second over the last reading' }),
      el('th', { class: 'num', text: 'share' }),
      el('th', { class: 'num', text: 'failures' }),
      el('th', { text: '' }));
    const tbody = el('tbody');
    const rows = new Map();
    const legend = el('div', { class: 'legend' });
    p.backends.forEach((b, i) => {
      const color = COLORS[i % COLORS.length];
      const r = buildRow(p.name, b, color);
      rows.set(b.name, r);
      tbody.append(r.tr);
      const sw = el('span', { class: 'swatch' });
      sw.style.background = color;
      legend.append(el('span', {}, sw, b.name));
    });
    const canvas = el('canvas', { 'aria-label': `share of ${unit} per backend of pool ${p.name} over the last two minutes`, role: 'img' });
    const total = el('div', { class: 'muted' });
    const chart = el('div', { class: 'chart-box' },
      el('div', { class: 'legend' }, el('strong', { text: 'Traffic split, last 2 minutes' })),
      legend, canvas, total);
    const table = el('table', {}, el('thead', {}, thead), tbody);
    const section = el('section', { class: 'panel pool', 'data-pool': p.name }, head,
      el('div', { class: 'pool-body' }, el('div', { class: 'table-box' }, table), chart));
    const uncounted = onlyDNS ? 'DNS answers name these backends; they are not counted as requests here.'
      : onlyApp ? 'The balancers that send requests to these instances count them in their own dashboards.' : '';
    return { el: section, sig, rows, canvas, total, unit, uncounted, colors: p.backends.map((_, i) => COLORS[i % COLORS.length]), names: p.backends.map((b) => b.name), ready: head.querySelector('.ready') };
  }

  function buildRow(pool, b, color) {
    const sw = el('span', { class: 'swatch' });
    sw.style.background = color;
    const weight = el('input', { type: 'number', min: '0', step: '1', 'aria-label': `weight of ${b.name}` });
    const setWeight = el('button', { type: 'button', class: 'quiet', text: 'Set' });
    const action = el('button', { type: 'button' });
    const r = {
      tr: el('tr', { 'data-pool': pool, 'data-backend': b.name }),
      name: el('td', {}, sw, el('span', { class: 'name', text: b.name }), el('div', { class: 'addr mono', text: b.address })),
      zone: el('td'), status: el('td'), health: el('td'),
      weight: el('td', {}, el('div', { class: 'weight' }, weight, setWeight)),
      eff: el('td', { class: 'num' }), active: el('td', { class: 'num' }),
      rate: el('td', { class: 'num' }), share: el('td', { class: 'num' }),
      failures: el('td', { class: 'num' }), act: el('td', {}, action),
      input: weight, shown: '', action, b,
    };
    r.tr.append(r.name, r.zone, r.status, r.health, r.weight, r.eff, r.active, r.rate, r.share, r.failures, r.act);

    const doSet = async () => {
      const n = Number(weight.value);
      if (weight.value.trim() === '' || !Number.isInteger(n) || n < 0) {
        fail(`Weight of ${b.name} must be a whole number, 0 or more.`);
        return;
      }
      setWeight.disabled = true;
      try {
        applyBackend(r, await write('PUT', backendPath(pool, b.name), { weight: n }), true);
        actionError = ''; showError();
        weight.blur();
      } catch (e) {
        fail(`Setting the weight of ${pool}/${b.name} failed: ${e.message}`);
      } finally { setWeight.disabled = false; }
    };
    setWeight.addEventListener('click', doSet);
    weight.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') doSet();
      if (ev.key === 'Escape') { weight.value = r.shown; weight.blur(); }
    });
    action.addEventListener('click', async () => {
      const drain = r.b.state === 'up';
      action.disabled = true;
      try {
        applyBackend(r, await write('POST', backendPath(pool, b.name) + (drain ? '/drain' : '/undrain')));
        actionError = ''; showError();
      } catch (e) {
        fail(`${drain ? 'Draining' : 'Restoring'} ${pool}/${b.name} failed: ${e.message}`);
      } finally { action.disabled = false; }
    });
    return r;
  }

  // applyBackend shows a backend's state: from a reading, or at once from
  // the answer to a write, so a click shows before the next reading. A
  // weight the operator is typing is left alone until Set (which forces
  // the field to the pool's answer) or Escape.
  function applyBackend(r, b, force) {
    r.b = b;
    r.tr.dataset.state = b.state;
    r.tr.dataset.status = b.status;
    r.zone.textContent = b.zone || '–';
    r.status.replaceChildren(pill(b.status, statusClass[b.status]));
    const h = b.health;
    if (b.ejected) r.health.replaceChildren(pill('ejected', 'bad'));
    else if (h) r.health.replaceChildren(pill(b.healthy ? 'passing' : 'failing', b.healthy ? 'ok' : 'bad'));
    else r.health.replaceChildren(b.healthy ? el('span', { class: 'muted', text: 'not checked' }) : pill('failing', 'bad'));
    r.health.title = h ? (h.last_error || `last check passed, ${h.checks} checks`) : '';
    if (force || r.input.value === String(r.shown)) {
      r.input.value = b.weight;
      r.shown = b.weight;
    }
    r.eff.textContent = b.effective_weight;
    r.active.textContent = b.active;
    r.failures.textContent = b.failures;
    const up = b.state === 'up';
    r.action.textContent = up ? 'Drain' : 'Restore';
    r.action.className = up ? 'drain' : 'restore';
    r.action.title = up ? 'take no new traffic; traffic in flight finishes' : 'set the state back to up';
  }

  function updatePanel(panel, p) {
    panel.ready.replaceChildren(readyPill(p));
    const last = latest(p.name);
    for (const b of p.backends) {
      const r = panel.rows.get(b.name);
      applyBackend(r, b);
      const rate = last ? last.rates[b.name] : undefined;
      const share = last && last.total > 0 && rate !== undefined ? rate / last.total : null;
      r.tr.dataset.rate = rate === undefined ? '' : rate.toFixed(3);
      r.tr.dataset.share = share === null ? '' : share.toFixed(4);
      r.rate.textContent = fmtRate(rate);
      const bar = el('div', { class: 'bar' }, el('span'));
      bar.firstChild.style.width = share === null ? '0' : (share * 100).toFixed(1) + '%';
      r.share.replaceChildren(el('div', { class: 'share' }, bar, el('span', { text: share === null ? '–' : Math.round(share * 100) + '%' })));
    }
    panel.total.textContent = panel.uncounted ? panel.uncounted
      : last ? `now ${fmtRate(last.total)} ${panel.unit} in total` : 'waiting for a second reading…';
    drawChart(panel, state.history.get(p.name) || []);
  }

  // drawChart stacks each backend's share of the pool's traffic over the
  // last two minutes. Readings without traffic leave a gap.
  function drawChart(panel, hist) {
    const c = panel.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const left = 38, right = 8, top = 8, bottom = 20;
    const pw = w - left - right, ph = h - top - bottom;
    const now = performance.now();
    const x = (t) => left + pw * (1 - (now - t) / HISTORY_MS);
    const y = (f) => top + ph * (1 - f);

    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#667085';
    g.strokeStyle = '#e6eaf0';
    g.lineWidth = 1;
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      g.beginPath(); g.moveTo(left, Math.round(y(f)) + 0.5); g.lineTo(left + pw, Math.round(y(f)) + 0.5); g.stroke();
      g.textAlign = 'right'; g.textBaseline = 'middle';
      g.fillText(Math.round(f * 100) + '%', left - 6, y(f));
    }
    g.textAlign = 'center'; g.textBaseline = 'top';
    for (const [label, ago] of [['−2 min', HISTORY_MS], ['−1 min', HISTORY_MS / 2], ['now', 0]]) {
      g.textAlign = ago === HISTORY_MS ? 'left' : ago === 0 ? 'right' : 'center';
      g.fillText(label, x(now - ago), top + ph + 5);
    }

    // Split the history into runs of readings with traffic, each drawn as
    // stacked bands.
    const runs = [];
    let run = [];
    for (const s of hist) {
      if (s.total > 0) run.push(s);
      else if (run.length) { runs.push(run); run = []; }
    }
    if (run.length) runs.push(run);
    g.save();
    g.beginPath(); g.rect(left, top, pw, ph); g.clip();
    for (const rn of runs) {
      const cum = rn.map(() => 0);
      panel.names.forEach((name, i) => {
        const lo = cum.slice();
        rn.forEach((s, j) => { cum[j] += (s.rates[name] || 0) / s.total; });
        g.beginPath();
        if (rn.length === 1) {
          // One reading: a thin column, so that it shows at all.
          const xs = x(rn[0].t);
          g.rect(xs - 2, y(cum[0]), 4, y(lo[0]) - y(cum[0]));
        } else {
          rn.forEach((s, j) => { if (j) g.lineTo(x(s.t), y(cum[j])); else g.moveTo(x(s.t), y(cum[j])); });
          for (let j = rn.length - 1; j >= 0; j--) g.lineTo(x(rn[j].t), y(lo[j]));
          g.closePath();
        }
        g.fillStyle = panel.colors[i];
        g.globalAlpha = 0.85;
        g.fill();
      });
    }
    g.restore();
    if (!runs.length) {
      g.fillStyle = '#667085'; g.textAlign = 'center'; g.textBaseline = 'middle';
      g.fillText(panel.uncounted ? 'not counted here' : 'no traffic yet', left + pw / 2, top + ph / 2);
    }
  }

  showToken();
  loop();
})();
