// End-to-end tests of failures to start (docs/faults.md): a module of the page
// that is missing or throws while loading, a missing worker script or wasm file, a worker module
// that is missing, modules that never arrive, and the same for the blog widget. Each must put the
// error box (the widget: its error area) in front of the user with the reason, instead of a page
// that stays at "loading". And a browser language that Intl rejects (WebKitGTK under
// LANG=C.UTF-8 reports navigator.language "C") must not keep the page from training.
//
// The faults are made with Playwright routes (a 404, a module that throws, a request left
// unanswered). Run from the repository root after scripts/build: `node --test tests/e2e/`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  errorList, guarded, metric, openBrowser, prepare, screenshot, startServer, waitForState, watch,
} from './harness.mjs';

/** The page's start-up sequence answers a failure at once; this only bounds the wait. The boot
 *  watchdog (www/boot.js) fires after 10 s. */
const FAILURE_TIMEOUT = 15_000;
const QUICK_RUN = 'preset=lecture&epochs=1&seed=0&train_size=1000';

let server;
let browser;

before(async () => {
  prepare();
  server = await startServer();
  browser = await openBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Opens `path` with `route` (a RegExp) answered by `handler`; resolves with the page once its
 *  state is `error`, and the errors shown. Reports how long it took. */
async function failingPage(t, name, path, route, handler) {
  await browser.context.route(route, handler);
  const page = await browser.context.newPage();
  try {
    const t0 = Date.now();
    await page.goto(`${server.url}${path}`);
    await guarded(page, name, () => waitForState(page, 'error', { timeout: FAILURE_TIMEOUT, failOn: [] }));
    const errors = await errorList(page);
    t.diagnostic(`${name}: error shown ${Date.now() - t0} ms after opening the page: ${errors.join(' | ')}`);
    await screenshot(page, `start-failure-${name}`);
    return { page, errors };
  } finally {
    await browser.context.unrouteAll({ behavior: 'ignoreErrors' });
  }
}

const notFound = (route) => route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' });

describe('the page', () => {
  test('a missing module is named with its HTTP status', { timeout: 30_000 }, async (t) => {
    const { page, errors } = await failingPage(t, 'missing-module', '', /\/page\/gallery\.js$/, notFound);
    assert.equal(errors.length, 1, errors.join(' | '));
    assert.match(errors[0], /^The page could not start: page\/gallery\.js \(imported by (app|page\/\w+)\.js\): HTTP 404 for http:\/\/\S+\/page\/gallery\.js$/);
    assert.ok(await page.getByRole('button', { name: 'Reload the page' }).isVisible(), 'a Reload button');
    assert.equal(await page.locator('#status').textContent(), 'The page could not start.');
    await page.close();
  });

  test('a module that throws while loading is shown with its message and place', { timeout: 30_000 }, async (t) => {
    // The module as it is, with a throw in front: it links (its exports are there), then throws.
    const { page, errors } = await failingPage(t, 'throwing-module', '', /\/page\/weights\.js$/, async (route) => {
      const res = await route.fetch();
      await route.fulfill({ response: res, body: `throw new Error('made to fail for a test');\n${await res.text()}` });
    });
    assert.equal(errors.length, 1, errors.join(' | '));
    assert.match(errors[0], /^The page could not start: Error: made to fail for a test \(at page\/weights\.js:1\)$/);
    await page.close();
  });

  test('modules that never arrive: the watchdog speaks', { timeout: 30_000 }, async (t) => {
    // The request is left unanswered (the route is never fulfilled).
    const { page, errors } = await failingPage(t, 'hanging-module', '', /\/page\/charts\.js$/, () => {});
    assert.deepEqual(errors, ["The page's scripts have not loaded after 10 s (a slow connection, or a server that does not answer). "
      + 'The page goes on if they arrive; otherwise reload it.']);
    await page.close();
  });

  test('a missing worker script: the training worker could not start, Try again', { timeout: 30_000 }, async (t) => {
    const { page, errors } = await failingPage(t, 'missing-worker', '', /\/worker\.js$/, notFound);
    assert.equal(errors.length, 1, errors.join(' | '));
    assert.match(errors[0], /^the training worker could not start: worker\.js: HTTP 404 for http:\/\/\S+\/worker\.js$/);
    assert.ok(await page.getByRole('button', { name: 'Try again' }).isVisible(), 'Try again is offered');
    // Try again, with the file back: the page starts.
    await page.getByRole('button', { name: 'Try again' }).click();
    await guarded(page, 'missing-worker-again', () => waitForState(page, 'ready', { timeout: 60_000 }));
    assert.deepEqual(await errorList(page), []);
    await page.close();
  });

  test("a missing module of the worker is named", { timeout: 30_000 }, async (t) => {
    const { page, errors } = await failingPage(t, 'missing-worker-module', '', /\/vendor\/idb-keyval\/index\.js$/, notFound);
    assert.equal(errors.length, 1, errors.join(' | '));
    assert.match(errors[0], /^the training worker could not start: vendor\/idb-keyval\/index\.js \(imported by worker\.js\): HTTP 404 for /);
    await page.close();
  });

  test('a missing wasm file is named', { timeout: 30_000 }, async (t) => {
    const { page, errors } = await failingPage(t, 'missing-wasm', '', /\/skywatch_bg\.wasm$/, notFound);
    assert.equal(errors.length, 1, errors.join(' | '));
    assert.match(errors[0], /404 Not Found fetching 'http:\/\/\S+\/skywatch_bg\.wasm'/);
    assert.match(await metric(page, 'mode'), /^$/, 'no mode: the package did not start');
    await page.close();
  });
});

describe('after the start', () => {
  test('a worker that falls silent while starting is reported, and Try again starts afresh', { timeout: 90_000 }, async (t) => {
    // The wasm request is left unanswered: the data loads, then the worker waits in silence.
    await browser.context.route(/\/skywatch_bg\.wasm$/, () => {});
    const page = await browser.context.newPage();
    try {
      const t0 = Date.now();
      await page.goto(server.url);
      await page.waitForFunction(() => /has not answered for/.test(document.getElementById('error-list').textContent), null, { timeout: 60_000 });
      const errors = await errorList(page);
      t.diagnostic(`${Date.now() - t0} ms: ${errors.join(' | ')}`);
      assert.equal(errors.length, 1, errors.join(' | '));
      assert.match(errors[0], /^The training worker has not answered for 2\d s \((starting|loading the data)\); it may still be busy on a slow connection\. Try again to start it afresh\.$/);
      assert.equal(await page.evaluate(() => document.documentElement.dataset.state), 'loading', 'still waiting: it may yet answer');
      await browser.context.unrouteAll({ behavior: 'ignoreErrors' });
      await page.getByRole('button', { name: 'Try again' }).click();
      await guarded(page, 'silent-worker-again', () => waitForState(page, 'ready', { timeout: 60_000 }));
      assert.deepEqual(await errorList(page), []);
    } finally {
      await browser.context.unrouteAll({ behavior: 'ignoreErrors' });
      await page.close();
    }
  });

  test('an uncaught error of the page is shown, not only logged', { timeout: 60_000 }, async () => {
    const page = await browser.context.newPage();
    try {
      await page.goto(server.url);
      await waitForState(page, 'ready', { timeout: 60_000 });
      await page.evaluate(() => { setTimeout(() => { throw new Error('thrown for a test'); }, 0); });
      await page.waitForFunction(() => document.getElementById('error-list').childElementCount > 0, null, { timeout: 10_000 });
      assert.deepEqual(await errorList(page), ['Something went wrong on this page: Error: thrown for a test']);
      assert.equal(await page.evaluate(() => document.documentElement.dataset.state), 'ready', 'the page goes on');
    } finally {
      await page.close();
    }
  });
});

describe('the widget', () => {
  const widgetError = (page) => page.locator('skywatch-trainer').locator('.error').textContent();
  const widgetFailed = (page) => page.waitForFunction(() => document.querySelector('skywatch-trainer')?.dataset.state === 'error', null, { timeout: FAILURE_TIMEOUT });

  test('a missing module shows in its error area', { timeout: 30_000 }, async (t) => {
    for (const [file, want] of [
      ['widget/trainer.js', /^The trainer could not load: widget\/trainer\.js: HTTP 404 for /],
      ['shared/startup.js', /^The trainer could not load: shared\/startup\.js \(imported by widget\/trainer\.js\): HTTP 404 for /],
    ]) {
      await browser.context.route(new RegExp(`/${file.replace('.', '\\.')}$`), notFound);
      const page = await browser.context.newPage();
      try {
        await page.goto(`${server.url}embed.html?epochs=1`);
        await widgetFailed(page);
        const text = await widgetError(page);
        t.diagnostic(`${file}: ${text}`);
        assert.match(text, want);
        assert.ok(await page.locator('skywatch-trainer').locator('.error').isVisible());
      } finally {
        await browser.context.unrouteAll({ behavior: 'ignoreErrors' });
        await page.close();
      }
    }
  });

  test('a missing worker script shows in its error area; Train then starts afresh', { timeout: 60_000 }, async (t) => {
    await browser.context.route(/\/worker\.js$/, notFound);
    const page = await browser.context.newPage();
    try {
      await page.goto(`${server.url}embed.html?epochs=1&train-size=300`);
      await page.locator('skywatch-trainer').locator('#train').click();
      await widgetFailed(page);
      const text = await widgetError(page);
      t.diagnostic(text);
      assert.match(text, /^the training worker could not start: worker\.js: HTTP 404 for /);
      await browser.context.unrouteAll({ behavior: 'ignoreErrors' });
      await page.locator('skywatch-trainer').locator('#train').click();
      await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector('skywatch-trainer').dataset.state)
        && !document.querySelector('skywatch-trainer').shadowRoot.querySelector('#train').disabled, null, { timeout: 30_000 });
      assert.equal(await page.locator('skywatch-trainer').getAttribute('data-state'), 'done', await widgetError(page));
    } finally {
      await browser.context.unrouteAll({ behavior: 'ignoreErrors' });
      await page.close();
    }
  });
});

test('a browser language that Intl rejects ("C"): the page falls back to "en" and trains', { timeout: 90_000 }, async (t) => {
  // As WebKitGTK reports it under LANG=C.UTF-8. Chromium's `locale` option refuses "C", so the
  // getter is replaced before any script of the page runs.
  const own = await openBrowser();
  try {
    await own.context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'language', { get: () => 'C', configurable: true });
    });
    const page = await own.context.newPage();
    const watcher = watch(page);
    await guarded(page, 'locale-c', async () => {
      await page.goto(`${server.url}embed.css`); // any page of the origin, with the init script
      const rejected = await page.evaluate(() => {
        try {
          new Intl.NumberFormat(navigator.language); // what uPlot does when its module loads
          return `accepted ${navigator.language}`;
        } catch (e) {
          return `${e.name}: ${navigator.language}`;
        }
      });
      assert.equal(rejected, 'RangeError: C', 'the test browser rejects the language, as WebKitGTK does');

      await page.goto(`${server.url}?${QUICK_RUN}&autostart=1`);
      await waitForState(page, 'done', { timeout: 60_000 });
      assert.equal(await page.evaluate(() => navigator.language), 'en', 'the page reads "en" instead');
      assert.equal(await metric(page, 'epoch'), '1');
      const val = Number(await metric(page, 'val-accuracy'));
      t.diagnostic(`val accuracy ${val}`);
      assert.ok(val > 0.5 && val <= 1, `val accuracy ${val}`);
      assert.ok(await page.locator('#chart-accuracy canvas').count() > 0, 'uPlot drew the charts');
      assert.deepEqual(await errorList(page), []);
      // embed.css opened as a page asks for a favicon, which there is none of.
      assert.deepEqual(watcher.problems().filter((p) => !p.includes('favicon.ico')), []);
    });
  } finally {
    await own.close();
  }
});
