// The page's loader, the one script index.html names. It has no imports, so that it runs whatever
// else fails: it makes sure the browser's language is one Intl accepts, then imports app.js (and
// with it every module of the page) and shows in the error box why, if that fails: a module that
// is missing (named, with its HTTP status) or that throws while loading (its message and place).
// A watchdog says so when the modules have not loaded after a while, and uncaught errors or
// rejections are shown too: before the start here, afterwards by the app (never only on the
// console). Failures of the worker are the app's own (app.js, client.js).

const WATCHDOG_MS = 10_000;

/** uPlot 1.6 (vendor/uplot/uPlot.esm.js, line `const numFormatter = new Intl.NumberFormat(domEnv
 *  ? nav.language : 'en-US')`) formats with `navigator.language` when its module is evaluated.
 *  WebKitGTK under LANG=C.UTF-8, the default of Debian containers, reports navigator.language
 *  "C", which is no BCP 47 tag: `new Intl.NumberFormat("C")` throws a RangeError, the page's
 *  module graph fails and nothing would run. So when Intl rejects the browser's language, this
 *  page's `navigator.language` reads "en" (an own property shadowing Navigator.prototype's
 *  getter) before uPlot is imported. Returns the language the page goes on with. Our own
 *  formatting names its locale (shared/format.js). */
function ensureSupportedLanguage() {
  const language = navigator.language;
  try {
    new Intl.NumberFormat(language); // the very call uPlot makes
    return language;
  } catch {
    Object.defineProperty(navigator, 'language', { value: 'en', configurable: true });
    console.info(`The browser's language ${JSON.stringify(language)} is not one Intl accepts; the page uses "en".`);
    return 'en';
  }
}

const $ = (id) => document.getElementById(id);
let app = null;

/** The error box, filled without the app (which did not load). */
function showFailure(message) {
  document.documentElement.dataset.state = 'error';
  const li = document.createElement('li');
  li.textContent = message;
  $('error-list').append(li);
  $('error-actions').hidden = false;
  $('restart').hidden = true;
  $('dismiss-errors').hidden = true;
  if (!$('reload')) {
    const reload = document.createElement('button');
    reload.type = 'button';
    reload.id = 'reload';
    reload.textContent = 'Reload the page';
    reload.addEventListener('click', () => location.reload());
    $('error-actions').prepend(reload);
  }
  $('status').textContent = 'The page could not start.';
  $('data-text').textContent = 'Nothing was loaded.';
  document.querySelector('.mode')?.classList.add('failed');
}

/** "RangeError: … (at vendor/uplot/uPlot.esm.js:442)": the message and, from the stack, where. */
function describe(error) {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const at = /(https?:\/\/[^\s()]+?):(\d+):\d+/.exec(error?.stack ?? '');
  if (!at) return text;
  const file = at[1].startsWith(location.origin) ? at[1].slice(location.origin.length + 1) : at[1];
  return `${text} (at ${file}:${at[2]})`;
}

addEventListener('error', (e) => {
  // Not a failure: the notice that resize observations (the charts') were left for the next
  // frame, which browsers report as an error event with no error object.
  // https://drafts.csswg.org/resize-observer/#deliver-resize-loop-error-notification
  if (!e.error && /ResizeObserver loop/.test(e.message)) return;
  const message = describe(e.error ?? e.message);
  if (app) app.reportUncaught(message);
  else showFailure(`The page could not start: ${message}`);
});
addEventListener('unhandledrejection', (e) => {
  const message = describe(e.reason);
  if (app) app.reportUncaught(message);
  else showFailure(`The page could not start: ${message}`);
});

ensureSupportedLanguage();
const watchdog = setTimeout(() => {
  showFailure(`The page's scripts have not loaded after ${WATCHDOG_MS / 1000} s (a slow connection, or a server that does not answer). `
    + 'The page goes on if they arrive; otherwise reload it.');
}, WATCHDOG_MS);
const appUrl = new URL('./app.js', import.meta.url).href;
import(appUrl).then((module) => {
  clearTimeout(watchdog);
  $('reload')?.remove(); // the watchdog's, if the modules came late: the app shows its own state
  app = module;
}, async (e) => {
  clearTimeout(watchdog);
  // The browser's message names app.js, not the module that is missing: find it.
  const missing = await import('./shared/probe.js').then((p) => p.missingModule(appUrl), () => null);
  showFailure(`The page could not start: ${missing ?? describe(e)}`);
});
