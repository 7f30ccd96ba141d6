// One small interface over three browser engines, so that an end-to-end test runs per engine:
//
//   chromium  Debian's Chromium through playwright-core (harness.mjs's openBrowser)
//   firefox   Debian's Firefox ESR through geckodriver, spoken to over WebDriver BiDi
//             (`webSocketUrl: true`; every command below is a BiDi one)
//   webkit    Debian's WebKitGTK: WebKitWebDriver driving MiniBrowser (`--automation`) under Xvfb,
//             classic WebDriver (WebKitGTK has no BiDi)
//
// The `webdriver` npm package (WebdriverIO's protocol client) speaks to the drivers, which we
// start ourselves: given a hostname and a port it connects to them and never downloads a browser
// or a driver. Browsers and drivers come from Debian and `cargo install geckodriver`
// (scripts/setup); playwright-core's `moz-firefox` channel fails against ESR 153
// (`emulation.setMediaFeaturesOverride: unknown command`), hence plain BiDi.
//
// An engine: {name, version, goto(url), reload(), evaluate(fn, arg), waitFor(fn, arg, opts),
// click(selector), setFiles(selector, files), press(selector, keys), screenshot(name), problems(),
// consoleWarnings(), close()}. `press` focuses the element and presses each key of `keys` (names
// such as 'ArrowRight'), as real key presses of the protocol. `consoleWarnings()`: the console's warnings and errors of the page and its workers,
// or null where the driver cannot read the console (WebKitGTK). `fn` runs in
// the page (it may be async); `arg` and its result travel as JSON. Page scripts are never eval'd:
// the page's content security policy forbids it, and none of the three protocols needs it.

import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ARTIFACTS, openBrowser, screenshot as playwrightScreenshot, watch } from './harness.mjs';

// The client's loggers take their level when its modules load: errors only, unless asked.
process.env.WDIO_LOG_LEVEL ??= 'error';
const { default: WebDriver } = await import('webdriver');

export const ENGINES = ['chromium', 'firefox', 'webkit'];

/** The engines to test: SKYWATCH_E2E_ENGINES (comma-separated), all three by default. */
export function selectedEngines() {
  const names = (process.env.SKYWATCH_E2E_ENGINES || ENGINES.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !ENGINES.includes(n));
  if (unknown.length) throw new Error(`SKYWATCH_E2E_ENGINES: unknown engine ${unknown.join(', ')} (known: ${ENGINES.join(', ')})`);
  return names;
}

const FIREFOX = process.env.SKYWATCH_FIREFOX || '/usr/bin/firefox-esr';
const WEBKIT_DRIVER = process.env.SKYWATCH_WEBKIT_DRIVER || '/usr/bin/WebKitWebDriver';

/** An executable named `name` on PATH (scripts/lib.sh puts ~/.cargo/bin there), or undefined. */
function onPath(name) {
  for (const dir of (process.env.PATH || '').split(delimiter)) {
    const p = join(dir, name);
    try { accessSync(p, constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}

/** MiniBrowser of Debian's webkit2gtk-driver: /usr/lib/<multiarch triplet>/webkit2gtk-4.1/. */
function miniBrowser() {
  if (process.env.SKYWATCH_MINIBROWSER) return process.env.SKYWATCH_MINIBROWSER;
  for (const d of readdirSync('/usr/lib')) {
    const p = join('/usr/lib', d, 'webkit2gtk-4.1/MiniBrowser');
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** What `name` needs that this machine lacks (an empty list when it can run). */
export function missingFor(name) {
  const need = {
    chromium: [],
    firefox: [[FIREFOX, existsSync(FIREFOX)], ['geckodriver on PATH', Boolean(onPath('geckodriver'))]],
    webkit: [[WEBKIT_DRIVER, existsSync(WEBKIT_DRIVER)], ['MiniBrowser (webkit2gtk-driver)', Boolean(miniBrowser())], ['Xvfb on PATH', Boolean(onPath('Xvfb'))]],
  }[name];
  return need.filter(([, ok]) => !ok).map(([what]) => what);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** Children to end whatever happens to the test process. */
const children = new Set();
process.once('exit', () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); });

/** Starts `cmd args`, keeping the last 20 kB of its output for error messages. */
function start(cmd, args, { env = process.env, stdio } = {}) {
  const child = spawn(cmd, args, { env, stdio: stdio ?? ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  const keep = (c) => { output = (output + c).slice(-20_000); };
  child.stdout?.setEncoding('utf8').on('data', keep);
  child.stderr?.setEncoding('utf8').on('data', keep);
  const exited = new Promise((r) => child.once('exit', (code, signal) => { children.delete(child); r(code ?? signal); }));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  return { child, exited, stop, output: () => output };
}

/** Waits until a WebDriver server answers GET /status. */
async function waitForDriver(port, proc, what) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${what} exited (${proc.child.exitCode}):\n${proc.output()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/status`);
      if (res.ok) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`${what} did not answer on port ${port} in 20 s:\n${proc.output()}`);
    await sleep(100);
  }
}

/** An X server for WebKitGTK: Xvfb picks a free display and writes its number to fd 3. */
async function startXvfb() {
  const proc = start(onPath('Xvfb'), ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  const display = await new Promise((resolve, reject) => {
    let text = '';
    const t = setTimeout(() => reject(new Error(`Xvfb gave no display number in 10 s:\n${proc.output()}`)), 10_000);
    proc.child.stdio[3].setEncoding('utf8').on('data', (c) => {
      text += c;
      if (text.includes('\n')) { clearTimeout(t); resolve(`:${text.trim()}`); }
    });
    proc.child.once('exit', (code) => { clearTimeout(t); reject(new Error(`Xvfb exited (${code}):\n${proc.output()}`)); });
  });
  return { display, stop: proc.stop };
}

/** `(fn)(arg)` in the page, as source text; the result is returned as JSON text (or an error). */
const wrapped = (fn) => `async function (argJson) {
  try {
    const value = await (${fn})(JSON.parse(argJson));
    return JSON.stringify({ ok: value === undefined ? null : value });
  } catch (e) {
    return JSON.stringify({ error: String(e && e.stack || e) });
  }
}`;

function unwrap(json, fn) {
  const r = JSON.parse(json);
  if ('error' in r) throw new Error(`in the page: ${r.error}\n  while running ${String(fn).slice(0, 300)}`);
  return r.ok;
}

/** Writes `files` ({name, buffer}) into a fresh temporary folder; returns their paths. */
function filesOnDisk(files) {
  const dir = mkdtempSync(join(tmpdir(), 'skywatch-upload-'));
  return {
    paths: files.map((f) => { const p = join(dir, f.name); writeFileSync(p, f.buffer); return p; }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** WebDriver's code points of the keys `press` knows (https://w3c.github.io/webdriver/#keyboard-actions). */
const KEY_CODES = { ArrowLeft: '\uE012', ArrowUp: '\uE013', ArrowRight: '\uE014', ArrowDown: '\uE015', Enter: '\uE007', Escape: '\uE00C' };

/** A WebDriver key input source pressing and releasing each of `keys` in turn. */
function keyActions(keys) {
  const actions = keys.flatMap((k) => {
    const value = KEY_CODES[k] ?? k;
    if ([...value].length !== 1) throw new Error(`press: no WebDriver code for the key ${k}`);
    return [{ type: 'keyDown', value }, { type: 'keyUp', value }];
  });
  return { type: 'key', id: 'keyboard', actions };
}

/** Scrolls `selector` into view and gives it the focus. */
async function focus(engine, selector) {
  await engine.steady(selector);
  const ok = await engine.evaluate((sel) => {
    const el = document.querySelector(sel);
    el?.focus();
    return Boolean(el) && document.activeElement === el;
  }, selector);
  if (!ok) throw new Error(`${engine.name}: ${selector} cannot take the focus`);
}

/** What every engine offers on top of its protocol: polling and saving screenshots. */
class Engine {
  constructor(name) { this.name = name; }

  /** Polls `fn(arg)` in the page until it returns a truthy value, which it resolves with. */
  async waitFor(fn, arg, { timeout = 30_000, interval = 100, what } = {}) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
      try {
        last = await this.evaluate(fn, arg);
        if (last) return last;
      } catch (e) {
        // A navigation in progress destroys the context the function ran in: try again.
        if (!/context|navigat|destroyed|discarded|no such (frame|window)|stale|unload/i.test(e.message)) throw e;
        last = e.message;
      }
      if (Date.now() > deadline) throw new Error(`${this.name}: ${what ?? String(fn).slice(0, 200)} not reached in ${timeout} ms (last: ${JSON.stringify(last)})`);
      await sleep(interval);
    }
  }

  /** Scrolls `selector` to the middle of the view and waits until it stays put (the same box in
   *  three reads 150 ms apart), as Playwright does before a click: content still arriving above
   *  it (the views of what the model learned, once a run is done) would otherwise move it between
   *  the driver's scroll and its click, and the click would land elsewhere. */
  async steady(selector) {
    let last = null;
    let same = 0;
    for (const deadline = Date.now() + 10_000; same < 2 && Date.now() < deadline;) {
      const box = await this.evaluate((sel) => {
        const el = document.querySelector(sel);
        el?.scrollIntoView({ block: 'center' });
        const b = el?.getBoundingClientRect();
        return b ? `${b.x},${b.y},${b.width},${b.height}` : null;
      }, selector);
      same = box !== null && box === last ? same + 1 : 0;
      last = box;
      await sleep(150);
    }
  }

  /** A screenshot into target/e2e-artifacts/<name>-<engine>.png; never throws. */
  async screenshot(name) {
    mkdirSync(ARTIFACTS, { recursive: true });
    const path = join(ARTIFACTS, `${name}-${this.name}.png`);
    try {
      writeFileSync(path, Buffer.from(await this.screenshotBase64(), 'base64'));
      return path;
    } catch (e) {
      return `(no screenshot: ${e.message})`;
    }
  }

  /** Runs `fn`; on failure saves a screenshot and the page's state, then rethrows. */
  async guarded(name, fn) {
    try {
      return await fn();
    } catch (e) {
      const shot = await this.screenshot(`FAILED-${name}`);
      let page = '';
      try {
        page = JSON.stringify(await this.evaluate(() => ({
          url: location.href,
          state: document.documentElement.dataset.state,
          status: document.getElementById('status')?.textContent,
          errors: [...document.querySelectorAll('#error-list li')].map((li) => li.textContent),
          mode: document.querySelector('[data-metric="mode"]')?.textContent,
        })));
      } catch { /* the page may be gone */ }
      e.message += `\n  engine: ${this.name} ${this.version ?? ''}\n  screenshot: ${shot}\n  page: ${page}\n  problems: ${JSON.stringify(this.problems())}`;
      throw e;
    }
  }
}

class ChromiumEngine extends Engine {
  static async launch() {
    const e = new ChromiumEngine('chromium');
    e.browser = await openBrowser();
    e.page = await e.browser.context.newPage();
    e.watcher = watch(e.page);
    e.console = [];
    e.page.on('console', (m) => { if (['warning', 'error'].includes(m.type())) e.console.push(`console.${m.type()}: ${m.text()} (${m.location().url || '?'})`); });
    e.page.on('pageerror', (err) => e.console.push(`pageerror: ${err.message}`));
    e.version = `Chromium ${e.browser.context.browser()?.version() ?? ''}`.trim();
    return e;
  }

  goto(url) { return this.page.goto(url); }
  reload() { return this.page.reload(); }
  evaluate(fn, arg) { return this.page.evaluate(fn, arg); }
  click(selector) { return this.page.locator(selector).click(); }
  async press(selector, keys) {
    await this.page.locator(selector).focus();
    for (const key of keys) await this.page.keyboard.press(key);
  }
  setFiles(selector, files) {
    return this.page.locator(selector).setInputFiles(files.map((f) => ({ name: f.name, mimeType: f.mimeType ?? '', buffer: f.buffer })));
  }
  async screenshotBase64() {
    await this.page.evaluate(() => window.scrollTo(0, 0));
    return (await this.page.screenshot({ fullPage: true, timeout: 15_000 })).toString('base64');
  }
  async screenshot(name) { return playwrightScreenshot(this.page, `${name}-${this.name}`); }
  problems() { return this.watcher.problems(); }
  consoleWarnings() { return [...this.console]; }
  close() { return this.browser.close(); }
}

/** Firefox ESR over WebDriver BiDi: geckodriver starts it and hands over the BiDi socket. */
class FirefoxEngine extends Engine {
  static async launch() {
    const e = new FirefoxEngine('firefox');
    e.downloads = mkdtempSync(join(tmpdir(), 'skywatch-firefox-downloads-'));
    const port = await freePort();
    e.driver = start(onPath('geckodriver'), ['--host', '127.0.0.1', '--port', String(port)]);
    try {
      await waitForDriver(port, e.driver, 'geckodriver');
      e.client = await WebDriver.newSession({
        hostname: '127.0.0.1',
        port,
        logLevel: 'error',
        capabilities: {
          browserName: 'firefox',
          webSocketUrl: true,
          'moz:firefoxOptions': {
            binary: FIREFOX,
            args: ['-headless', '--width=1280', '--height=900'],
            prefs: {
              // Downloads (the weights) go to a folder of ours, without asking.
              'browser.download.folderList': 2,
              'browser.download.dir': e.downloads,
              'browser.download.useDownloadDir': true,
              'browser.download.always_ask_before_handling_new_types': false,
            },
          },
        },
      });
      e.version = `Firefox ${e.client.capabilities.browserVersion}`;
      e.logs = [];
      e.warnings = [];
      // Uncaught errors and console errors of the page and its workers; warnings apart.
      await e.client.sessionSubscribe({ events: ['log.entryAdded'] });
      e.client.on('log.entryAdded', (entry) => {
        if (entry.level === 'error') e.logs.push(`${entry.type === 'javascript' ? 'pageerror' : 'console.error'}: ${entry.text}`);
        if (entry.level === 'warn') e.warnings.push(`console.warn: ${entry.text}`);
      });
      const tree = await e.client.browsingContextGetTree({});
      e.context = tree.contexts[0].context;
      return e;
    } catch (err) {
      await e.close();
      throw err;
    }
  }

  async goto(url) { await this.client.browsingContextNavigate({ context: this.context, url, wait: 'complete' }); }
  async reload() { await this.client.browsingContextReload({ context: this.context, wait: 'complete' }); }

  async evaluate(fn, arg) {
    const r = await this.client.scriptCallFunction({
      functionDeclaration: wrapped(fn),
      arguments: [{ type: 'string', value: JSON.stringify(arg ?? null) }],
      target: { context: this.context },
      awaitPromise: true,
      resultOwnership: 'none',
    });
    if (r.type === 'exception') throw new Error(`in the page: ${r.exceptionDetails?.text}`);
    return unwrap(r.result.value, fn);
  }

  /** A shared reference to the element `selector` finds (BiDi's way to name a node). */
  async element(selector) {
    const r = await this.client.browsingContextLocateNodes({ context: this.context, locator: { type: 'css', value: selector }, maxNodeCount: 1 });
    if (!r.nodes?.length) throw new Error(`${this.name}: no element matches ${selector}`);
    return { sharedId: r.nodes[0].sharedId };
  }

  async click(selector) {
    await this.steady(selector);
    // input.performActions with the element as the pointer's origin: a real (trusted) click.
    const origin = { type: 'element', element: await this.element(selector) };
    await this.client.inputPerformActions({
      context: this.context,
      actions: [{ type: 'pointer', id: 'mouse', actions: [
        { type: 'pointerMove', x: 0, y: 0, origin }, { type: 'pointerDown', button: 0 }, { type: 'pointerUp', button: 0 },
      ] }],
    });
  }

  async press(selector, keys) {
    await focus(this, selector);
    await this.client.inputPerformActions({ context: this.context, actions: [keyActions(keys)] });
  }

  async setFiles(selector, files) {
    const disk = filesOnDisk(files);
    try {
      await this.client.inputSetFiles({ context: this.context, element: await this.element(selector), files: disk.paths });
    } finally {
      // The page reads the file when it handles `change`, after this returns: keep it a moment.
      setTimeout(disk.remove, 60_000).unref();
    }
  }

  async screenshotBase64() {
    return (await this.client.browsingContextCaptureScreenshot({ context: this.context, origin: 'document' })).data;
  }

  problems() { return [...(this.logs ?? [])]; }
  consoleWarnings() { return [...(this.logs ?? []), ...(this.warnings ?? [])]; }

  async close() {
    try { await this.client?.deleteSession(); } catch { /* already gone */ }
    await this.driver?.stop();
    if (this.downloads) rmSync(this.downloads, { recursive: true, force: true });
  }
}

/** WebKitGTK: WebKitWebDriver starts MiniBrowser on an Xvfb display (classic WebDriver). `env`
 *  is added to the driver's environment, which the browser inherits (LANG: the page's locale). */
class WebKitEngine extends Engine {
  static async launch({ env = {} } = {}) {
    const e = new WebKitEngine('webkit');
    try {
      e.xvfb = await startXvfb();
      const port = await freePort();
      // LANG sets navigator.language; en_US unless the test asks otherwise (C.UTF-8, the default
      // of Debian containers, gives "C", which Intl rejects). LANGUAGE would override it.
      const driverEnv = { ...process.env, DISPLAY: e.xvfb.display, LANG: 'en_US.UTF-8', ...env };
      delete driverEnv.LANGUAGE;
      delete driverEnv.LC_ALL;
      delete driverEnv.LC_MESSAGES;
      e.driver = start(WEBKIT_DRIVER, [`--port=${port}`, '--host=127.0.0.1'], { env: driverEnv });
      await waitForDriver(port, e.driver, 'WebKitWebDriver');
      e.client = await WebDriver.newSession({
        hostname: '127.0.0.1',
        port,
        logLevel: 'error',
        capabilities: {
          browserName: 'MiniBrowser',
          // WebKitGTK speaks classic WebDriver only: do not ask for a BiDi socket.
          'wdio:enforceWebDriverClassic': true,
          'webkitgtk:browserOptions': { binary: miniBrowser(), args: ['--automation'] },
        },
      });
      e.version = `WebKitGTK ${e.client.capabilities.browserVersion ?? ''}`.trim();
      await e.client.setTimeouts(0, 120_000, 120_000);
      return e;
    } catch (err) {
      await e.close();
      throw err;
    }
  }

  goto(url) { return this.client.navigateTo(url); }
  reload() { return this.client.refresh(); }

  async evaluate(fn, arg) {
    const json = await this.client.executeAsyncScript(
      `const done = arguments[arguments.length - 1]; (${wrapped(fn)})(arguments[0]).then(done, (e) => done(JSON.stringify({ error: String(e) })));`,
      [JSON.stringify(arg ?? null)],
    );
    return unwrap(json, fn);
  }

  async element(selector) {
    const el = await this.client.findElement('css selector', selector);
    const id = el?.['element-6066-11e4-a52e-4f735466cecf'] ?? el?.ELEMENT;
    if (!id) throw new Error(`${this.name}: no element matches ${selector}`);
    return id;
  }

  async click(selector) {
    await this.steady(selector);
    await this.client.elementClick(await this.element(selector));
  }

  async press(selector, keys) {
    await focus(this, selector);
    await this.client.performActions([keyActions(keys)]);
  }

  async setFiles(selector, files) {
    const disk = filesOnDisk(files);
    try {
      // WebDriver's file upload: Element Send Keys with the paths, one a line.
      await this.client.elementSendKeys(await this.element(selector), disk.paths.join('\n'));
    } finally {
      setTimeout(disk.remove, 60_000).unref();
    }
  }

  screenshotBase64() { return this.client.takeScreenshot(); }
  problems() { return []; } // classic WebDriver gives no console: the tests read the page's own error list
  consoleWarnings() { return null; } // the same: the console cannot be read here

  async close() {
    try { await this.client?.deleteSession(); } catch { /* already gone */ }
    await this.driver?.stop();
    await this.xvfb?.stop();
  }
}

/** Starts `name` with a fresh profile. Options: `env` (WebKitGTK: added to the browser's
 *  environment). */
export async function launch(name, options = {}) {
  const missing = missingFor(name);
  if (missing.length) throw new Error(`${name}: missing ${missing.join(', ')}; run scripts/setup`);
  const cls = { chromium: ChromiumEngine, firefox: FirefoxEngine, webkit: WebKitEngine }[name];
  return cls.launch(options);
}
