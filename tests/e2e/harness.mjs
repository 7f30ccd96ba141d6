// Set-up for the end-to-end tests of the page: the data bundle, `skywatch serve` as a child
// process, headless Chromium (Debian's, never a downloaded one) through playwright-core, and
// helpers that read the page's automation hooks (see the header of www/app.js).
//
// Needs `scripts/build` to have run (native binary, the three wasm packages, www/vendor). The data
// bundle is built here into target/e2e-data from SKYWATCH_DATA_SOURCE (`skywatch data` is a
// no-op when the bundle is up to date).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = join(ROOT, 'target/release/skywatch');
export const DATA_DIR = join(ROOT, 'target/e2e-data');
/** The WebGPU tests' and benchmarks' small bundle (600 training and 300 test images of DATA_DIR,
 *  `gpuData()`): the software adapter computes at about 0.5 GFLOP/s. */
export const GPU_DIR = join(ROOT, 'target/e2e-data-gpu');
/** The blog widget's quick subset of DATA_DIR (`skywatch subset`). */
export const QUICK_DIR = join(ROOT, 'target/e2e-data-quick');
export const ARTIFACTS = join(ROOT, 'target/e2e-artifacts');
const CHROMIUM = process.env.SKYWATCH_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Chromium's flags for its software WebGPU adapter, SwiftShader (a fallback adapter, also in
 *  dedicated workers): for the WebGPU tests and benchmarks (`openBrowser({extraArgs})`). */
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];

/** Checks that the build is there and builds (or refreshes) the data bundles. Artifacts of an
 *  earlier run are cleared by scripts/test, not here: the test files share the folder. */
export function prepare() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const missing = [BIN, 'www/pkg/skywatch_bg.wasm', 'www/pkg-threads/skywatch_bg.wasm', 'www/pkg-threads-simd/skywatch_bg.wasm', 'www/vendor/idb-keyval/index.js']
    .filter((p) => !existsSync(resolve(ROOT, p)));
  if (missing.length) throw new Error(`missing ${missing.join(', ')}: run scripts/build first`);
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run scripts/setup (or set SKYWATCH_CHROMIUM)`);
  const source = process.env.SKYWATCH_DATA_SOURCE;
  if (!source) {
    if (existsSync(join(DATA_DIR, 'manifest.json')) && existsSync(join(QUICK_DIR, 'manifest.json'))) return; // built by an earlier run
    throw new Error('SKYWATCH_DATA_SOURCE is not set and target/e2e-data does not exist: '
      + 'set it to a CIFAR-10 copy (scripts/test does), e.g. SKYWATCH_DATA_SOURCE=../shared/data/cifar10-jpg');
  }
  run(['data', '--from', source, '--out', DATA_DIR, '--quiet']);
  // Raw (version 1): the tests read these files directly, and the page's path for version 1 stays
  // tested; `skywatch build` (the widget tests) writes version 2.
  run(['subset', '--raw', '--data', DATA_DIR, '--out', QUICK_DIR]);
}

/** Builds (or refreshes) GPU_DIR from DATA_DIR; returns its path. */
export function gpuData() {
  run(['subset', '--raw', '--data', DATA_DIR, '--out', GPU_DIR, '--train', '600', '--test', '300']);
  return GPU_DIR;
}

/** Runs `skywatch ARGS...` (the release binary); throws with its output when it fails. */
export function run(args) {
  const r = spawnSync(BIN, args, { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`skywatch ${args[0]} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
}

/** Starts `skywatch serve` on a free port (serving www/ and the test bundles, or `root`);
 *  resolves with {url, isolated, stop(), log()}. `csp: false` (`--no-csp`) is for pages that
 *  are not ours, such as the widget tests' blog host page. `data`: the bundle served at /data/
 *  (default DATA_DIR). `verbose: true` logs every request (`log()` holds the lines, for tests
 *  that check that no request failed: `failedRequests`). */
export function startServer({ isolation = true, cors = false, csp = true, root, data = DATA_DIR, verbose = false } = {}) {
  const args = ['serve', '--port', '0'];
  if (root) args.push('--root', root);
  else args.push('--mount', `/data/=${data}`, '--mount', `/data-quick/=${QUICK_DIR}`);
  if (!isolation) args.push('--no-isolation');
  if (cors) args.push('--cors');
  if (!csp) args.push('--no-csp');
  // SKYWATCH_E2E_SERVE_LOG=1: every request is logged, and the log saved in the artifacts.
  const logRequests = verbose || Boolean(process.env.SKYWATCH_E2E_SERVE_LOG);
  if (logRequests) args.push('--verbose');
  const child = spawn(BIN, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    if (logRequests) saveArtifact(`serve-${child.pid}.log`, output);
  };
  // Never leave a server behind, whatever happens to the test process.
  process.once('exit', () => { if (child.exitCode === null) child.kill('SIGKILL'); });
  return new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => { stop(); reject(new Error(`skywatch serve printed no URL in 15 s:\n${output}`)); }, 15_000);
    const onData = (chunk) => {
      output += chunk;
      const m = /Serving (http:\/\/\S+?\/) \(cross-origin isolated: (yes|no)\)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolveStart({ url: m[1], isolated: m[2] === 'yes', stop, log: () => output });
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', (c) => { output += c; });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`skywatch serve exited (${code ?? signal}) before serving:\n${output}`));
    });
  });
}

/** The requests of a `verbose` server's log that were answered with a status of 400 or more. */
export const failedRequests = (log) => log.split('\n')
  .map((l) => /^\S+ (GET|HEAD|POST|PUT|DELETE|OPTIONS) (\S+) (\d{3}) /.exec(l))
  .filter((m) => m && Number(m[3]) >= 400)
  .map((m) => `${m[1]} ${m[2]}: ${m[3]}`);

/** Records, from the first script on, every change of `<html data-state>`, every long task of
 *  the main thread, every click and every content security policy violation, with
 *  performance.now() times, in `window.__e2e`. A violation is also logged as a console error
 *  ("CSP violation: ..."), which `watch` and `openBrowser` collect. Runs in every frame. */
function instrument() {
  const rec = { states: [], longtasks: [], clicks: [], csp: [] };
  window.__e2e = rec;
  addEventListener('click', (e) => rec.clicks.push({ id: e.target?.id ?? '', t: performance.now() }), true);
  // Violations fire at the document (they are composed: those inside a shadow root arrive too).
  document.addEventListener('securitypolicyviolation', (e) => {
    const v = { directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, sample: e.sample, t: performance.now() };
    rec.csp.push(v);
    console.error(`CSP violation: ${v.directive} blocked ${v.blocked || 'an inline resource'} at ${v.source || location.href}:${v.line}${v.sample ? ` (${v.sample})` : ''}`);
  }, true);
  const note = () => {
    const s = document.documentElement?.dataset.state;
    if (s && rec.states.at(-1)?.state !== s) rec.states.push({ state: s, t: performance.now() });
  };
  new MutationObserver(note).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
  note();
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) rec.longtasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  } catch (e) {
    rec.longtaskError = String(e);
  }
}

/** Whether a console message reports a content security policy violation: our own ("CSP
 *  violation: ..." from `instrument`, or from www/worker.js for its workers) or Chromium's
 *  ("Refused to ... because it violates the following Content Security Policy directive"). */
export const isCspMessage = (text) => /^CSP violation|Content Security Policy/.test(text);

/** page -> Map(request -> when it was sent), for requests not finished or failed yet. */
const pending = new WeakMap();

/** A fresh browser profile (so IndexedDB, the Cache API and downloads start empty).
 *  Every content security policy violation reported on any of its pages or workers is kept,
 *  and `close()` throws when there were any, so that every test
 *  (through its `after` hook) fails on a violation even if it does not check for one itself. */
export async function openBrowser({ extraArgs = [] } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'skywatch-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
  });
  await context.addInitScript(instrument);
  // Requests not answered yet, per page, for the report of a failure (`guarded`).
  context.on('request', (r) => {
    const page = r.frame()?.page();
    if (!page) return;
    if (!pending.has(page)) pending.set(page, new Map());
    pending.get(page).set(r, Date.now());
  });
  const settled = (r) => pending.get(r.frame()?.page())?.delete(r);
  context.on('requestfinished', settled);
  context.on('requestfailed', settled);
  const violations = [];
  context.on('console', (m) => { if (isCspMessage(m.text())) violations.push(`${m.text()} (${m.location().url || '?'})`); });
  return {
    context,
    profile,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
      if (violations.length) throw new Error(`content security policy violations:\n  ${violations.join('\n  ')}`);
    },
  };
}

/** Collects what must not happen on a page: uncaught errors, console errors (content security
 *  policy violations among them), failed or unsuccessful requests, a crash. `problems()` lists
 *  them as text; `csp()` only the violations (for tests that allow some console errors). */
export function watch(page) {
  const seen = [];
  const csp = [];
  page.on('console', (m) => { if (isCspMessage(m.text())) csp.push(m.text()); });
  page.on('pageerror', (e) => seen.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') seen.push(`console.error: ${m.text()} (${m.location().url || '?'})`); });
  page.on('requestfailed', (r) => seen.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => { if (r.status() >= 400) seen.push(`HTTP ${r.status()} for ${r.url()}`); });
  page.on('crash', () => seen.push('the page crashed'));
  // Chromium reports the console messages and uncaught errors of the page's workers (the
  // training worker, rayon's) on the page too.
  return { problems: () => [...seen], csp: () => [...csp], clear: () => { seen.length = 0; } };
}

// ---------------------------------------------------------------------------------------------
// The page's hooks

export const pageState = (page) => page.evaluate(() => document.documentElement.dataset.state);
export const metric = (page, name) => page.locator(`[data-metric="${name}"]`).first().textContent().then((t) => t.trim());
export const errorList = (page) => page.locator('#error-list li').allTextContents();

/** Presses "Download weights" and saves the file in ARTIFACTS (its name after `prefix`):
 *  `{path, name, bytes}`. */
export async function downloadWeights(page, { prefix = '', timeout = 20_000 } = {}) {
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout }),
    page.getByRole('button', { name: 'Download weights' }).click(),
  ]);
  const name = download.suggestedFilename();
  const path = join(ARTIFACTS, `${prefix}${name}`);
  await download.saveAs(path);
  return { path, name, bytes: readFileSync(path) };
}

/** Epochs of the run saved in IndexedDB (the worker writes after every epoch). */
export const savedEpochs = (page) => page.evaluate(() => new Promise((resolve) => {
  const open = indexedDB.open('skywatch-db');
  open.onsuccess = () => {
    const db = open.result;
    if (!db.objectStoreNames.contains('runs')) { resolve(0); return; }
    const get = db.transaction('runs').objectStore('runs').get('model');
    get.onsuccess = () => resolve(get.result?.history?.length ?? 0);
    get.onerror = () => resolve(0);
  };
  open.onerror = () => resolve(0);
}));

/** Waits until `<html data-state>` is one of `states`; a wrong final state (like `error` when
 *  waiting for `done`) fails at once with the page's error list. */
export async function waitForState(page, states, { timeout = 60_000, failOn = ['error'] } = {}) {
  const want = [states].flat();
  const handle = await page.waitForFunction(({ want, failOn }) => {
    const s = document.documentElement.dataset.state;
    return want.includes(s) || failOn.includes(s) ? s : false;
  }, { want, failOn: failOn.filter((s) => !want.includes(s)) }, { timeout, polling: 100 });
  const got = await handle.jsonValue();
  if (!want.includes(got)) {
    throw new Error(`page state became ${got} while waiting for ${want.join('|')}; errors: ${JSON.stringify(await errorList(page))}; `
      + `status: ${await page.locator('#status').textContent()}`);
  }
  return got;
}

/** Waits until `[data-metric=name]` satisfies `predicate(text)`, a function run here in the
 *  test, not in the page: the page's content security policy allows no eval. (Playwright's
 *  `waitForFunction` compiles a *function* once, through DevTools, which the policy lets pass;
 *  a string expression is compiled again on every poll, and `new Function` in a predicate runs
 *  in the page: both are blocked. So pass functions, never strings.) */
export async function waitForMetric(page, name, predicate, { timeout = 30_000 } = {}) {
  const deadline = Date.now() + timeout;
  let text;
  for (;;) {
    text = await page.evaluate((n) => document.querySelector(`[data-metric="${n}"]`)?.textContent.trim() ?? '', name);
    if (predicate(text)) return text;
    if (Date.now() > deadline) throw new Error(`[data-metric="${name}"] is "${text}" after ${timeout} ms, not what ${predicate} wants`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Fails when the page's init script recorded a content security policy violation. */
export async function assertNoCspViolations(page) {
  const got = await page.evaluate(() => window.__e2e?.csp ?? []);
  if (got.length) throw new Error(`content security policy violations: ${JSON.stringify(got)}`);
}

/** Waits until the page has drawn what follows a trained or loaded model: the evaluation is
 *  finished (the Evaluate button is enabled again) and the test-image gallery is filled. */
export async function settle(page, { timeout = 30_000 } = {}) {
  await page.waitForFunction(() => !document.getElementById('evaluate').disabled
    && document.getElementById('gallery-grid').childElementCount > 0, null, { timeout, polling: 100 });
}

/** A full-page screenshot into target/e2e-artifacts/<name>.png; never throws. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  try {
    // From the top: the sticky sidebar would otherwise be drawn where the last action scrolled to.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path, fullPage: true, timeout: 15_000 });
    return path;
  } catch (e) {
    return `(no screenshot: ${e.message})`;
  }
}

/** Runs `fn`; on failure saves a screenshot and the page's problems, then rethrows. */
export async function guarded(page, name, fn) {
  try {
    return await fn();
  } catch (e) {
    const shot = await screenshot(page, `FAILED-${name}`);
    let details = '';
    try {
      details = JSON.stringify({
        url: page.url(),
        state: await pageState(page),
        status: await page.locator('#status').textContent(),
        errors: await errorList(page),
        mode: await metric(page, 'mode'),
        pendingRequests: [...(pending.get(page) ?? [])].map(([r, t]) => `${r.method()} ${r.url().slice(0, 200)} (${((Date.now() - t) / 1000).toFixed(1)} s)`),
      }, null, 2);
    } catch { /* the page may be gone */ }
    writeFileSync(join(ARTIFACTS, `FAILED-${name}.txt`), `${e.stack ?? e}\n\n${details}\n`);
    e.message += `\n  screenshot: ${shot}\n  page: ${details}`;
    throw e;
  }
}

export function saveArtifact(name, data) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, name);
  writeFileSync(path, data);
  return path;
}
