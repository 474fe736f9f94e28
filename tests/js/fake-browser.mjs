// Test helper: runs sdk/js/splitwerk.js in a node:vm context with a fake browser and a fake clock.
import { readFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import vm from 'node:vm';

export const SNIPPET = readFileSync(new URL('../../sdk/js/splitwerk.js', import.meta.url), 'utf8');
// The embed's loader stub, as server/services/install.py inlines it (without its comment line).
export const STUB = readFileSync(new URL('../../sdk/js/stub.js', import.meta.url), 'utf8')
  .split('\n')
  .filter((line) => !line.startsWith('//'))
  .join('');
const START_MS = 1_700_000_000_000; // fixed wall-clock start, so event timestamps are predictable

/** Lets pending promise callbacks (of every realm) run. */
export const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Timers that only move when a test calls advance(). */
class FakeClock {
  constructor() {
    this.now = START_MS;
    this.timers = [];
    this.lastId = 0;
    this.setTimeout = (fn, delayMs = 0) => {
      this.timers.push({ id: ++this.lastId, at: this.now + (Number(delayMs) || 0), fn });
      return this.lastId;
    };
    this.clearTimeout = (id) => {
      this.timers = this.timers.filter((t) => t.id !== id);
    };
  }

  /** Runs every timer due within `ms`, in order, letting promises settle after each. */
  async advance(ms) {
    const end = this.now + ms;
    await settle();
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.now = due.at;
      due.fn();
      await settle();
    }
    this.now = end;
    await settle();
  }
}

/** A fetch Response look-alike. */
export function respond(status, body, headers = {}) {
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: { get: (name) => headers[name] ?? null },
    json: async () => body,
  };
}

/** Fake document.cookie: a jar that honours Max-Age=0 and records every write. */
function cookieJar(initial, writes) {
  const jar = new Map();
  for (const part of initial.split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name) jar.set(name, value.join('='));
  }
  return {
    get: () => [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
    set: (text) => {
      writes.push(text);
      const [pair, ...attributes] = text.split(';');
      const [name, ...value] = pair.split('=');
      if (attributes.some((a) => /^\s*max-age=0\s*$/i.test(a))) jar.delete(name.trim());
      else jar.set(name.trim(), value.join('='));
    },
  };
}

function fakeStorage(writes) {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => {
      writes.push(['set', key, String(value)]);
      items.set(key, String(value));
    },
    removeItem: (key) => {
      writes.push(['remove', key]);
      items.delete(key);
    },
  };
}

/**
 * Loads the snippet into a fresh fake page.
 *
 * options: href, referrer, cookie, dataset (the script tag's data-* as camelCase),
 * src (the script's URL), config (window.splitwerkConfig), fetch(url, init) -> Response |
 * Promise, sendBeacon(url, body) -> boolean, readyState, nonce, constructableSheets,
 * crypto, cookieThrows, overrides (applied to the window after it is built), source (the
 * script text, by default sdk/js/splitwerk.js), embed (run the embed's stub first, with this
 * hiding cap in ms), deferred (don't run the snippet yet: call page.load() later).
 */
export function loadSnippet(options = {}) {
  const clock = new FakeClock();
  const record = {
    fetches: [],
    beacons: [],
    cookieWrites: [],
    storageWrites: [],
    debugs: [],
    console: [],
    styles: [],
    appended: [],
  };
  const listeners = { window: {}, document: {} };
  const on = (target) => (type, fn) => (listeners[target][type] ||= []).push(fn);
  const classes = new Set();
  const jar = cookieJar(options.cookie || '', record.cookieWrites);
  const script = {
    src: 'src' in options ? options.src : 'https://ab.example.com/sdk.js?v=17',
    dataset: options.dataset || {},
    nonce: options.nonce || '',
  };
  const document = {
    currentScript: script,
    referrer: options.referrer || '',
    readyState: options.readyState || 'complete',
    visibilityState: 'visible',
    get hidden() {
      return this.visibilityState === 'hidden';
    },
    adoptedStyleSheets: [],
    documentElement: {
      classList: { add: (c) => classes.add(c), remove: (c) => classes.delete(c), contains: (c) => classes.has(c) },
      appendChild: (node) => record.styles.push(node),
    },
    head: { appendChild: (node) => (node.tag === 'script' ? record.appended : record.styles).push(node) },
    createElement: (tag) => ({ tag }),
    querySelector: () => script,
    addEventListener: on('document'),
  };
  const fail = () => {
    throw new Error('SecurityError: the document is sandboxed');
  };
  Object.defineProperty(document, 'cookie', options.cookieThrows ? { get: fail, set: fail } : jar);
  const handler = options.fetch || (() => respond(200, { assignments: {} }));
  const window = {
    document,
    location: new URL(options.href || 'https://shop.example/p/42'),
    navigator: {
      sendBeacon:
        options.sendBeacon === undefined
          ? (url, body) => (record.beacons.push({ url, body: JSON.parse(body) }), true)
          : options.sendBeacon,
    },
    // like the browser's, it answers with a promise (a handler may answer a Response at once)
    fetch: async (url, init = {}) => {
      record.fetches.push({ url, init, body: typeof init.body === 'string' ? JSON.parse(init.body) : init.body });
      return handler(url, init);
    },
    crypto: options.crypto || webcrypto,
    sessionStorage: fakeStorage(record.storageWrites),
    localStorage: fakeStorage(record.storageWrites),
    addEventListener: on('window'),
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    Date: class extends Date {
      static now() {
        return clock.now;
      }
    },
    TextEncoder,
    URL,
    AbortController,
    console: {
      debug: (...args) => record.debugs.push(args),
      log: (...args) => record.console.push(['log', ...args]),
      info: (...args) => record.console.push(['info', ...args]),
      warn: (...args) => record.console.push(['warn', ...args]),
      error: (...args) => record.console.push(['error', ...args]),
    },
  };
  if (options.constructableSheets !== false) {
    window.CSSStyleSheet = class {
      replaceSync(text) {
        this.text = text;
      }
    };
  }
  if (options.config) window.splitwerkConfig = options.config;
  Object.assign(window, options.overrides);
  window.window = window;
  vm.createContext(window);
  if (options.embed) vm.runInContext(`${STUB}(window,document,${JSON.stringify(script.src)},${options.embed})`, window);
  const fire = (target, type) => (listeners[target][type] || []).forEach((fn) => fn({ type }));
  const page = { window, document, splitwerk: window.splitwerk, clock, record, classes, fire };
  page.load = () => {
    vm.runInContext(options.source || SNIPPET, window);
    page.splitwerk = window.splitwerk;
    return page;
  };
  return options.deferred ? page : page.load();
}

/** Deep copy into this realm, so assert.deepStrictEqual does not trip over vm prototypes. */
export const plain = (value) => JSON.parse(JSON.stringify(value));
