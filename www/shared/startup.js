// The start-up sequence of the page and the widget, written once:
//
//   init ─────────────► ready ──► preset × n ──┐
//   load-data ─► data-progress* ─► data-ready ─┴─► restore (page) ─► restored
//
// `init` and `load-data` go out together: the worker downloads (or reads from its cache) and
// hashes the data while the wasm module compiles and its threads start. A watchdog reports a
// worker that stays silent (no reply, no progress) for SILENT_MS, so that a start that hangs is
// never silent either; it does not give up on the worker, which may still answer.

/** Longest silence of the worker during the start before `onSilent` is told. */
export const SILENT_MS = 20_000;

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
 */
export async function startWorker(client, { init = {}, dataUrl, presets = [], restore = false, onReady, onSilent }) {
  const watchdog = silenceWatchdog(client, onSilent);
  try {
    const readyP = client.request({ type: 'init', ...init }, 'ready');
    const dataP = client.request({ type: 'load-data', url: dataUrl }, 'data-ready');
    dataP.catch(() => {}); // reported below, after init's own error if both fail
    let ready;
    const configs = {};
    try {
      ready = await readyP;
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
