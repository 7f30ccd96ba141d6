// A page that cannot start says so (issue 10, "failures are never silent"): a module that throws
// while it loads (as uPlot does when Intl rejects the browser's locale), a module file that is
// missing, and a training worker whose script is missing each put the page in its error state,
// `<html data-state="error">`, with the error box showing the reason, within seconds rather than
// a page left at "loading". Files are made to fail with Playwright's request interception.
//
// Run from the repository root after scripts/build: `node --test tests/e2e/start-failures.test.mjs`.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { guarded, openBrowser, prepare, screenshot, startServer } from './harness.mjs';

/** How long the page may take to report a failure to start. */
const REPORT_WITHIN_MS = 10_000;

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

/** Opens the page with `fault` answering the requests `pattern` matches; resolves with what the
 *  page shows once it is in a final state: {state, errors, visible}. */
async function openFailing(name, pattern, fault) {
  const page = await browser.context.newPage();
  // On the context: it also sees the requests of workers.
  await browser.context.route(pattern, fault);
  try {
    return await guarded(page, name, async () => {
      await page.goto(`${server.url}?preset=lecture&epochs=1&train_size=1000&autostart=1`);
      const state = await page.waitForFunction(() => ['error', 'ready', 'training', 'done'].includes(document.documentElement.dataset.state)
        && document.documentElement.dataset.state, null, { timeout: REPORT_WITHIN_MS, polling: 100 })
        .then((h) => h.jsonValue(), () => page.evaluate(() => document.documentElement.dataset.state));
      const errors = await page.locator('#error-list li').allTextContents();
      const visible = errors.length > 0 && await page.locator('#error-list li').first().isVisible();
      await screenshot(page, `start-failure-${name}`);
      return { state, errors, visible };
    });
  } finally {
    await browser.context.unrouteAll({ behavior: 'ignoreErrors' });
    await page.close();
  }
}

function assertReported(got, reason) {
  assert.equal(got.state, 'error', `the page is in state "${got.state}" ${REPORT_WITHIN_MS / 1000} s after opening, not "error"; errors shown: ${JSON.stringify(got.errors)}`);
  assert.ok(got.visible, 'the error box is visible');
  assert.match(got.errors.join(' | '), reason);
}

test('a module that throws while loading (uPlot, as under a locale Intl rejects) is reported with its message', { timeout: 30_000 }, async () => {
  const got = await openFailing('module-throws', /\/vendor\/uplot\/uPlot\.esm\.js$/, (route) => route.fulfill({
    contentType: 'text/javascript',
    body: "throw new RangeError('Incorrect locale information provided (made to fail by the test)');\nexport default class uPlot {}\n",
  }));
  assertReported(got, /made to fail by the test/);
});

test('a missing module file is reported, naming what failed', { timeout: 30_000 }, async () => {
  const got = await openFailing('module-missing', /\/gallery\.js$/, (route) => route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' }));
  assertReported(got, /gallery\.js|app\.js|module|script|load/i);
});

test('a training worker that cannot start is reported', { timeout: 30_000 }, async () => {
  const got = await openFailing('worker-missing', /\/worker\.js$/, (route) => route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' }));
  assertReported(got, /worker/i);
});
