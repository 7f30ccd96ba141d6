// Makes the README's screenshot (docs/screenshot.png) from the real page: `skywatch serve` over
// www/ and the test bundle, headless Chromium (Debian's, through playwright-core), a five-epoch
// lecture run with seed 0 on wasm, and the top of the page captured at 1280x900.
//
//   node tests/e2e/screenshot.mjs [OUT.png]      (default docs/screenshot.png; scripts/screenshot)
//
// Needs scripts/build and a bundle source (SKYWATCH_DATA_SOURCE, as the e2e tests do).
// `makeScreenshot(out)` is what the newcomer's test (first-minutes.test.mjs) runs.

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, openBrowser, prepare, startServer, waitForState } from './harness.mjs';

/** The run shown: the lecture's model and recipe, five epochs of the whole bundle. */
export const SCREENSHOT_RUN = '?preset=lecture&epochs=5&seed=0&backend=wasm&autostart=1';

/** Writes the screenshot to `out`; resolves with `{out, width, height}`. */
export async function makeScreenshot(out = resolve(ROOT, 'docs/screenshot.png')) {
  prepare();
  const server = await startServer();
  const browser = await openBrowser();
  try {
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${server.url}${SCREENSHOT_RUN}`);
    await waitForState(page, 'done', { timeout: 180_000 });
    // The charts and the gallery draw at most once a second: let the last frame land.
    await page.waitForTimeout(1500);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: out, fullPage: false });
    return { out, width: 1280, height: 900 };
  } finally {
    await browser.close();
    await server.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const out = resolve(process.argv[2] ?? resolve(ROOT, 'docs/screenshot.png'));
  const r = await makeScreenshot(out);
  console.log(`wrote ${r.out} (${r.width}x${r.height})`);
}
