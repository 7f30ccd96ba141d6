// Driver of scripts/bench-browser (not a test): www/bench.html in headless Chromium, once with a
// single thread and once with every core, its JSON lines printed to stdout.
import { openBrowser, startServer } from './harness.mjs';

const [presets = 'lecture', epochs = '3'] = process.argv.slice(2);
const server = await startServer();
const browser = await openBrowser();
try {
  for (const threads of [1, 2]) {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}bench.html?threads=${threads}&presets=${presets}&epochs=${epochs}`);
    await page.waitForFunction(() => ['done', 'error'].includes(document.documentElement.dataset.state), null, { timeout: 600_000 });
    const status = await page.textContent('#status');
    if (!status.startsWith('done')) throw new Error(`benchmark with ${threads} thread(s): ${status}`);
    for (const line of (await page.textContent('#results')).trim().split('\n')) {
      process.stdout.write(`${JSON.stringify({ browser: 'chromium', package: threads > 1 ? 'threads' : 'single', ...JSON.parse(line) })}\n`);
    }
    await page.close();
  }
} finally {
  await browser.close();
  await server.stop();
}
