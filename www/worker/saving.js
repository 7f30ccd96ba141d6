// The worker's saved run: one IndexedDB record (idb-keyval) holding the run's configuration, its
// epoch history and the core's `saveState` (weights, optimizer state, loader position), taken only
// between epochs, so that a reload resumes the run exactly where its last epoch ended.
//
// Writes are queued in order (`state.saving`). While training, an epoch's snapshot is written at
// once unless the previous write is still going or was less than SAVE_EVERY_MS ago; it then waits
// for the next epoch's end or `flushSave` (a pause, a stop, a failure and the run's end write the
// latest snapshot at once). `ctx` is worker.js's: {state, post, fail, modelContext}.

import { del, get, set, update } from '../vendor/idb-keyval/index.js';
import { Model } from './backend.js';

/** Least time between two IndexedDB writes of the run while it trains. Each writes the whole run
 *  (6 MB for the lecture model), which cost the training threads of a 2-core machine a few
 *  percent when written after every epoch. */
const SAVE_EVERY_MS = 5000;

/** Snapshots the run now and queues its IndexedDB write behind earlier ones. Resolves once the
 *  snapshot is taken, with `{written}`: the write's promise (training need not wait for the disk).
 *  `interrupted` marks a run that should carry on by itself after a reload. */
export async function saveModel({ state }, { interrupted = false } = {}) {
  if (!state.store) return { written: Promise.resolve() };
  const record = await snapshot(state, interrupted);
  return { written: queueWrite(state, () => set(state.storeKey, record, state.store)) };
}

/** After an epoch: its snapshot, written at once unless the previous one is still being written
 *  or was written less than SAVE_EVERY_MS ago; then it waits for the next epoch's end or
 *  `flushSave`. Resolves once the snapshot is taken, before the write. */
export async function saveEpoch(ctx, interrupted) {
  const { state } = ctx;
  if (!state.store) return;
  try {
    state.pendingSave = await snapshot(state, interrupted);
  } catch (e) {
    ctx.fail('save', e);
    return;
  }
  if (!state.epochWrite && performance.now() - state.lastWriteAt >= SAVE_EVERY_MS) writePending(ctx);
}

/** The run as IndexedDB keeps it (between epochs). */
async function snapshot(state, interrupted) {
  const history = [...state.history];
  return { config: state.config, history, state: await state.session.saveState(), interrupted, seedDrawn: state.seedDrawn, origin: state.origin, savedAt: Date.now() };
}

function writePending({ state, fail }) {
  const record = state.pendingSave;
  if (!record) return;
  state.pendingSave = null;
  state.lastWriteAt = performance.now();
  const write = queueWrite(state, () => set(state.storeKey, record, state.store)).catch((e) => fail('save', e))
    .finally(() => { if (state.epochWrite === write) state.epochWrite = null; });
  state.epochWrite = write;
}

/** Writes the snapshot still waiting, if any; resolves when the writes are done. */
export async function flushSave(ctx) {
  writePending(ctx);
  await ctx.state.epochWrite; // never rejects: writePending reports its failure
}

/** Marks the saved run as not to be resumed by itself (the user stopped it). */
export function markNotInterrupted({ state }) {
  if (!state.store) return Promise.resolve();
  return queueWrite(state, () => update(state.storeKey, (r) => (r ? { ...r, interrupted: false } : r), state.store));
}

function queueWrite(state, write) {
  state.saving = state.saving.catch(() => {}).then(write);
  return state.saving;
}

/** `restore`: the saved run, if any, becomes the session (`restored`, found or not; a record that
 *  cannot be resumed is deleted and the reply says why). */
export async function restore({ state, post, modelContext }) {
  const saved = state.store ? await get(state.storeKey, state.store) : undefined;
  if (!saved || !state.data) { post({ type: 'restored', found: false }); return; }
  try {
    state.session?.free();
    state.session = null;
    // Resumes exactly where the saved epoch ended (the run then ends as an uninterrupted one), on
    // the chosen backend, whichever saved it: both save the same state.
    state.session = await Model.resume(modelContext(), new Uint8Array(saved.state), state.backend.kind);
    const info = await state.session.info();
    state.config = info.config;
    state.history = saved.history ?? [];
    state.seedDrawn = Boolean(saved.seedDrawn);
    state.origin = saved.origin === 'weights' ? 'weights' : 'init';
    if (info.epochsDone !== state.history.length) throw new Error('the saved history does not match the saved run');
    post({ type: 'restored', found: true, config: state.config, history: state.history, summary: info.summary, interrupted: Boolean(saved.interrupted) && state.history.length < state.config.epochs, seedDrawn: state.seedDrawn });
  } catch (e) {
    await del(state.storeKey, state.store);
    state.session?.free();
    state.session = null;
    post({ type: 'restored', found: false, discarded: String(e?.message ?? e) });
  }
}

/** `forget`: deletes the saved run. */
export async function forget({ state, post }) {
  if (state.store) await del(state.storeKey, state.store);
  post({ type: 'forgotten' });
}
