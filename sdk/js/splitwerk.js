// Splitwerk browser snippet: assigns variants, reports conversions, one global `splitwerk`.
// Plain ES2017+ classic script, served by the Splitwerk server at /sdk.js. Rules (STYLE.md 3.8):
// nothing here ever throws into the page, nothing blocks rendering, and `track` never makes
// the page wait on the network. Every failure path ends in the control variant.
(function (w) {
  'use strict';
  if (w.splitwerk) return; // loaded twice: the first instance keeps its state and queue

  const VERSION = '0.1.0';
  const COOKIE = 'splitwerk_vid'; // also read when the shop's backend set it (outlives ITP's 7-day cap)
  const COOKIE_MAX_AGE = 31536000; // one year in seconds, under Chrome's 400-day cookie cap
  const SOURCE_KEY = 'splitwerk_source'; // sessionStorage key of the session's first touch
  const HIDE_CLASS = 'splitwerk-loading'; // on <html> while anti-flicker hides [data-splitwerk]
  const TIMEOUT_MS = 800; // default wait for /v1/assign and /v1/config: past it a delay costs more than a variant
  const ANTI_FLICKER_MS = 800; // default hard cap on hiding, so a dead server never hides content long
  const FLUSH_MS = 2000; // events wait this long (+ jitter) to share one beacon with their neighbours
  const FLUSH_JITTER_MS = 500; // spreads flushes of many tabs opened at once
  const BATCH_SIZE = 20; // events per beacon: keeps a body far below the 64 KB keepalive limit
  const QUEUE_SIZE = 100; // events held at most; more are dropped and counted (STYLE.md rule 34)
  // Words of a referrer's host name or of a utm_source value that name a traffic source; the
  // first source (in this order) with a matching word wins.
  const SOURCE_WORDS = {
    facebook: 'facebook fb',
    instagram: 'instagram ig',
    youtube: 'youtube youtu yt',
    twitter: 'twitter',
    tiktok: 'tiktok',
    newsletter: 'newsletter email mail',
    search: 'google bing duckduckgo ecosia yahoo qwant',
  };
  // Parameters that ad platforms append to their links.
  const CLICK_IDS = {
    fbclid: 'facebook',
    gclid: 'search',
    wbraid: 'search',
    gbraid: 'search',
    ttclid: 'tiktok',
    igshid: 'instagram',
  };

  const debug = (...args) => {
    try {
      console.debug('splitwerk:', ...args);
    } catch (e) {} // even logging must not throw (a page may replace console)
  };
  // Runs one step of start-up or bookkeeping so that its failure skips only that step.
  const attempt = (fn) => {
    try {
      return fn();
    } catch (e) {
      debug(e);
    }
  };

  // ---- pure core: no DOM, no network, no clock --------------------------------------------

  /** MurmurHash3 x86 32-bit of `bytes` (Uint8Array), as an unsigned integer. */
  function murmur3(bytes, seed) {
    const imul = Math.imul;
    const mix = (k) => imul(rotate(imul(k, 0xcc9e2d51), 15), 0x1b873593);
    let h = seed;
    let k = 0;
    let i = 0;
    // one byte at a time, little-endian into k; every fourth byte completes a block
    for (; i < bytes.length; i++) {
      k |= bytes[i] << ((i & 3) * 8);
      if ((i & 3) === 3) {
        h = imul(rotate(h ^ mix(k), 13), 5) + 0xe6546b64;
        k = 0;
      }
    }
    if (i & 3) h ^= mix(k);
    h ^= i;
    h = imul(h ^ (h >>> 16), 0x85ebca6b);
    h = imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }
  const rotate = (x, bits) => (x << bits) | (x >>> (32 - bits));

  /** Bucket 0..9999 of a visitor for a salt (spec/ASSIGNMENT.md): UTF-8 bytes, seed 1. */
  function bucket(visitor, salt) {
    return Math.floor((murmur3(new TextEncoder().encode(visitor + salt), 1) * 10000) / 4294967296);
  }

  const isObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);
  const isOperators = (x) => isObject(x) && Object.keys(x).every((k) => k[0] === '$');
  // JSON equality as the server compares: arrays element by element, objects in any key order;
  // an array attribute is not searched (only $in looks inside it).
  const equals = (a, b) =>
    Array.isArray(b)
      ? Array.isArray(a) && a.length === b.length && b.every((x, i) => equals(a[i], x))
      : isObject(b)
        ? isObject(a) && Object.keys(a).length === Object.keys(b).length && Object.keys(b).every((k) => k in a && equals(a[k], b[k]))
        : a === b;
  const within = (a, b) => Array.isArray(b) && (Array.isArray(a) ? a : [a]).some((x) => b.some((y) => equals(x, y)));
  // Ordering only between two numbers or two strings; anything else does not match.
  const ordered = (a, b, test) =>
    typeof a === typeof b && (typeof a === 'number' || typeof a === 'string') && test(a, b);

  const OPERATORS = {
    $eq: equals,
    $ne: (a, b) => !equals(a, b),
    $in: within,
    $nin: (a, b) => Array.isArray(b) && !within(a, b),
    $gt: (a, b) => ordered(a, b, (x, y) => x > y),
    $gte: (a, b) => ordered(a, b, (x, y) => x >= y),
    $lt: (a, b) => ordered(a, b, (x, y) => x < y),
    $lte: (a, b) => ordered(a, b, (x, y) => x <= y),
    $exists: (a, b) => (a !== null) === !!b,
    $not: (a, b) => !test(a, b),
  };

  function test(actual, expected) {
    if (!isOperators(expected)) return equals(actual, expected);
    // An unknown operator fails the match: control is the safe answer, never a guess.
    return Object.keys(expected).every((op) => OPERATORS[op] && OPERATORS[op](actual, expected[op]));
  }

  // Operators this snippet evaluates; a condition with any other one targets nobody here
  // (control), even under $not: the server's full language is never guessed at. No $regex:
  // the browser's backtracking RegExp can freeze a page on a pattern like (a+)+$.
  const KNOWN = /^\$(and|or|nor|not|eq|ne|in|nin|gt|gte|lt|lte|exists)$/;
  const isKnown = (c) =>
    Array.isArray(c) ? c.every(isKnown) : !isObject(c) || Object.keys(c).every((k) => (k[0] !== "$" || KNOWN.test(k)) && isKnown(c[k]));

  /** Whether `attributes` satisfy MongoDB-style `conditions` (null matches everyone). */
  function matches(conditions, attributes) {
    if (!conditions) return true;
    if (!isKnown(conditions)) return false;
    return Object.keys(conditions).every((key) => {
      const value = conditions[key];
      if (key === '$and') return value.every((c) => matches(c, attributes));
      if (key === '$or') return value.some((c) => matches(c, attributes));
      if (key === '$nor') return !value.some((c) => matches(c, attributes));
      if (key === '$not') return !matches(value, attributes);
      // "a.b" reaches into nested attributes, as in MongoDB; missing is null, as on the server
      const actual = key.split('.').reduce((o, part) => (isObject(o) ? o[part] ?? null : null), attributes);
      return test(actual, value);
    });
  }

  const answer = (variant, payload, enrolled, reason) => ({ variant, payload, enrolled, reason });

  /** The assignment of a visitor to an experiment (spec steps 1, 3, 4, 5). */
  function evaluate(experiment, visitor, attributes) {
    const variants = experiment.variants || [];
    const control = variants[0] || {};
    const layer = experiment.layer;
    const coverage = experiment.coverage;
    const status = experiment.status;
    const miss = (reason) => answer(control.key, control.payload, false, reason);
    if (status !== 'running') {
      const winner = status === 'stopped' && variants.find((v) => v.key === experiment.winner);
      return winner ? answer(winner.key, winner.payload, false, status) : miss(status);
    }
    if (!matches(experiment.conditions, attributes || {})) return miss('conditions');
    if (layer) {
      const slot = bucket(visitor, layer.salt);
      if (slot < layer.start || slot >= layer.end) return miss('layer');
    }
    const b = bucket(visitor, experiment.salt || experiment.key);
    let cum = 0;
    for (const v of variants) {
      // width shrinks with coverage, but cum moves by the whole allocation, so ramping
      // coverage up never moves a visitor who is already in (spec "Why it is built this way")
      if (b >= cum && b < cum + Math.floor((v.allocation * coverage) / 10000)) {
        return answer(v.key, v.payload, true, 'running');
      }
      cum += v.allocation;
    }
    return miss('coverage');
  }

  /** Traffic source of a landing page: a click id, UTM tags, then the referrer's domain. */
  function detectSource(href, referrer) {
    const url = new URL(href);
    const get = (name) => (url.searchParams.get(name) || '').toLowerCase();
    const medium = get('utm_medium');
    const utm = get('utm_source');
    const named = (name) => {
      const words = name.split(/[^a-z]+/);
      // x.com and t.co are too short to be found as words without false hits
      if (/(^|\.)(x\.com|t\.co)$|^x$/.test(name)) return 'twitter';
      return Object.keys(SOURCE_WORDS).find((source) =>
        SOURCE_WORDS[source].split(' ').some((word) => words.includes(word))
      );
    };
    if (/^(e-?mail|newsletter)$/.test(medium)) return 'newsletter';
    const tagged = utm && named(utm);
    if (tagged) return tagged;
    const clickId = Object.keys(CLICK_IDS).find((id) => url.searchParams.has(id));
    if (clickId) return CLICK_IDS[clickId];
    if (utm) return 'other';
    let host;
    try {
      host = new URL(referrer).hostname; // the URL parser lower-cases host names
    } catch (e) {
      return 'direct'; // no referrer, or not a URL
    }
    // A referrer from the shop itself carries no source (GA counts it as direct, too).
    const site = (name) => name.replace(/^www\./, '');
    if (site(host) === site(url.hostname)) return 'direct';
    return named(host) || 'other';
  }

  // ---- the page: options, visitor, storage ------------------------------------------------

  const doc = w.document;
  const nav = w.navigator;
  const api = { version: VERSION, dropped: 0, core: { bucket, matches, evaluate, detectSource } };
  const cache = {}; // experiment -> Promise of its assignment, one request per experiment per page
  const served = {}; // experiment -> assignment shown on this page (for enrolment after consent)
  const exposed = {}; // experiment -> true once its exposure event is queued (local mode)
  const events = [];
  let options = {};
  let base = '';
  let granted = true;
  let visitor = '';
  let attributes = {};
  let config; // Promise of /v1/config (local mode)
  const known = {}; // experiment key -> its configuration from /v1/config, once loaded
  let batch; // experiments waiting for the next /v1/assign, collected over one microtask
  let pending = 0; // requests in flight, for anti-flicker
  let flushTimer = 0;
  let blockedUntil = 0; // Date.now() before which the server asked us (Retry-After) to stay away
  let revealed = false;
  let domReady = Promise.resolve();

  const storage = () => {
    try {
      return w.sessionStorage;
    } catch (e) {} // blocked storage throws on access: then nothing is kept
  };

  function newId() {
    const c = w.crypto;
    if (c.randomUUID) return c.randomUUID(); // missing outside secure contexts (plain http)
    const b = c.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; // RFC 4122 version 4 ...
    b[8] = (b[8] & 63) | 128; // ... and variant bits
    const hex = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('');
    return hex.replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
  }

  function readCookie() {
    const m = doc.cookie.match(/(?:^|;\s*)splitwerk_vid=([^;]+)/); // the name in COOKIE
    const id = m && decodeURIComponent(m[1]);
    return id && id.length <= 128 ? id : '';
  }

  function writeCookie(value, maxAge) {
    const secure = w.location.protocol === 'https:' ? '; Secure' : '';
    doc.cookie = `${COOKIE}=${encodeURIComponent(value)}; Path=/; Max-Age=${maxAge}; SameSite=Lax${secure}`;
  }

  // The persistent visitor: the cookie, else the given id stored as the cookie.
  function persistVisitor(id) {
    const stored = readCookie();
    if (!stored) writeCookie(id, COOKIE_MAX_AGE);
    return stored || id;
  }

  function persistSource() {
    const s = storage();
    const first = s && s.getItem(SOURCE_KEY);
    if (first) attributes.source = first;
    else if (s) s.setItem(SOURCE_KEY, attributes.source);
  }

  // ---- network ----------------------------------------------------------------------------

  // POST text/plain JSON (or GET without a body): a CORS simple request, so no preflight.
  // Resolves to the parsed response or rejects; never waits longer than timeoutMs.
  function request(path, body) {
    if (!base || Date.now() < blockedUntil) return Promise.reject(new Error('unavailable'));
    const controller = new AbortController();
    let timer;
    const timeout = new Promise((resolve, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new Error('timeout'));
      }, options.timeoutMs);
    });
    const init = { method: body ? 'POST' : 'GET', body, signal: controller.signal };
    // new Promise(...) turns a fetch that throws synchronously into a rejection
    const response = new Promise((resolve) => resolve(w.fetch(base + path, init))).then((r) => {
      const retryAfter = parseFloat(r.headers.get('Retry-After'));
      if (retryAfter > 0) blockedUntil = Date.now() + retryAfter * 1000;
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    });
    // a fetch that ignores its abort signal still loses the race against the timer
    return Promise.race([response, timeout]).finally(() => clearTimeout(timer));
  }

  function flush() {
    clearTimeout(flushTimer);
    flushTimer = 0;
    while (granted && base && events.length) {
      const body = JSON.stringify({
        events: events.splice(0, BATCH_SIZE).map((e) => Object.assign(e, { visitor })),
      });
      const url = base + 'v1/events';
      // sendBeacon survives the page's unload; false means the browser refused to queue it
      if (!(nav.sendBeacon && nav.sendBeacon(url, body))) {
        w.fetch(url, { method: 'POST', body, keepalive: true }).catch(debug);
      }
    }
  }

  function queueEvent(event) {
    if (events.length >= QUEUE_SIZE) {
      api.dropped++;
      return;
    }
    event.id = newId(); // lets the server drop a batch that arrives twice
    events.push(event);
    if (events.length >= BATCH_SIZE) flush();
    else flushTimer = flushTimer || setTimeout(api.flush, FLUSH_MS + Math.random() * FLUSH_JITTER_MS);
  }

  // ---- assignment -------------------------------------------------------------------------

  function expose(experiment, a) {
    if (options.local && granted && a.enrolled && !exposed[experiment]) {
      exposed[experiment] = true;
      queueEvent({ type: 'exposure', experiment, variant: a.variant, attributes });
    }
  }

  // experiments -> { experiment: raw assignment }, from the server or from /v1/config
  function fetchAssignments(list) {
    if (options.local) {
      config = config || request('v1/config').then((c) => c.experiments.forEach((e) => (known[e.key] = e)));
      return config.then(() => {
        const result = {};
        (list.length ? list : Object.keys(known)).forEach((key) => {
          result[key] = known[key]
            ? evaluate(known[key], visitor, attributes)
            : answer(null, null, false, 'unknown_experiment');
        });
        return result;
      });
    }
    const body = { visitor, attributes, consent: granted };
    if (list.length) body.experiments = list;
    return request('v1/assign', JSON.stringify(body)).then((r) => r.assignments);
  }

  // Normalises one raw assignment; anything missing or broken becomes the control: the first
  // variant from /v1/config when that was loaded, else the conventional name.
  function settle(experiment, raw, reason) {
    const a = isObject(raw) ? raw : answer(null, null, false, reason || 'error');
    const first = ((known[experiment] || {}).variants || [])[0] || {};
    const payload = a.payload === undefined ? null : a.payload;
    const result = answer(a.variant || first.key || 'control', payload, !!a.enrolled, a.reason);
    if (a === raw) served[experiment] = result; // a fallback was not the server's answer: never enrol it
    expose(experiment, result);
    return result;
  }

  function run(list) {
    pending++;
    return Promise.resolve(list)
      .then(fetchAssignments)
      .then(
        (assignments) => assignments || {},
        (error) => {
          debug(error);
          return { $reason: error.message === 'timeout' ? 'timeout' : 'error' };
        }
      )
      .finally(() => {
        pending--;
        domReady.then(() => setTimeout(() => pending || reveal()));
      });
  }

  // Promise of the assignment of one experiment; calls within one microtask share a request.
  function assignment(experiment) {
    if (!cache[experiment]) {
      if (!batch) {
        const list = (batch = []);
        list.result = Promise.resolve().then(() => {
          batch = null;
          return run(list);
        });
      }
      batch.push(experiment);
      cache[experiment] = batch.result.then((all) => settle(experiment, all[experiment], all.$reason));
    }
    return cache[experiment];
  }

  function assignAll(list) {
    const keys = list && list.length ? list : options.experiments;
    return (
      keys.length
        ? Promise.all(keys.map((key) => assignment(key).then((a) => [key, a])))
        : // nothing named: whatever the server (or the config) returns for this visitor
          run([]).then((all) =>
            Object.keys(all)
              .filter((key) => key !== '$reason')
              .map((key) => [key, settle(key, all[key])])
          )
    ).then(Object.fromEntries);
  }

  // ---- anti-flicker -----------------------------------------------------------------------

  // Hides only [data-splitwerk] elements while <html> has HIDE_CLASS. The rule goes into a
  // constructed stylesheet, which a Content-Security-Policy style-src does not govern; where
  // those are missing it falls back to a <style> carrying this script's nonce. A shop with a
  // strict CSP and no nonce puts `.splitwerk-loading [data-splitwerk]{visibility:hidden}`
  // into its own stylesheet; the class alone then does the job.
  function hide(nonce) {
    const rule = `.${HIDE_CLASS} [data-splitwerk]{visibility:hidden}`;
    doc.documentElement.classList.add(HIDE_CLASS);
    setTimeout(reveal, options.antiFlickerMs);
    try {
      const sheet = new w.CSSStyleSheet();
      sheet.replaceSync(rule);
      doc.adoptedStyleSheets = doc.adoptedStyleSheets.concat(sheet);
    } catch (e) {
      const style = doc.createElement('style');
      style.nonce = nonce || '';
      style.textContent = rule;
      (doc.head || doc.documentElement).appendChild(style);
    }
  }

  function reveal() {
    if (revealed) return;
    revealed = true;
    try {
      doc.documentElement.classList.remove(HIDE_CLASS);
    } catch (e) {
      debug(e);
    }
  }

  // ---- public API -------------------------------------------------------------------------

  // Wraps a public function: no exception, and no rejected promise, ever reaches the page.
  function guard(name, fn, fallback) {
    api[name] = function () {
      try {
        const result = fn.apply(null, arguments);
        return result && result.then ? result.catch((e) => (debug(e), fallback.apply(null, arguments))) : result;
      } catch (e) {
        debug(e);
        return fallback.apply(null, arguments);
      }
    };
  }
  const nothing = () => {};

  /** Promise of the variant key of `experiment` for this visitor. */
  guard('variant', (experiment) => assignment(String(experiment)).then((a) => a.variant), () =>
    Promise.resolve('control')
  );

  /** Promise of {experiment: {variant, payload, enrolled, reason}}, one request for the list. */
  guard('assign', assignAll, (list) =>
    Promise.resolve(Object.fromEntries([].concat(list || []).map((key) => [key, answer('control', null, false, 'error')])))
  );

  /** Calls `callback(variant, payload)` once the variant is known and the DOM is parsed. */
  guard(
    'onVariant',
    (experiment, callback) => {
      assignment(String(experiment))
        .then((a) => domReady.then(() => callback(a.variant, a.payload)))
        .catch(debug);
    },
    nothing
  );

  /** Queues a conversion of `goal`; `props.value` is an optional decimal amount. */
  guard(
    'track',
    (goal, props) => {
      props = props || {};
      const value = props.value;
      // Orders and refunds carry money and come only from the shop's backend (ingest key).
      if ((props.type || 'conversion') !== 'conversion' || typeof goal !== 'string' || !/^.{1,128}$/.test(goal)) {
        debug('track refused', goal);
        return;
      }
      const event = { type: 'conversion', goal, ts: Math.floor(Date.now() / 1000) };
      // only whitelisted fields leave the page: never `revenue`, never arbitrary props
      if (value !== undefined && /^-?\d+(\.\d+)?$/.test(String(value))) event.value = String(value);
      queueEvent(event);
    },
    nothing
  );

  /** Records the visitor's consent decision (needed first with data-consent-mode="required"). */
  guard(
    'consent',
    (yes) => {
      yes = !!yes;
      if (yes === granted) return;
      granted = yes;
      const s = storage();
      if (!yes) {
        // withdrawn: remove what we stored, send nothing that is still queued
        events.length = 0;
        writeCookie('', 0);
        if (s) s.removeItem(SOURCE_KEY);
        return;
      }
      const pageId = visitor;
      visitor = persistVisitor(pageId);
      persistSource();
      // The page id became the cookie: what this page showed can now be enrolled. A different
      // (backend) id may bucket differently, so it is enrolled from the next page on instead.
      const shown = Object.keys(served);
      if (visitor === pageId && shown.length) {
        if (options.local) shown.forEach((key) => expose(key, served[key]));
        else request('v1/assign', JSON.stringify({ visitor, experiments: shown, attributes, consent: true })).catch(debug);
      }
      flush();
    },
    nothing
  );

  /** Sends queued events now (they are also sent on a timer and when the page is hidden). */
  guard('flush', flush, nothing);

  // ---- start ------------------------------------------------------------------------------

  api.ready = Promise.resolve({});
  w.splitwerk = api;
  try {
    const script = doc.currentScript || doc.querySelector('script[src*="sdk.js"]');
    const o = Object.assign({}, script && script.dataset, w.splitwerkConfig);
    const flag = (x) => x === true || x === 'true' || x === '';
    const ms = (x, fallback) => (+x > 0 ? +x : fallback);
    options = {
      timeoutMs: ms(o.timeoutMs, TIMEOUT_MS),
      antiFlickerMs: ms(o.antiFlickerMs, ANTI_FLICKER_MS),
      local: flag(o.local),
      // "a,b" from data-experiments, or an array from splitwerkConfig (String() joins it with commas)
      experiments: String(o.experiments || '')
        .split(',')
        .map((e) => e.trim())
        .filter(Boolean),
    };
    // The server is where this script came from (a path prefix such as /ab/sdk.js included),
    // unless splitwerkConfig.server or data-server says otherwise.
    granted = o.consentMode !== 'required';
    // Without consent: a per-page id and nothing stored, so nothing outlives the page.
    visitor = newId();
    attributes = Object.assign(
      { source: attempt(() => detectSource(w.location.href, doc.referrer)) || 'other' },
      isObject(o.attributes) ? o.attributes : {}
    );
    if (granted) {
      attempt(() => (visitor = persistVisitor(visitor))); // document.cookie throws in sandboxed frames
      attempt(persistSource);
    }
    if (doc.readyState === 'loading') {
      domReady = new Promise((resolve) => doc.addEventListener('DOMContentLoaded', resolve));
    }
    if (flag(o.antiFlicker)) {
      attempt(() => hide(script && script.nonce));
      domReady.then(() => setTimeout(() => pending || batch || reveal()));
    }
    base =
      attempt(() => (o.server ? String(o.server).replace(/\/?$/, '/') : new URL('.', script.src).href)) || '';
    doc.addEventListener('visibilitychange', () => doc.visibilityState === 'hidden' && api.flush());
    w.addEventListener('pagehide', api.flush);
    if (options.experiments.length) api.ready = api.assign(options.experiments);
  } catch (e) {
    debug(e);
    reveal();
  }
})(window);
