// End-to-end tests of the widget in the tool chains blogs are made with: the npm package that
// `skywatch pack` writes, installed from its tarball into the sample Vite project (examples/vite,
// `vite build` with Vite's defaults, no config) and into the sample Hugo site (examples/hugo,
// built by a plain `hugo`, whose post uses the `skywatch` shortcode twice). Each built site is
// served with no special headers (no cross-origin isolation, no content security policy of
// ours), and the widgets train in Chromium on one thread to the accuracy the quick run reaches.
// Also the bad input: the widget imported twice (console.info, no error), a data-url that
// points nowhere (the widget's error names the URL), and a shortcode with an unknown attribute
// (the Hugo build fails naming it).
//
// Needs `scripts/build`, npm's registry (vite) and `hugo` (scripts/setup installs both).
// Run from the repository root: `node --test tests/e2e/blog-toolchains.test.mjs`.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DATA_DIR, ROOT, openBrowser, prepare, run, startServer, watch } from './harness.mjs';

/** Validation accuracy the quick mode must reach (1000 images, 5 epochs; 0.74-0.77 natively). */
const QUICK_MIN_ACCURACY = 0.70;
const TRAIN_TIMEOUT = 120_000;

let packDir;
let tarball;

/** Runs `cmd args` in `cwd`; throws with its output when it fails. Returns the output. */
function sh(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw Object.assign(new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}) in ${cwd}:\n${out}`), { output: out });
  return out;
}

/** Bytes of every file under `dir`. */
function folderBytes(dir) {
  return readdirSync(dir, { recursive: true }).map((f) => statSync(join(dir, f))).filter((s) => s.isFile()).reduce((a, s) => a + s.size, 0);
}

/** Clicks Train in widget `id` and waits for it to finish; returns its validation accuracy. */
async function trainWidget(page, id) {
  await page.locator(`#${id}`).locator('#train').click();
  await page.waitForFunction((id) => ['done', 'error'].includes(document.getElementById(id).dataset.state), id, { timeout: TRAIN_TIMEOUT });
  const error = await page.locator(`#${id}`).locator('.error').textContent();
  assert.equal(await page.locator(`#${id}`).getAttribute('data-state'), 'done', error);
  const mode = await page.locator(`#${id}`).locator('[data-metric="mode"]').textContent();
  assert.match(mode, /1 thread/, 'no isolation: one thread');
  return Number(await page.locator(`#${id}`).locator('[data-metric="val-accuracy"]').textContent());
}

before(() => {
  prepare();
  packDir = mkdtempSync(join(tmpdir(), 'skywatch-pack-'));
  run(['pack', '--out', packDir, '--data', DATA_DIR]);
  const tgz = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
  assert.equal(tgz.length, 1, `one tarball in ${packDir}: ${tgz}`);
  tarball = join(packDir, tgz[0]);
  console.log(`package tarball: ${tgz[0]}, ${statSync(tarball).size} bytes`);
});

after(() => {
  if (packDir) rmSync(packDir, { recursive: true, force: true });
});

test('the package: name, version, exports, files and types; entries under package/', () => {
  const list = sh('tar', ['-tzf', tarball], ROOT).trim().split('\n');
  assert.ok(list.every((e) => e.startsWith('package/')), list.find((e) => !e.startsWith('package/')));
  for (const f of ['package/package.json', 'package/index.js', 'package/index.d.ts', 'package/README.md', 'package/widget.js',
    'package/worker.js', 'package/pkg/skywatch_bg.wasm', 'package/pkg-threads/skywatch_bg.wasm', 'package/data-quick/files.js']) {
    assert.ok(list.includes(f), `${f} in the tarball`);
  }
  const pkg = JSON.parse(sh('tar', ['-xzOf', tarball, 'package/package.json'], ROOT));
  const cargoVersion = /^version = "([^"]+)"/m.exec(sh('cat', ['Cargo.toml'], ROOT))[1];
  assert.equal(pkg.version, cargoVersion);
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.exports['.'].default, './index.js');
  assert.equal(pkg.sideEffects, undefined, 'importing the package registers the element');
  const types = sh('tar', ['-xzOf', tarball, 'package/index.d.ts'], ROOT);
  assert.match(types, /interface HTMLElementTagNameMap\s*{\s*'skywatch-trainer': SkywatchTrainer;/);
});

describe('Vite (examples/vite, vite build with its defaults)', () => {
  const dir = join(ROOT, 'examples/vite');
  let server;
  let browser;
  before(async () => {
    sh('npm', ['install', '--no-audit', '--no-fund', '--no-save', tarball], dir);
    rmSync(join(dir, 'dist'), { recursive: true, force: true });
    sh('npx', ['vite', 'build'], dir);
    console.log(`vite build output: ${folderBytes(join(dir, 'dist'))} bytes in dist/`);
    server = await startServer({ root: join(dir, 'dist'), isolation: false, csp: false });
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the built page trains on one thread to the quick run\'s accuracy', { timeout: TRAIN_TIMEOUT }, async () => {
    const page = await browser.context.newPage();
    const problems = watch(page);
    await page.goto(server.url);
    await page.waitForFunction(() => document.querySelector('skywatch-trainer')?.shadowRoot?.querySelector('#train'));
    await page.evaluate(() => { document.querySelector('skywatch-trainer').id = 'vite'; });
    const accuracy = await trainWidget(page, 'vite');
    assert.ok(accuracy >= QUICK_MIN_ACCURACY, `validation accuracy ${accuracy}`);
    assert.deepEqual(problems.problems(), []);
    await page.close();
  });
});

describe('Hugo (examples/hugo, a plain `hugo`)', () => {
  const dir = join(ROOT, 'examples/hugo');
  let server;
  let browser;
  before(async () => {
    sh('npm', ['install', '--no-audit', '--no-fund', '--no-save', tarball], dir);
    rmSync(join(dir, 'public'), { recursive: true, force: true });
    sh('hugo', [], dir);
    server = await startServer({ root: join(dir, 'public'), isolation: false, csp: false });
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(join(dir, 'public'), { recursive: true, force: true });
  });

  test('the post\'s two shortcodes train; a second copy of the widget says so; a missing data-url is named', { timeout: 2 * TRAIN_TIMEOUT }, async () => {
    const page = await browser.context.newPage();
    const problems = watch(page);
    const infos = [];
    page.on('console', (m) => { if (m.type() === 'info') infos.push(m.text()); });
    await page.goto(`${server.url}posts/birds-or-airplanes/`);
    await page.waitForFunction(() => document.querySelectorAll('skywatch-trainer').length === 2
      && [...document.querySelectorAll('skywatch-trainer')].every((w) => w.shadowRoot?.querySelector('#train')));
    await page.evaluate(() => document.querySelectorAll('skywatch-trainer').forEach((w, i) => { w.id = `w${i}`; }));
    assert.equal(await page.locator('skywatch-trainer').first().getAttribute('epochs'), '5');
    assert.equal(await page.locator('skywatch-trainer').nth(1).getAttribute('seed'), '7');

    // The module again under another URL (a second copy of the package): defined once, said once.
    await page.addScriptTag({ type: 'module', url: `${server.url}skywatch/widget.js?copy=2` });
    await page.waitForTimeout(500);
    assert.ok(infos.some((t) => /already defined/.test(t)), `console.info: ${infos}`);

    for (const id of ['w0', 'w1']) {
      const accuracy = await trainWidget(page, id);
      assert.ok(accuracy >= QUICK_MIN_ACCURACY, `${id}: validation accuracy ${accuracy}`);
    }
    assert.deepEqual(problems.problems(), []);

    // A data-url where there is no bundle: the widget's error names the URL.
    await page.evaluate(() => {
      const w = document.createElement('skywatch-trainer');
      w.id = 'missing';
      w.setAttribute('data-url', '/no-bundle-here/');
      document.body.append(w);
    });
    await page.waitForFunction(() => document.getElementById('missing').shadowRoot?.querySelector('#train'));
    await page.locator('#missing').locator('#train').click();
    await page.waitForFunction(() => document.getElementById('missing').dataset.state === 'error', null, { timeout: 30_000 });
    assert.match(await page.locator('#missing').locator('.error').textContent(), /\/no-bundle-here\/manifest\.json/);
    await page.close();
  });

  test('a shortcode with an unknown attribute fails the build, naming it', () => {
    const copy = join(mkdtempSync(join(tmpdir(), 'skywatch-hugo-')), 'site');
    try {
      cpSync(dir, copy, { recursive: true, filter: (src) => !/\/(node_modules|public|resources)$/.test(src) });
      writeFileSync(join(copy, 'content/posts/typo.md'), '---\ntitle: "A typo"\n---\n\n{{< skywatch preset="lecture" epoch="5" >}}\n');
      const e = (() => { try { sh('hugo', [], copy); return null; } catch (err) { return err; } })();
      assert.ok(e, 'the build failed');
      assert.match(e.output, /unknown attribute "epoch"/);
      assert.match(e.output, /typo\.md/);
    } finally {
      rmSync(join(copy, '..'), { recursive: true, force: true });
    }
  });
});
