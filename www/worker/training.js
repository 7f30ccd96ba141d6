// The worker's training: a new run or the one on the page continued (moved to another backend or
// given more epochs), trained in slices of about SLICE_MS so that the messages queued meanwhile
// (pause, stop, a picture's question) are handled between two slices. Each slice posts
// `progress`; each epoch posts `epoch` and is snapshotted for IndexedDB (saving.js); the run ends
// with `done` or `stopped`. `ctx` is worker.js's: {state, post, fail, modelContext}.

import { Model } from './backend.js';
import { trainMore } from './inspect.js';
import { measureTranslation } from './translation.js';
import { flushSave, markNotInterrupted, saveEpoch } from './saving.js';
import { yieldToEvents } from './yield.js';

/** Milliseconds of training per slice: short enough for a prompt pause, long enough to be cheap. */
const SLICE_MS = 80;

/** A new run of `config` on the chosen backend (a run the GPU fails to start, out of memory or
 *  without a device, starts on wasm, and the page is told why: backend.js). */
export async function newSession({ state, modelContext }, config, seedDrawn = false) {
  if (!state.data) throw new Error('the data is not loaded yet');
  state.session?.free();
  state.session = null;
  state.session = await Model.create(modelContext(), config, state.backend.kind);
  state.config = (await state.session.info()).config;
  state.seedDrawn = seedDrawn;
  state.origin = 'init';
  state.history = [];
}

/** `train`: a new run of `config` (its seed drawn now with `drawSeed`), or with `continueRun`
 *  the session's own, `more` epochs further ("Train more"). */
export async function train(ctx, { config, continueRun = false, drawSeed = false, more = 0 }) {
  const { state, post } = ctx;
  if (state.running) throw new Error('training is already running');

  state.running = true;
  let finished = false;
  try {
    if (!continueRun || !state.session) {
      // A new seed from the browser's entropy source (getrandom in the core); it is recorded in
      // the run's configuration, so the run can be repeated with it.
      await newSession(ctx, drawSeed ? { ...config, seed: state.wasm.randomSeed() } : config, drawSeed);
    } else {
      if (state.session.kind !== state.backend.kind) await moveSession(ctx);
      // "Train more": the same run, its epoch budget raised (saveState records it, so a reload
      // resumes to the new budget).
      if (more) await trainMore(state, more);
    }
    state.paused = false;
    state.stopRequested = false;
    const info = await state.session.info();
    post({ type: 'started', config: state.config, summary: info.summary, batchesPerEpoch: info.batchesPerEpoch, trainSize: info.trainLength, epochsDone: state.history.length, seedDrawn: state.seedDrawn, backend: state.session.kind });
    finished = await trainEpochs(ctx, state.config.epochs);
  } finally {
    state.running = false;
  }
  // The translation test, measured by itself when a run ends, after `done`: in slices, between
  // which the page's own requests (the final evaluation, the gallery, a picture) are answered. A
  // new run stops it (worker/translation.js).
  if (finished) measureTranslation(ctx.state, ctx.post).catch((e) => ctx.fail('translation', e));
}

/** The training loop: slices of about SLICE_MS until `epochs` epochs are done or a stop. Returns
 *  whether the run finished with at least one epoch (not stopped). */
async function trainEpochs(ctx, epochs) {
  const { state, post, fail } = ctx;
  let batches = 4;
  try {
    while (state.history.length < epochs && !state.stopRequested) {
      if (state.paused) {
        await flushSave(ctx); // a reload while paused finds the latest epoch
        if (state.paused) await new Promise((r) => { state.resume = r; });
        continue;
      }
      const t0 = performance.now();
      const kind = state.session.kind;
      const step = await state.session.trainBatches(batches);
      const ms = performance.now() - t0;
      post({ type: 'progress', progress: step.progress, batches, seconds: ms / 1000 });
      if (step.epoch) {
        state.history.push(step.epoch);
        post({ type: 'epoch', stats: step.epoch });
        await saveEpoch(ctx, state.history.length < epochs);
      }
      // A move to wasm mid-run (a GPU fault): the slice size is measured anew.
      if (state.session.kind !== kind) { batches = 4; await yieldToEvents(); continue; }
      // Aim for SLICE_MS per slice whatever the machine and model.
      batches = Math.max(1, Math.min(1000, Math.round(batches * SLICE_MS / Math.max(ms, 1))));
      await yieldToEvents();
    }
    await flushSave(ctx);
    if (state.stopRequested) markNotInterrupted(ctx).catch((e) => fail('save', e));
    post({ type: state.stopRequested ? 'stopped' : 'done', epochs: state.history.length });
    return !state.stopRequested && state.history.length > 0;
  } catch (e) {
    // A run that failed (it diverged) must not resume by itself after a reload only to fail
    // again: the saved model of its last good epoch stays, for the user to continue or not.
    flushSave(ctx).then(() => markNotInterrupted(ctx)).catch(() => {});
    throw e;
  }
}

/** Moves the run to the chosen backend (the choice changed since it was made), between epochs;
 *  a run stopped within an epoch stays where it is until that epoch ends. */
async function moveSession({ state, modelContext }) {
  let saved;
  try {
    saved = await state.session.saveState();
  } catch {
    return; // within an epoch
  }
  const moved = await Model.resume(modelContext(), saved, state.backend.kind);
  state.session.free();
  state.session = moved;
}
