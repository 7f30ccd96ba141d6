// The start-up sequence of the page and the widget, written once:
//
//   init ─────────────► ready ──► preset × n ──┐
//   load-data ─► data-progress* ─► data-ready ─┴─► restore (page) ─► restored
//
// `init` and `load-data` go out together: the worker downloads (or reads from its cache) and
// hashes the data while the wasm module compiles and its threads start. A watchdog reports a
// worker that stays silent (no reply, no progress) for SILENT_MS, so that a start that hangs is
// never silent either; it does not give up on the worker, which may still answer.
//
// A worker whose thread is stuck while `init` runs is started afresh: the worker sends `alive`
// every second until it is ready, so a pulse missing for STALL_MS means its thread is blocked,
// not slow. Firefox ESR 153 sometimes blocks the training worker for good while wasm-bindgen-rayon
// starts the thread pool (about one threaded start in five here, with nothing in the console);
// a fresh worker starts normally.

/** Longest silence of the worker during the start before `onSilent` is told. */
export const SILENT_MS = 20_000;
/** Longest gap in the worker's pulse, while `init` runs, before the worker is started afresh. */
export const STALL_MS = 6_000;
/** Fresh workers tried after a stuck one, before the start is reported as failed. */
export const STALL_RETRIES = 2;

/** A failed step of the start: `step` is 'init' or 'load-data'. */
export class StartError extends Error {
  constructor(step, cause) {
    super(cause?.message ?? String(cause));
    this.step = step;
  }
}

/**
 * Starts the worker of `client`. Resolves with `{ready, presets, data, restored, restoreError}`:
 * `presets` maps each of `presets` (names) to its TrainConfig, from the core (wasm presetConfig);
 * `restored` is the `restored` reply when `restore` is set. Rejects with a StartError.
 * `onReady(ready, presets)` runs as soon as the worker is up (before the data is in);
 * `onSilent(seconds | null)` when the worker has said nothing for SILENT_MS (null: it spoke again).
 * `dataUrl` is the bundle's folder or its manifest.json; `dataFiles`, optional, maps the bundle's
 * file names to their URLs (a bundle's `files.js`, whose URLs a bundler may have rewritten).
 */
export async function startWorker(client, { init = {}, dataUrl, dataFiles, presets = [], restore = false, onReady, onSilent }) {
  const watchdog = silenceWatchdog(client, onSilent);
  try {
    let ready;
    let dataP;
    const configs = {};
    try {
      ({ ready, dataP } = await initUnstuck(client, init, dataUrl, dataFiles));
      for (const name of presets) configs[name] = (await client.request({ type: 'preset', name }, 'preset')).config;
    } catch (e) {
      throw new StartError('init', e);
    }
    onReady?.(ready, configs);
    const data = await dataP.catch((e) => { throw new StartError('load-data', e); });
    let restored = null;
    let restoreError = null;
    if (restore) {
      try {
        restored = await client.request({ type: 'restore' }, 'restored');
      } catch (e) {
        restoreError = e;
      }
    }
    return { ready, presets: configs, data, restored, restoreError };
  } finally {
    watchdog.stop();
  }
}

/** Calls `onSilent(seconds)` once the worker of `client` has been silent for SILENT_MS, and
 *  `onSilent(null)` when it speaks again. */
function silenceWatchdog(client, onSilent) {
  if (!onSilent) return { stop() {} };
  let silent = false;
  const timer = setInterval(() => {
    const quiet = performance.now() - client.heardAt >= SILENT_MS;
    if (quiet !== silent && !client.dead) {
      silent = quiet;
      onSilent(quiet ? Math.round((performance.now() - client.heardAt) / 1000) : null);
    }
  }, 1000);
  return {
    stop() {
      clearInterval(timer);
      if (silent) onSilent(null);
    },
  };
}

/** Sends `init` and `load-data`; resolves with init's reply and the pending `load-data` once the
 *  worker is ready. A worker whose pulse stops before then (see the header) is replaced by a
 *  fresh one, up to STALL_RETRIES times. */
async function initUnstuck(client, init, dataUrl, dataFiles) {
  for (let attempt = 0; ; attempt++) {
    const readyP = client.request({ type: 'init', ...init }, 'ready');
    const dataP = client.request({ type: 'load-data', url: dataUrl, files: dataFiles }, 'data-ready');
    dataP.catch(() => {}); // reported by startWorker, after init's own error if both fail
    const stall = stalled(client);
    try {
      const ready = await Promise.race([readyP, stall.promise]);
      if (ready) return { ready, dataP };
    } finally {
      stall.stop();
    }
    readyP.catch(() => {});
    if (attempt >= STALL_RETRIES) {
      throw new Error(`the training worker stopped responding while it started (${attempt + 1} tries); reload the page to try again`);
    }
    console.warn(`The training worker stopped responding while it started; starting a fresh one (try ${attempt + 2}).`);
    client.restart();
  }
}

/** `promise` resolves (with null) once the worker has sent nothing for STALL_MS. */
function stalled(client) {
  let timer;
  const promise = new Promise((resolve) => {
    timer = setInterval(() => {
      if (!client.dead && performance.now() - client.pulseAt >= STALL_MS) resolve(null);
    }, 500);
  });
  return { promise, stop: () => clearInterval(timer) };
}
