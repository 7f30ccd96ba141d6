// End-to-end tests of translation (the lecture's last slide), in every engine (engines.mjs): a run
// from a link (with data augmentation for the MLP); the translation test measured by itself when
// the run ends, in slices, so that a picture classified meanwhile is answered before the test is
// over; the picture of "Bird or airplane?" and a test picture of "Why this answer?" each moved with
// the keyboard (their own shift controls), their probability bars, answer and map following, and
// "what the first layer sees" following the panel moved last; for `lecture` and `conv`. Kept small
// (one epoch on a few hundred images): the shift, the similarity, the test's accuracy at 0 px and
// its slices are checked natively (tests/translation.rs).
//
// Run from the repository root after scripts/build: `node --test tests/e2e/translation.test.mjs`
// (SKYWATCH_E2E_ENGINES picks the engines, default chromium,firefox,webkit).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launch, selectedEngines } from './engines.mjs';
import { DATA_DIR, prepare, startServer } from './harness.mjs';
import { runConfig, shown, train } from './reference.mjs';
import { skyPicture } from './images.mjs';

/** Longest a run, or its translation test, may take (WebKitGTK's one thread is the slowest). */
const LONG = 420_000;

let server;

before(async () => {
  prepare();
  server = await startServer();
});
after(async () => { await server?.stop(); });

/** The augmented run's numbers per kernel, from the first engine that ran it: every engine that
 *  runs the same package must give them again (and simd128's are the reference's, below). */
const augmentedByKernel = new Map();
/** The augmented MLP run of the tests: its reference, on the single-threaded simd128 package. */
const AUGMENTED = { preset: 'lecture', epochs: 1, trainSize: 320, seed: 0, augment: 'flip,shift:2' };

const metric = (e, name) => e.evaluate((n) => document.querySelector(`[data-metric="${n}"]`)?.textContent.trim() ?? '', name);
const control = (panel) => `[data-control="shift"][data-panel="${panel}"]`;
/** The exact probabilities of the bars in the list `selector`. */
const bars = (e, selector) => e.evaluate((sel) => [...document.querySelectorAll(`${sel} li`)].map((li) => Number(li.dataset.probability)), selector);

/** Waits for `<html data-state>` to be `want`; `error` fails at once. */
async function waitForState(e, want, timeout) {
  const got = await e.waitFor((w) => {
    const s = document.documentElement.dataset.state;
    return s === w || s === 'error' ? s : false;
  }, want, { timeout, what: `state ${want}` });
  assert.equal(got, want, `state ${got}: ${await e.evaluate(() => [...document.querySelectorAll('#error-list li')].map((li) => li.textContent).join('; '))}`);
}

/** Records, in the page, in order: `progress` (the translation view's `data-progress` changed:
 *  the test is running), `picture` (the bars of "Bird or airplane?" drawn) and `translation`
 *  (the test's accuracies shown), each with the test's progress at that moment. */
const recordEvents = (e) => e.evaluate(() => {
  const events = [];
  window.skywatchTestEvents = events;
  const box = document.querySelector('[data-view="translation"]');
  const at = () => Number(box.dataset.progress ?? -1);
  new MutationObserver(() => {
    if (box.dataset.progress !== undefined) events.push({ what: 'progress', progress: at() });
    if (box.dataset.accuracies !== '[]' && !events.some((x) => x.what === 'translation')) events.push({ what: 'translation', progress: at() });
  }).observe(box, { attributes: true, attributeFilter: ['data-progress', 'data-accuracies'] });
  new MutationObserver(() => {
    if (document.querySelector('#probability-bars li')) events.push({ what: 'picture', progress: at() });
  }).observe(document.getElementById('probability-bars'), { childList: true });
});

/** "What the first layer sees": the panel it follows, its shift and similarity, and whether the
 *  moved picture's response (as drawn) differs from the original's. */
const response = (e) => e.evaluate(() => {
  const r = document.querySelector('[data-view="shift-response"]');
  const px = (id) => { const c = document.getElementById(id); return c.getContext('2d').getImageData(0, 0, c.width, c.height).data; };
  const [a, b] = [px('shift-orig'), px('shift-moved')];
  return { hidden: r.hidden, panel: r.dataset.panel, shift: r.dataset.shift, similarity: Number(r.dataset.similarity), differs: a.length !== b.length || a.some((v, i) => v !== b[i]) };
});

/** Waits until the response follows `panel` moved by `shift` ("dx,dy"); checks its similarity. */
async function checkResponse(e, panel, shift, kind) {
  await e.waitFor(({ panel, shift }) => {
    const r = document.querySelector('[data-view="shift-response"]');
    return !r.hidden && r.dataset.panel === panel && r.dataset.shift === shift;
  }, { panel, shift }, { what: `the first layer's response for ${panel} moved by ${shift}` });
  const r = await response(e);
  assert.ok(r.differs, `${panel}: the moved picture's response is drawn, and differs from the original's`);
  // The lesson: conv1's maps shifted back are the original's (equivariance); the MLP's units are not.
  if (kind === 'conv') assert.ok(Math.abs(r.similarity - 1) < 1e-5, `conv1 maps shifted back: ${r.similarity}`);
  else assert.ok(r.similarity < 0.999, `the hidden units change: ${r.similarity}`);
  return r;
}

for (const name of selectedEngines()) {
  describe(name, () => {
    for (const [preset, extra, kind] of [['lecture', `&augment=${AUGMENTED.augment}`, 'hidden'], ['conv', '', 'conv']]) {
      test(`${name}: translation for ${preset}: the test in slices after the run, both panels moved with the keyboard`, { timeout: 3 * LONG }, async (t) => {
        const e = await launch(name);
        try {
          await e.guarded(`translation-${preset}`, async () => {
            // The controls are on the page from the start, one per panel, disabled until there is a picture.
            await e.goto(`${server.url}?preset=${preset}&epochs=1&train_size=320&seed=0${extra}&autostart=1`);
            const start = await e.evaluate(() => [...document.querySelectorAll('[data-control="shift"]')]
              .map((c) => ({ panel: c.dataset.panel, dx: c.dataset.dx, disabled: [...c.querySelectorAll('input, button')].map((i) => i.disabled) })));
            assert.deepEqual(start.map((c) => c.panel), ['picture', 'why']);
            for (const c of start) assert.deepEqual(c.disabled, [true, true, true], `${c.panel}: disabled`);
            await recordEvents(e);
            await waitForState(e, 'done', LONG);
            // The translation test starts by itself when the run ends; a picture classified while it runs.
            await e.waitFor(() => document.querySelector('[data-view="translation"]').dataset.progress !== undefined, null, { timeout: LONG, what: 'the translation test running' });
            await e.setFiles('#picture-input', [{ name: 'sky-plane.png', mimeType: 'image/png', buffer: skyPicture(96).png }]);
            if (extra) {
              assert.equal(await e.evaluate(() => document.getElementById('f-augment').value), AUGMENTED.augment);
              // The same draws and sums in every engine that runs the same package.
              const mode = await metric(e, 'mode');
              const kernel = mode.includes('relaxed') ? 'relaxed-simd' : 'simd128';
              const got = { val: await metric(e, 'val-accuracy'), train: await metric(e, 'train-accuracy'), log: await e.evaluate(() => document.getElementById('log').textContent.match(/^Epoch: 0, [^(]*/m)?.[0]) };
              t.diagnostic(`augmented run, ${mode}: ${JSON.stringify(got)}`);
              if (augmentedByKernel.has(kernel)) assert.deepEqual(got, augmentedByKernel.get(kernel), `${kernel}: the numbers of the engine that ran it first`);
              else augmentedByKernel.set(kernel, got);
              if (kernel === 'simd128') {
                const ref = train(DATA_DIR, runConfig(AUGMENTED));
                assert.deepEqual([got.val, got.train], [shown(ref.history[0].val_accuracy), shown(ref.history[0].train_accuracy)], 'simd128: the reference run');
                ref.free();
              }
            }

            // The translation test, with no click: 7 shifts, accuracy at 0 px = the validation accuracy.
            await e.waitFor(() => JSON.parse(document.querySelector('[data-view="translation"]').dataset.accuracies).length === 7, null, { timeout: LONG, what: 'the translation test' });
            const test7 = await e.evaluate(() => {
              const v = document.querySelector('[data-view="translation"]');
              const chart = document.getElementById('translation-chart');
              return {
                shifts: JSON.parse(v.dataset.shifts), accuracies: JSON.parse(v.dataset.accuracies), text: document.getElementById('translation-text').textContent,
                progress: v.dataset.progress ?? null, chart: !chart.hasAttribute('hidden') && chart.getBoundingClientRect().height > 0 && chart.querySelectorAll('path.ours').length === 1,
              };
            });
            t.diagnostic(`${preset}: ${JSON.stringify(test7.accuracies)}; ${test7.text}`);
            assert.deepEqual(test7.shifts, [0, 1, 2, 3, 4, 6, 8]);
            assert.ok(test7.accuracies.every((a) => a >= 0 && a <= 1));
            assert.equal(test7.accuracies[0].toFixed(4), await metric(e, 'val-accuracy'));
            assert.equal(test7.progress, null, 'no progress shown once the test is over');
            assert.ok(test7.chart, 'the curve of accuracy against shift is drawn');
            // The picture was answered while the test ran: between two of its slices, before its end.
            const events = await e.evaluate(() => window.skywatchTestEvents);
            const picture = events.findIndex((x) => x.what === 'picture');
            const done = events.findIndex((x) => x.what === 'translation');
            t.diagnostic(`${preset}: events ${JSON.stringify(events.filter((x, i) => x.what !== 'progress' || events[i + 1]?.what !== 'progress'))}`);
            assert.ok(picture >= 0 && done >= 0, 'both recorded');
            assert.ok(picture < done, 'the picture is answered before the translation test ends');
            assert.ok(events.slice(0, picture).some((x) => x.what === 'progress'), 'the test was running when the picture was answered');
            assert.ok(events[picture].progress >= 0 && events[picture].progress < 1, `progress at the answer: ${events[picture].progress}`);

            // "Bird or airplane?": the picture moved right twice and down once with the arrow keys.
            const still = await bars(e, '#probability-bars');
            assert.equal(still.length, 2);
            await e.waitFor((sel) => !document.querySelector(`${sel} input`).disabled, control('picture'), { what: 'the picture control enabled' });
            await e.press('#picture-canvas', ['ArrowRight', 'ArrowRight', 'ArrowDown']);
            await e.waitFor((sel) => document.querySelector(sel).dataset.dx === '2' && document.querySelector(sel).dataset.dy === '1', control('picture'), { what: 'the picture control at (2, 1)' });
            await e.waitFor(() => document.getElementById('prediction').dataset.shift === '2,1', null, { what: 'the moved picture\'s answer' });
            const moved = await bars(e, '#probability-bars');
            t.diagnostic(`${preset}: picture bars ${JSON.stringify(still)} -> ${JSON.stringify(moved)}`);
            assert.equal(moved.length, 2);
            assert.notDeepEqual(moved, still, 'the bars follow the moved picture');
            assert.match(await e.evaluate(() => document.getElementById('prediction-note').textContent), /moved 2 right, 1 down/);
            const r1 = await checkResponse(e, 'picture', '2,1', kind);

            // "Why this answer?": a test picture, moved left once and up twice.
            await e.click('#gallery-grid figure:first-child');
            await e.waitFor(() => {
              const v = document.querySelector('[data-view="saliency"]');
              return !v.hidden && v.dataset.subject.startsWith('test:') && document.querySelectorAll('#why-bars li').length === 2
                && !document.querySelector('[data-control="shift"][data-panel="why"] input').disabled;
            }, null, { what: 'the test picture explained' });
            const whyStill = await bars(e, '#why-bars');
            const mapStill = await e.evaluate(() => document.querySelector('[data-view="saliency"]').dataset.magnitudeMax);
            await e.press('#why-picture', ['ArrowLeft', 'ArrowUp', 'ArrowUp']);
            await e.waitFor((sel) => document.querySelector(sel).dataset.dx === '-1' && document.querySelector(sel).dataset.dy === '-2', control('why'), { what: 'the why control at (-1, -2)' });
            await e.waitFor(() => document.querySelector('[data-view="saliency"]').dataset.shift === '-1,-2', null, { what: 'the moved test picture explained' });
            const whyMoved = await bars(e, '#why-bars');
            const mapMoved = await e.evaluate(() => document.querySelector('[data-view="saliency"]').dataset.magnitudeMax);
            t.diagnostic(`${preset}: why bars ${JSON.stringify(whyStill)} -> ${JSON.stringify(whyMoved)}; map max ${mapStill} -> ${mapMoved}`);
            assert.notDeepEqual(whyMoved, whyStill, 'the bars follow the moved picture');
            assert.notEqual(mapMoved, mapStill, 'the map follows the moved picture');
            const r2 = await checkResponse(e, 'why', '-1,-2', kind);
            if (kind === 'hidden') assert.notEqual(r2.similarity, r1.similarity, 'another picture, another shift: another response');
            // Each panel keeps its own shift.
            assert.equal(await e.evaluate((sel) => document.querySelector(sel).dataset.dx, control('picture')), '2');

            // Reset: the test picture as it is, its bars those of before.
            await e.click('#shift-why-reset');
            await e.waitFor(() => document.querySelector('[data-view="saliency"]').dataset.shift === '0,0', null, { what: 'the why view reset' });
            assert.deepEqual(await bars(e, '#why-bars'), whyStill);
            assert.equal(await e.evaluate((sel) => `${document.querySelector(sel).dataset.dx},${document.querySelector(sel).dataset.dy}`, control('why')), '0,0');
            assert.deepEqual(e.problems(), []);
            assert.deepEqual(await e.evaluate(() => [...document.querySelectorAll('#error-list li')].map((li) => li.textContent)), []);
            // The test stays with the run: after a reload, the restored model's is measured again.
            await e.goto(server.url);
            await e.waitFor(() => document.querySelector('[data-metric="restored"]')?.textContent === 'yes', null, { timeout: LONG, what: 'the run restored' });
            await e.waitFor(() => JSON.parse(document.querySelector('[data-view="translation"]').dataset.accuracies || '[]').length === 7, null, { timeout: LONG, what: 'the restored run\'s translation test' });
            assert.deepEqual(await e.evaluate(() => JSON.parse(document.querySelector('[data-view="translation"]').dataset.accuracies)), test7.accuracies, 'the same test after the reload');
          });
        } finally {
          await e.close();
        }
      });
    }
  });
}
