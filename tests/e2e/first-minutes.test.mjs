// The first two minutes of a new user, end to end:
//
// 1. the newcomer's path (Chromium): the README's screenshot is made again with its script
//    (screenshot.mjs); the page opens; a shared link with bad values and autostart names each
//    value and starts nothing (the page stays in data-state="ready"); Start trains; and nothing
//    reached the console at warning level or above, no request failed;
// 2. a clean console in every engine: a normal start, a training run, a picture and the weights
//    download print nothing at warning level or above and no request fails (the server's own log
//    says so in every engine; the console is read in Chromium and Firefox ESR, whose drivers
//    report it; WebKitGTK's classic WebDriver cannot, so there the page's error list is read);
// 3. the widget names an attribute it did not understand inside itself, and does not autostart.
//
// The list of allowed console messages for a normal start is empty. Run from the repository root
// after scripts/build: `node --test tests/e2e/first-minutes.test.mjs`.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { launch, selectedEngines } from './engines.mjs';
import { ARTIFACTS, ROOT, failedRequests, openBrowser, prepare, startServer, waitForState, watch } from './harness.mjs';
import { skyPicture } from './images.mjs';
import { makeScreenshot } from './screenshot.mjs';

/** Console messages allowed at warning level or above on a normal start: none. */
const ALLOWED_ON_A_NORMAL_START = [];
/** A short normal run: one epoch of 1000 images, as a shared link starts it. */
const NORMAL_RUN = '?preset=lecture&epochs=1&train_size=1000&seed=0&autostart=1';
const RUN_TIMEOUT = 240_000;

/** Allowed on a blog page with widgets, in a browser without a GPU: Chromium's own warning when
 *  `navigator.gpu.requestAdapter()` finds no adapter, printed once per widget. Each widget asks,
 *  on the page and before Train (so that nothing is downloaded), whether the browser has a real
 *  GPU, to offer the full lecture run only there; a machine with a GPU does not print it. */
const ALLOWED_ON_A_BLOG_WITHOUT_GPU = [/^console\.warning: No available adapters\.$/];

const notAllowed = (messages, allowed = ALLOWED_ON_A_NORMAL_START) => messages.filter((m) => !allowed.some((re) => re.test(m)));

let server;
before(async () => {
  prepare();
  server = await startServer({ verbose: true });
});
after(async () => { await server?.stop(); });

/** The width and height in a PNG's header. */
function pngSize(bytes) {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

describe('the newcomer\'s path', () => {
  test('the screenshot is made again; a bad autostart link names each value and starts nothing; Start trains; a clean console', { timeout: RUN_TIMEOUT + 120_000 }, async (t) => {
    const shot = await makeScreenshot(join(ARTIFACTS, 'readme-screenshot.png'));
    assert.deepEqual(pngSize(readFileSync(shot.out)), [1280, 900], 'the screenshot\'s size');
    t.diagnostic(`screenshot: ${shot.out}`);

    const browser = await openBrowser();
    try {
      const page = await browser.context.newPage();
      const problems = watch(page);
      const logged = [];
      page.on('console', (m) => { if (['warning', 'error'].includes(m.type())) logged.push(`console.${m.type()}: ${m.text()} (${m.location().url || '?'})`); });
      const logAt = server.log().length;

      await page.goto(`${server.url}?epochs=-1&seed=abc&autostart=maybe`);
      await waitForState(page, 'ready');
      // Each value named, with what is used instead; autostart not understood is off.
      const items = await page.locator('#url-problem-list li').allTextContents();
      assert.equal(items.length, 3, JSON.stringify(items));
      // (The values read before the worker starts come first.)
      assert.match(items[0], /^autostart=maybe: expected 1, true or yes .*; using no autostart\.$/);
      assert.match(items[1], /^epochs=-1: expected a whole number .*; using 100\.$/);
      assert.match(items[2], /^seed=abc: expected a whole number of at least 0, or random .*; using 0\.$/);

      // The same link with autostart=1: the message, and a page that waits for Start.
      await page.goto(`${server.url}?epochs=-1&seed=abc&autostart=1`);
      await waitForState(page, 'ready');
      assert.equal(await page.locator('#url-problems').isVisible(), true, 'the notice is shown');
      assert.equal(await page.locator('#url-problem-list li').count(), 2);
      assert.equal(await page.locator('#url-problems-wait').isVisible(), true, 'the notice says the link waits for Start');
      // Given time to start, it has not: still ready, no epoch, Start offered.
      await page.waitForTimeout(2000);
      assert.equal(await page.evaluate(() => document.documentElement.dataset.state), 'ready');
      assert.equal(await page.locator('[data-metric="epoch"]').first().textContent(), '0');
      assert.equal(await page.locator('#start').isEnabled(), true, 'Start is offered');
      assert.equal(new URL(page.url()).searchParams.has('autostart'), false, 'autostart is dropped from the address');

      // The reader fixes the epochs and starts.
      await page.locator('#f-epochs').fill('1');
      await page.locator('#f-trainSize').fill('1000');
      await page.locator('#start').click();
      await waitForState(page, 'done', { timeout: RUN_TIMEOUT });
      assert.equal(await page.locator('[data-metric="epoch"]').first().textContent(), '1');

      assert.deepEqual(notAllowed(logged), [], 'console warnings and errors');
      assert.deepEqual(problems.problems(), [], 'failed requests, page errors');
      assert.deepEqual(failedRequests(server.log().slice(logAt)), [], 'requests answered with an error (server log)');
    } finally {
      await browser.close();
    }
  });
});

/** Clicks "Download weights" and waits until the page offers the file (its link). */
async function downloadWeights(e) {
  await e.click('#download');
  await e.waitFor(() => Boolean(document.querySelector('#weights-message a')), null, { what: 'the weights download' });
}

for (const name of selectedEngines()) {
  describe(`a clean console in ${name}`, () => {
    test('a normal start, a run, a picture and the weights download print no warning and fail no request', { timeout: RUN_TIMEOUT + 60_000 }, async (t) => {
      const e = await launch(name);
      try {
        t.diagnostic(e.version);
        await e.guarded('first-minutes-console', async () => {
          const logAt = server.log().length;
          await e.goto(`${server.url}${NORMAL_RUN}`);
          await e.waitFor(() => ['done', 'error'].includes(document.documentElement.dataset.state), null, { timeout: RUN_TIMEOUT, what: 'the run' });
          const picture = skyPicture(96);
          await e.setFiles('#picture-input', [{ name: 'sky-plane.png', mimeType: 'image/png', buffer: picture.png }]);
          await e.waitFor(() => document.getElementById('prediction-note')?.textContent.includes('sky-plane.png'), null, { what: 'the answer for the picture' });
          await downloadWeights(e);
          const page = await e.evaluate(() => ({
            state: document.documentElement.dataset.state,
            errors: [...document.querySelectorAll('#error-list li')].map((li) => li.textContent),
          }));
          assert.deepEqual(page, { state: 'done', errors: [] });
          const messages = e.consoleWarnings();
          if (messages === null) t.diagnostic(`${name}: its driver cannot read the console; the page's error list and the server's log are checked`);
          else assert.deepEqual(notAllowed(messages), [], 'console warnings and errors');
          assert.deepEqual(e.problems(), [], 'page errors, failed requests');
          assert.deepEqual(failedRequests(server.log().slice(logAt)), [], 'requests answered with an error (server log)');
        });
      } finally {
        await e.close();
      }
    });
  });
}

describe('the widget', () => {
  test('the sample post reads like a blog post, asks for no favicon, and prints nothing', { timeout: 60_000 }, async () => {
    const css = readFileSync(join(ROOT, 'www/embed-example.css'), 'utf8');
    assert.doesNotMatch(css, /text-transform|letter-spacing/, 'the sample post\'s style');
    const browser = await openBrowser();
    try {
      const page = await browser.context.newPage();
      const problems = watch(page);
      const logged = [];
      page.on('console', (m) => { if (['warning', 'error'].includes(m.type())) logged.push(`console.${m.type()}: ${m.text()}`); });
      const logAt = server.log().length;
      await page.goto(`${server.url}embed-example.html`);
      await page.waitForFunction(() => [...document.querySelectorAll('skywatch-trainer')].every((w) => w.dataset.state === 'ready'), null, { timeout: 20_000 });
      const body = await page.locator('article p').first().evaluate((p) => [getComputedStyle(p).textTransform, getComputedStyle(p).letterSpacing]);
      assert.deepEqual(body, ['none', 'normal']);
      assert.deepEqual(notAllowed(logged, ALLOWED_ON_A_BLOG_WITHOUT_GPU), [], 'console warnings and errors');
      assert.deepEqual(problems.problems(), []);
      const requested = server.log().slice(logAt);
      assert.doesNotMatch(requested, /favicon/, 'no favicon request');
      assert.deepEqual(failedRequests(requested), []);
    } finally {
      await browser.close();
    }
  });

  test('an attribute it does not understand is named inside it, and autostart waits for Train', { timeout: 60_000 }, async () => {
    // embed.html: the widget alone, its attributes from the query string.
    const browser = await openBrowser();
    try {
      const page = await browser.context.newPage();
      const problems = watch(page);
      const logAt = server.log().length;
      await page.goto(`${server.url}embed.html?epochs=-1&theme=blue&autostart`);
      await page.waitForFunction(() => document.querySelector('skywatch-trainer')?.dataset.attributeProblems !== undefined, null, { timeout: 20_000 });
      const widget = page.locator('skywatch-trainer');
      const items = await widget.locator('[data-view="attribute-problems"] li').allTextContents();
      assert.deepEqual(items, [
        'epochs="-1": expected a whole number from 1 to 1000; using the run\'s default.',
        'theme="blue": expected light, dark, auto; using auto.',
      ]);
      assert.equal(await widget.locator('[data-view="attribute-problems"] .waits').isVisible(), true, 'it says autostart waits');
      await page.waitForTimeout(2000);
      assert.equal(await widget.getAttribute('data-state'), 'ready', 'not started');
      assert.equal(await widget.locator('#train').isEnabled(), true, 'Train is offered');
      // A name it does not know is named too.
      await page.evaluate(() => {
        const w = document.createElement('skywatch-trainer');
        w.id = 'typo';
        w.setAttribute('epoch', '5');
        w.setAttribute('data-note', 'the page\'s own');
        document.body.append(w);
      });
      await page.waitForFunction(() => document.getElementById('typo').dataset.attributeProblems !== undefined);
      assert.deepEqual(await page.locator('#typo [data-view="attribute-problems"] li').allTextContents(), [
        'epoch: not an attribute of <skywatch-trainer> (it knows preset, epochs, train-size, seed, augment, data-url, backend, recipe, autostart, compact, theme, full-page); ignored.',
      ]);
      assert.deepEqual(problems.problems(), [], 'page errors, failed requests');
      assert.deepEqual(failedRequests(server.log().slice(logAt)), []);
    } finally {
      await browser.close();
    }
  });
});
