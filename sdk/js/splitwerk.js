// Splitwerk browser snippet: assigns variants, reports conversions, one global `splitwerk`.
// Plain ES2020 classic script, loaded asynchronously by the embed code (server/services/
// install.py) and served minified and compressed as /sdk.js. Rules (STYLE.md 3.8): nothing here
// ever throws into the page, nothing blocks rendering, and `track` never makes the page wait
// on the network. Every failure path ends in the control variant, or in the variant this
// browser stored for a visitor who consented.
(function (w) {
  const stub = w.splitwerk; // the embed's command queue, or an instance loaded before this one
  if (stub?.version) return; // loaded twice: the first instance keeps its state and queue

  const VERSION = '0.2.0';
  const COOKIE = 'splitwerk_vid'; // also read when the shop's backend set it (outlives ITP's 7-day cap)
  const COOKIE_MAX_AGE = 31536000; // one year in seconds, under Chrome's 400-day cookie cap
  const SOURCE_KEY = 'splitwerk_source'; // sessionStorage key of the session's first touch
  const STORED_KEY = 'splitwerk_variants'; // localStorage: enrolled variants, for outages (consent only)
  const HIDE_CLASS = 'splitwerk-loading'; // on <html> while the embed hides [data-splitwerk-hide]
  const TIMEOUT_MS = 800; // default wait for /v1/assign and /v1/config: past it a delay costs more than a variant
  const FLUSH_MS = 2000; // events wait this long (+ jitter) to share one beacon with their neighbours
  const FLUSH_JITTER_MS = 500; // spreads flushes of many tabs opened at once
  const BATCH_SIZE = 20; // events per beacon: keeps a body far below the 64 KB keepalive limit
  const QUEUE_SIZE = 100; // events held at most; more are dropped and counted (STYLE.md rule 34)
  // Traffic sources, in the order they are tried: each source's name, then the other words of a
  // referrer's host name or of a utm_source value that name it, and the click ids (the
  // parameters that ad platforms append to their links; each ends in "id", no other word does).
  const SOURCES =
    'facebook fb fbclid,instagram ig igshid,youtube youtu yt,twitter,tiktok ttclid,newsletter email mail,' +
    'search google bing duckduckgo ecosia yahoo qwant gclid wbraid gbraid';

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
  const murmur3 = (bytes, seed) => {
    const imul = Math.imul;
    const mix = (k) => imul(rotate(imul(k, 0xcc9e2d51), 15), 0x1b873593);
    let h = seed;
    let k = 0;
    // one byte at a time, little-endian into k (a shift count is taken mod 32); every fourth
    // byte completes a block
    bytes.forEach((byte, i) => {
      k |= byte << (i * 8);
      if ((i & 3) === 3) {
        h = imul(rotate(h ^ mix(k), 13), 5) + 0xe6546b64;
        k = 0;
      }
    });
    h ^= mix(k) ^ bytes.length; // the tail (after a whole block k is 0, and mix(0) is 0), the length
    h = imul(h ^ (h >>> 16), 0x85ebca6b);
    h = imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  };
  const rotate = (x, bits) => (x << bits) | (x >>> (32 - bits));

  /** Bucket 0..9999 of a visitor for a salt (spec/ASSIGNMENT.md): UTF-8 bytes, seed 1. */
  const bucket = (visitor, salt) => {
    return ((murmur3(new TextEncoder().encode(visitor + salt), 1) * 10000) / 2 ** 32) | 0; // floor of 0..9999
  };

  const isArray = Array.isArray;
  const isObject = (x) => x && typeof x === 'object' && !isArray(x); // falsy or true
  const keys = Object.keys;
  // An own property only: an attribute named toString or constructor is not Object.prototype's.
  const has = (o, k) => ({}).hasOwnProperty.call(o, k);
  const own = (o, k) => (isObject(o) && has(o, k) ? o[k] ?? null : null);
  // JSON equality as the server compares: arrays element by element, objects in any key order;
  // an array attribute is not searched (only $in looks inside it).
  const equals = (a, b) =>
    a === b ||
    (typeof a === 'object' &&
      typeof b === 'object' &&
      !!a &&
      !!b &&
      isArray(a) === isArray(b) &&
      keys(a).length === keys(b).length &&
      keys(b).every((k) => has(a, k) && equals(a[k], b[k])));
  // an attribute, or each element of an array attribute, against each element of the operand
  const within = (a, b) => [].concat(a).some((x) => b.some((y) => equals(x, y)));
  // Strings compare by code point, as Python does (JS's < compares UTF-16 units, which puts
  // an emoji before U+E000..U+FFFF): as fixed-width hex of their code points. Numbers by value.
  const sortable = (x) =>
    typeof x === 'string' ? [...x].map((c) => c.codePointAt().toString(16).padStart(6, 0)).join('') : x;
  const ORDERS = { $gt: (a, b) => a > b, $gte: (a, b) => a >= b, $lt: (a, b) => a < b, $lte: (a, b) => a <= b };
  // Thrown while compiling what only the server evaluates: $regex (the browser's backtracking
  // RegExp can freeze a page on a pattern like (a+)+$, the server's engine is linear), $type,
  // $size, $all, $elemMatch, and integers beyond 2^53 (JSON.parse has already rounded them).
  const SERVER = {};
  const refuse = (what) => {
    throw new Error('condition ' + what); // what the server refuses (core/conditions.py)
  };
  // A JSON literal of a condition; a rounded integer is left to the server.
  const literal = (v) => {
    if (typeof v === 'number' && Math.abs(v) >= 2 ** 53) throw SERVER; // an integer, rounded or not
    if (v && typeof v === 'object') Object.values(v).map(literal);
    return v;
  };
  const all = (tests) => (x) => tests.every((t) => t(x));
  const not = (test) => (x) => !test(x);

  // A test of one attribute value: a literal (equality) or an object of operators.
  const value = (operand) => {
    if (isObject(operand)) {
      const names = keys(operand);
      const count = names.filter((k) => k[0] === '$').length;
      if (!names.length || (count && count < names.length)) refuse(names);
      if (count) return all(names.map((name) => operator(name, operand[name])));
    }
    literal(operand);
    return (x) => equals(x, operand);
  };

  const operator = (name, b) => {
    if (name === '$not') return not(value(b));
    if (/^\$(all|elemMatch|size|regex|type)$/.test(name)) throw SERVER;
    if (name === '$exists') {
      if (typeof b !== 'boolean') refuse(name);
      return (x) => (x !== null) === b;
    }
    if (/^\$n?in$/.test(name)) {
      if (!isArray(literal(b))) refuse(name);
      return (x) => within(x, b) === (name === '$in');
    }
    if (ORDERS[name]) {
      // ordering only between two numbers or two strings; anything else does not match
      if (!/^(number|string)$/.test(typeof literal(b))) refuse(name);
      return (x) => typeof x === typeof b && ORDERS[name](sortable(x), sortable(b));
    }
    if (!/^\$(eq|ne)$/.test(name)) refuse(name);
    literal(b);
    return (x) => equals(x, b) === (name === '$eq');
  };

  // A condition compiled into a test of the attributes; throws as the server refuses.
  const condition = (c) => {
    if (!isObject(c)) refuse(c);
    return all(
      keys(c).map((key) => {
        const v = c[key];
        if (/^\$(and|or|nor)$/.test(key)) {
          // an empty list is refused, as on the server: more likely a mistake than an intent
          if (!isArray(v) || !v.length) refuse(key);
          const parts = v.map(condition);
          const any = (a) => parts.some((p) => p(a));
          return key === '$and' ? all(parts) : key === '$or' ? any : not(any);
        }
        if (key === '$not') return not(condition(v));
        const path = key.split('.');
        if (key[0] === '$' || !path.every(Boolean)) refuse(key);
        const test = value(v);
        // "a.b" reaches into nested attributes; missing is null, as on the server
        return (a) => test(path.reduce(own, a));
      })
    );
  };

  /**
   * Whether `attributes` satisfy MongoDB-style `conditions` (null matches everyone); null when
   * only the server can tell. Throws for a condition the server refuses.
   */
  const matches = (conditions, attributes) => {
    if (!conditions) return true;
    try {
      return condition(conditions)(attributes);
    } catch (e) {
      if (e === SERVER) return null;
      throw e;
    }
  };

  const answer = (variant, payload, enrolled, reason) => ({ variant, payload, enrolled, reason });

  /**
   * The assignment of a visitor to an experiment (spec steps 1, 3, 4, 5), with the server's
   * reason names; null when the server must decide (see matches).
   */
  const evaluate = (experiment, visitor, attributes) => {
    const { variants, layer, coverage, status } = experiment;
    // the answer with variant `v` of the configuration, by default the control; only a
    // running experiment enrols
    const pick = (reason, v = variants[0] || {}) => answer(v.key, v.payload, reason === 'running', reason);
    if (status !== 'running') {
      const winner = variants.find((v) => status === 'stopped' && v.key === experiment.winner);
      return pick(winner ? 'winner' : /^(paused|stopped)$/.test(status) ? status : 'not_running', winner);
    }
    const isMatch = matches(experiment.conditions, attributes); // none: every attribute is null
    if (isMatch === null) return null;
    if (!isMatch) return pick('not_targeted');
    if (layer) {
      const slot = bucket(visitor, layer.salt);
      if (slot < layer.start || slot >= layer.end) return pick('layer');
    }
    let b = bucket(visitor, experiment.salt || experiment.key);
    // the variant whose allocation holds the bucket; of it, the share `coverage` counts: the
    // width shrinks with coverage, but the allocations stay where they are, so ramping coverage
    // up never moves a visitor who is already in (spec "Why it is built this way")
    const v = variants.find((v) => (b -= v.allocation) < 0);
    return v && b + v.allocation < Math.floor((v.allocation * coverage) / 10000)
      ? pick('running', v)
      : pick('outside_coverage');
  };

  /** Traffic source of a landing page: a click id, UTM tags, then the referrer's domain. */
  const detectSource = (href, referrer) => {
    const url = new URL(href);
    const params = url.searchParams;
    const get = (name) => (params.get(name) || '').toLowerCase();
    const utm = get('utm_source');
    // the name of the first source with a word that passes `test`
    const find = (test) => SOURCES.split(',').map((words) => words.split(' ')).find((words) => words.some(test))?.[0];
    // x.com and t.co are too short to be found as words without false hits
    const named = (name) =>
      /(^|\.)(x\.com|t\.co)$|^x$/.test(name) ? 'twitter' : find((word) => name.split(/[^a-z]+/).includes(word));
    let host = url.hostname;
    try {
      host = new URL(referrer).hostname; // the URL parser lower-cases host names
    } catch (e) {} // no referrer, or not a URL: as from the shop itself (direct)
    // A referrer from the shop itself carries no source (GA counts it as direct, too).
    const site = (name) => name.replace(/^www\./, '');
    return /^(e-?mail|newsletter)$/.test(get('utm_medium'))
      ? 'newsletter'
      : (utm && named(utm)) ||
          find((word) => /id$/.test(word) && params.has(word)) ||
          (utm ? 'other' : site(host) === site(url.hostname) ? 'direct' : named(host) || 'other');
  };

  // ---- the page: options, visitor, storage ------------------------------------------------

  const doc = w.document;
  const cache = {}; // experiment -> Promise of its assignment, one request per experiment per page
  const exposed = {}; // experiment -> true once its exposure event is queued (local mode)
  const events = [];
  // Set by start from the options (undefined until then: falsy, like false, '' and 0).
  let timeoutMs = TIMEOUT_MS;
  let options = {}; // splitwerkConfig over the script's data-* attributes
  let experiments = [];
  let base;
  let granted = true;
  let visitor;
  let attributes;
  let config; // Promise of /v1/config (local mode)
  const known = {}; // experiment key -> its configuration from /v1/config, once loaded
  let batch; // experiments waiting for the next /v1/assign, collected over one microtask
  let pending = 0; // requests in flight, for anti-flicker
  let flushTimer;
  let blockedUntil; // Date.now() before which the server asked us (Retry-After) to stay away
  let late; // this script came after the embed's hiding ended: the page keeps the control
  let domReady = Promise.resolve();

  // A random id: a UUID, or (outside secure contexts, plain http, where randomUUID is missing)
  // the same 128 random bits as 32 hex digits.
  const newId = () => {
    const c = w.crypto;
    return c.randomUUID ? c.randomUUID() : [...c.getRandomValues(new Uint8Array(16))].map((x) => (x + 256).toString(16).slice(1)).join('');
  };

  // The value of cookie `name` (not of one whose name only ends like it), or undefined.
  // Browsers join the cookies with "; ".
  const readCookie = (name) => {
    const pair = doc.cookie.split('; ').find((c) => c.startsWith(name + '='));
    return pair && decodeURIComponent(pair.slice(name.length + 1));
  };

  const writeCookie = (value, maxAge) => {
    const secure = w.location.protocol === 'https:' ? '; Secure' : '';
    // the value is an id of newId() or empty: nothing to encode
    doc.cookie = `${COOKIE}=${value}; Path=/; Max-Age=${maxAge}; SameSite=Lax` + secure;
  };

  // The persistent visitor: the cookie (at most 128 characters), else a new id stored as the cookie.
  const persistVisitor = () => {
    let id = readCookie(COOKIE);
    if (!id || id.length > 128) writeCookie((id = newId()), COOKIE_MAX_AGE);
    return id;
  };

  // Blocked or missing storage throws (callers attempt this): then nothing is kept.
  const persistSource = () => {
    const s = w.sessionStorage;
    s.setItem(SOURCE_KEY, (attributes.source = s.getItem(SOURCE_KEY) || attributes.source));
  };

  // Consent in consent mode: the shop's consent cookie when one is configured ("name" or
  // "name=value"), else our own cookie, which only consent (ours or the backend's) writes.
  const hasConsent = () => {
    const [name, wanted] = String(options.consentCookie || COOKIE).split('=');
    const found = readCookie(name);
    return found && (!wanted || found === wanted);
  };

  // Removes everything this snippet stored (consent withdrawn).
  const forget = () => {
    events.length = 0;
    writeCookie('', 0);
    attempt(() => w.sessionStorage.removeItem(SOURCE_KEY));
    attempt(() => w.localStorage.removeItem(STORED_KEY));
  };

  // Variants this browser was enrolled in: {experiment: [variant, payload]} (consent only).
  const stored = () => attempt(() => JSON.parse(w.localStorage.getItem(STORED_KEY))) || {};

  // ---- network ----------------------------------------------------------------------------

  // POST text/plain JSON (or GET without a body): a CORS simple request, so no preflight.
  // Resolves to the parsed response or rejects (with 'timeout' when it took longer than
  // timeoutMs); never waits longer than that.
  const request = (path, body) => {
    // the executor turns a fetch that throws synchronously into a rejection
    return new Promise((resolve, reject) => {
      if (!base || Date.now() < blockedUntil) throw 'unavailable';
      const controller = new AbortController();
      // A fetch that ignores its abort signal still loses the race against the timer. The
      // timer is left to run: once the promise is settled, abort() and reject() change nothing.
      setTimeout(() => (controller.abort(), reject('timeout')), timeoutMs);
      w.fetch(base + path, { method: body && 'POST', body, signal: controller.signal })
        .then((r) => {
          const retryAfter = +r.headers.get('Retry-After');
          if (retryAfter > 0) blockedUntil = Date.now() + retryAfter * 1000;
          if (!r.ok) throw r; // for debug: the response
          return r.json();
        })
        .then(resolve, reject);
    });
  };

  const flush = () => {
    flushTimer = clearTimeout(flushTimer);
    while (granted && base && events.length) {
      const body = JSON.stringify({
        events: events.splice(0, BATCH_SIZE).map((e) => ({ ...e, visitor })),
      });
      const url = base + 'v1/events';
      // sendBeacon survives the page's unload; false means the browser refused to queue it
      if (!w.navigator.sendBeacon?.(url, body)) {
        w.fetch(url, { method: 'POST', body, keepalive: true }).catch(debug);
      }
    }
  };

  const queueEvent = (event) => {
    if (events.length >= QUEUE_SIZE) {
      api.dropped++;
      return;
    }
    event.id = newId(); // lets the server drop a batch that arrives twice
    events.push(event);
    if (events.length >= BATCH_SIZE) flush();
    else flushTimer = flushTimer || setTimeout(api.flush, FLUSH_MS + Math.random() * FLUSH_JITTER_MS);
  };

  // ---- assignment -------------------------------------------------------------------------

  // The CUPED covariate: a number (or numeric text, from data-covariate) within the server's
  // bounds, to the hundredth the server keeps; anything else is undefined, which JSON leaves
  // out (the server would refuse the whole request or batch).
  const covariate = (c = options.covariate) => (/\d/.test(c) && Math.abs(c) <= 1e6 ? Math.round(c * 100) / 100 : undefined);

  const remote = (list) => {
    const body = { visitor, attributes, consent: true, covariate: covariate() };
    if (list.length) body.experiments = list;
    return request('v1/assign', JSON.stringify(body)).then((r) => r.assignments);
  };

  // experiments -> { experiment: raw assignment }, from the server or from /v1/config. In local
  // mode the server decides the experiments whose conditions the browser cannot evaluate.
  const fetchAssignments = (list) => {
    if (!/^(true|)$/.test(options.local)) return remote(list); // true, "true" or a bare data-local
    config = config || request('v1/config').then((c) => c.experiments.forEach((e) => (known[e.key] = e)));
    return config.then(() => {
      const result = {};
      const rest = [];
      (list.length ? list : keys(known)).forEach((key) => {
        const a = known[key] ? attempt(() => evaluate(known[key], visitor, attributes)) : { reason: 'unknown_experiment' };
        if (a) {
          result[key] = a;
          if (a.enrolled && granted && !exposed[key]) {
            exposed[key] = true;
            queueEvent({ type: 'exposure', experiment: key, variant: a.variant, attributes, covariate: covariate() });
          }
        } else rest.push(key);
      });
      return rest.length ? remote(rest).then((r) => ({ ...result, ...r })) : result;
    });
  };

  // Normalises one raw assignment. Anything missing or broken becomes the variant stored for
  // this visitor (an outage), else the control: the first variant from /v1/config when that
  // was loaded, else the conventional name.
  const settle = (experiment, raw, reason) => {
    const isFresh = isObject(raw);
    const all = granted ? stored() : {};
    const saved = all[experiment];
    const a = isFresh ? raw : saved ? answer(...saved, true, reason) : { reason: reason || 'error' };
    const payload = a.payload ?? null;
    const result = answer(a.variant || known[experiment]?.variants[0]?.key || 'control', payload, !!a.enrolled, a.reason);
    if (granted && isFresh) {
      all[experiment] = result.enrolled ? [result.variant, payload] : undefined; // JSON leaves it out
      attempt(() => w.localStorage.setItem(STORED_KEY, JSON.stringify(all)));
    }
    return result;
  };

  const run = (list) => {
    pending++;
    const fail = (reason) => ({ $reason: reason });
    return Promise.resolve(list)
      .then((l) => (granted ? fetchAssignments(l) : fail('no_consent')))
      .then(
        (assignments) => assignments || {},
        (error) => {
          debug(error);
          return fail(error === 'timeout' ? error : 'error');
        }
      )
      .finally(() => {
        pending--;
        reveal();
      });
  };

  const hideClass = (method) => attempt(() => doc.documentElement.classList[method](HIDE_CLASS));
  // Whether the embed still hides the marked elements (false without the embed).
  const hiding = () => stub && hideClass('contains');
  const shown = () => answer('control', null, false, 'timeout');

  // Promise of the assignment of one experiment; calls within one microtask share a request.
  // What the page asked while the embed hid it must arrive before the hiding ends; later, the
  // page shows its own markup (the control) already, and keeps it.
  const assignment = (experiment) => {
    const hidden = hiding();
    if (late) cache[experiment] = cache[experiment] || Promise.resolve(shown());
    if (!cache[experiment]) {
      if (!batch) {
        const list = (batch = []);
        list.result = Promise.resolve().then(() => {
          batch = null;
          return run(list);
        });
      }
      batch.push(experiment);
      cache[experiment] = batch.result.then((all) =>
        hidden && !hiding() ? shown() : settle(experiment, all[experiment], all.$reason)
      );
    }
    return cache[experiment];
  };

  const assignAll = (list) => {
    const names = list?.length ? list : experiments;
    return (
      names.length
        ? Promise.all(names.map((key) => assignment(key).then((a) => [key, a])))
        : // nothing named: whatever the server (or the config) returns for this visitor
          run([]).then((all) =>
            keys(all)
              .filter((key) => key !== '$reason')
              .map((key) => [key, settle(key, all[key])])
          )
    ).then(Object.fromEntries);
  };

  // Ends the embed's hiding of [data-splitwerk-hide] (its own timer ends it at the latest)
  // once nothing is requested or about to be.
  const reveal = () => domReady.then(() => setTimeout(() => pending || batch || hideClass('remove')));

  // ---- public API -------------------------------------------------------------------------

  /** splitwerk('name', ...args) calls splitwerk.name(...args) (or reads splitwerk.name). */
  const api = (name, ...args) =>
    attempt(() => {
      // own properties only: not call, apply or bind of every function
      if (!has(api, name)) return debug(name);
      const value = api[name];
      return typeof value === 'function' ? value(...args) : value;
    });
  api.version = VERSION;
  api.dropped = 0;
  api.core = { bucket, matches, evaluate, detectSource };

  // Wraps a public function: no exception, and no rejected promise, ever reaches the page.
  const guard = (name, fn, fallback = debug) => {
    api[name] = (...args) => {
      const fail = (e) => (debug(e), fallback(...args));
      try {
        // the functions answer a promise, or nothing
        return fn(...args)?.catch(fail);
      } catch (e) {
        return fail(e);
      }
    };
  };

  /** Promise of the variant key of `experiment` for this visitor. */
  guard('variant', (experiment) => assignment(String(experiment)).then((a) => a.variant), async () => 'control');

  /** Promise of {experiment: {variant, payload, enrolled, reason}}, one request for the list. */
  guard('assign', assignAll, async (list) =>
    Object.fromEntries([].concat(list || []).map((key) => [key, answer('control', null, false, 'error')]))
  );

  /** Calls `callback(variant, payload)` once the variant is known and the DOM is parsed. */
  guard(
    'onVariant',
    (experiment, callback) =>
      assignment(String(experiment)).then((a) => domReady.then(() => callback(a.variant, a.payload)))
  );

  /** Queues a conversion of `goal`; `props.value` is an optional decimal amount. */
  guard(
    'track',
    (goal, props) => {
      props = props || {};
      const value = String(props.value); // 'undefined' when there is none: not a decimal
      // Orders and refunds carry money and come only from the shop's backend (ingest key).
      if ((props.type || 'conversion') !== 'conversion' || typeof goal !== 'string' || !/^.{1,128}$/.test(goal)) {
        debug(goal);
        return;
      }
      // only whitelisted fields leave the page: never `revenue`, never arbitrary props (JSON
      // leaves out an undefined value)
      queueEvent({
        type: 'conversion',
        goal,
        ts: Math.floor(Date.now() / 1000),
        value: /^-?\d+(\.\d+)?$/.test(value) ? value : undefined,
      });
    }
  );

  /**
   * Records the visitor's consent decision (with consent mode "required"). `true` stores the
   * visitor cookie, which later pages read as the consent; this page keeps the control it
   * showed, enrolment starts with the next page. `false` removes what the snippet stored.
   */
  guard(
    'consent',
    (yes) => {
      granted = !!yes;
      if (!granted) return forget();
      visitor = persistVisitor();
      attempt(persistSource);
      flush();
    }
  );

  /** Sends queued events now (they are also sent on a timer and when the page is hidden). */
  guard('flush', flush);

  // ---- start ------------------------------------------------------------------------------

  api.ready = Promise.resolve({});
  w.splitwerk = api;
  try {
    const script = doc.currentScript || doc.querySelector('script[src*="sdk.js"]');
    const o = (options = { ...script?.dataset, ...w.splitwerkConfig });
    if (+o.timeoutMs > 0) timeoutMs = +o.timeoutMs;
    // "a,b" from data-experiments, or an array from splitwerkConfig (String() joins it with commas)
    experiments = String(o.experiments || '').match(/[^,\s]+/g) || [];
    // The embed's hiding already ended: what this page requests now shows the control, so
    // that content never changes after the shop became visible.
    late = stub?.q && !hiding();
    attributes = {
      source: attempt(() => detectSource(w.location.href, doc.referrer)) || 'other',
      ...(isObject(o.attributes) && o.attributes),
    };
    granted = o.consentMode !== 'required' || attempt(hasConsent);
    // Without consent: a per-page id, nothing stored, nothing sent but queued conversions
    // after a consent on this very page.
    if (granted) {
      attempt(() => (visitor = persistVisitor())); // document.cookie throws in sandboxed frames
      attempt(persistSource);
    } else attempt(() => readCookie(COOKIE) && forget()); // consent withdrawn in the shop's consent tool
    visitor = visitor || newId();
    if (doc.readyState === 'loading') {
      domReady = new Promise((resolve) => doc.addEventListener('DOMContentLoaded', resolve));
    }
    // The server is where this script came from (a path prefix such as /ab/sdk.js included),
    // unless splitwerkConfig.server or data-server says otherwise.
    base = attempt(() => (o.server ? String(o.server).replace(/\/?$/, '/') : new URL('.', script.src).href));
    doc.addEventListener('visibilitychange', () => doc.hidden && api.flush());
    w.addEventListener('pagehide', api.flush);
    if (experiments.length) api.ready = api.assign(experiments);
    // Calls the page made before this script arrived, in their order; each answers its promise.
    // Later calls through a kept reference to the stub run at once.
    const perform = (call) => call[1](api(...call[0]));
    if (stub?.q) (stub.q.forEach(perform), (stub.q.push = perform));
    late = false;
    reveal();
  } catch (e) {
    debug(e);
    hideClass('remove');
  }
})(window);
