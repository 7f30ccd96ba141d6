// Data faults in the page: a download that drops half way (restarted cleanly, then reported
// with a "Try again" that works), a truncated or corrupt bundle, a malformed manifest, a bundle
// of another format version. Each gets a clear message naming the file; nothing bad is cached.
// Faults are injected with Playwright's request interception (the worker's fetches included).
//
// Run from the repository root after scripts/build: `node --test tests/e2e/`.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { errorList, guarded, openBrowser, prepare, screenshot, startServer, waitForState } from './harness.mjs';

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

/** A fresh page with empty caches, `fault` installed on the data requests before it loads. */
async function open(name, fault) {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}embed.css`); // same origin, to empty its Cache API storage
  await page.evaluate(async () => { for (const k of await caches.keys()) await caches.delete(k); });
  await browser.context.route(/\/data\/(manifest\.json|train-[0-9a-f]+\.bin|test-[0-9a-f]+\.bin)$/, fault);
  await page.goto(server.url);
  return page;
}

async function expectError(page, name, needle) {
  await guarded(page, name, async () => {
    await waitForState(page, 'error', { timeout: 60_000, failOn: [] });
    const errors = (await errorList(page)).join(' | ');
    assert.ok(errors.includes(needle), `expected "${needle}" in: ${errors}`);
    await screenshot(page, `data-fault-${name}`);
  });
}

async function cleanup(page) {
  await browser.context.unrouteAll({ behavior: 'ignoreErrors' });
  await page.close();
}

test('a dropped connection is retried; after repeated failures, Try again works', { timeout: 120_000 }, async () => {
  let drops = 1;
  let page = await open('retry', (route) => {
    if (route.request().url().includes('/train-') && drops-- > 0) return route.abort('connectionreset');
    return route.continue();
  });
  await guarded(page, 'retry', () => waitForState(page, 'ready', { timeout: 60_000 }));
  await cleanup(page);

  page = await open('fail', (route) => (route.request().url().includes('/train-') ? route.abort('connectionreset') : route.continue()));
  await expectError(page, 'fail', 'the download failed 3 times');
  await browser.context.unrouteAll({ behavior: 'ignoreErrors' });
  await page.getByRole('button', { name: 'Try again' }).click();
  await guarded(page, 'try-again', () => waitForState(page, 'ready', { timeout: 60_000 }));
  await page.close();
});

test('truncated and corrupt bundles are named and not cached', { timeout: 120_000 }, async () => {
  const tamper = (change) => async (route) => {
    if (!route.request().url().includes('/train-')) return route.continue();
    const res = await route.fetch();
    return route.fulfill({ response: res, body: change(await res.body()) });
  };
  let page = await open('truncated', tamper((b) => b.subarray(0, b.length - 3073)));
  await expectError(page, 'truncated', 'truncated or wrong file');
  await cleanup(page);

  page = await open('corrupt', tamper((b) => { const c = Buffer.from(b); c[12345] ^= 0xff; return c; }));
  await expectError(page, 'corrupt', 'sha256 checksum mismatch');
  // The corrupt copy was not cached: without the fault the page loads.
  await browser.context.unrouteAll({ behavior: 'ignoreErrors' });
  await page.reload();
  await guarded(page, 'after-corrupt', () => waitForState(page, 'ready', { timeout: 60_000 }));
  await page.close();
});

test('a malformed manifest and another format version are explained', { timeout: 120_000 }, async () => {
  const manifest = (change) => async (route) => {
    if (!route.request().url().endsWith('/manifest.json')) return route.continue();
    const res = await route.fetch();
    return route.fulfill({ response: res, body: change(await res.text()) });
  };
  let page = await open('malformed', manifest((t) => t.slice(0, 40)));
  await expectError(page, 'malformed', 'manifest.json: not valid JSON');
  await cleanup(page);

  page = await open('version', manifest((t) => t.replace('"version": 1', '"version": 3')));
  await expectError(page, 'version', 'bundle format version 3 is not supported');
  await cleanup(page);

  page = await open('escape', manifest((t) => t.replace(/"file": "train-/, '"file": "../train-')));
  await expectError(page, 'escape', 'is not a plain file name in the bundle folder');
  await cleanup(page);
});
