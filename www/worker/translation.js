// The worker's side of translation (the lecture's last slide): a picture moved by the page's shift
// controls, and the translation test of the model. worker.js merges `translationHandlers` into its
// handlers; training.js calls `measureTranslation` when a run ends, with no click.
//
// Cost: a shift is two forward passes and one backward pass (milliseconds); the test is
// 2000 x 25 forward passes on the test split (seconds for the MLP, up to a minute for `conv` on
// wasm), run once per finished run in slices of about TEST_SLICE_MS, as training is: between two
// slices the worker answers the page's other requests (a picture to classify or to move, the
// views), so none waits for the test.

import { yieldToEvents } from './yield.js';

/** Milliseconds of the translation test per slice (at least one forward pass of 500 images). */
const TEST_SLICE_MS = 80;

/** The wasm Session to read (backend.js Model.inspection: on WebGPU, its copy on the CPU). */
function session(state) {
  if (!state.session) throw new Error('no model yet: train or load one first');
  return state.session.inspection();
}

/** Runs the translation test of the current model in slices and posts `translation-progress`
 *  {progress, epoch} after each, then `translation`. A new run, another model or more training
 *  ends it unfinished (nothing is posted); a test already running is not started twice. */
export async function measureTranslation(state, post) {
  if (state.translationRun) return;
  const model = state.session;
  const s = session(state);
  const epoch = s.epochsDone();
  const run = new state.wasm.TranslationRun(s);
  state.translationRun = run;
  const stale = () => state.running || state.session !== model || !model || session(state) !== s || s.epochsDone() !== epoch;
  try {
    let passes = 1;
    let slices = 0;
    let longest = 0;
    for (;;) {
      // The requests queued meanwhile first (the page's, sent on `done`, before the first slice).
      await yieldToEvents();
      if (stale()) return;
      const t0 = performance.now();
      const before = run.passes;
      const done = run.step(s, passes);
      const ms = performance.now() - t0;
      slices++;
      longest = Math.max(longest, ms);
      post({ type: 'translation-progress', progress: run.progress(), epoch });
      if (done) break;
      // Aim for TEST_SLICE_MS per slice whatever the machine and model, at most twice as many
      // passes as the last slice (one timed in a lull must not make the next one long).
      const made = run.passes - before;
      passes = Math.max(1, Math.min(2 * made, Math.round((made * TEST_SLICE_MS) / Math.max(ms, 1))));
    }
    const t = run.result();
    state.translation = {
      shifts: Array.from(t.shift_px), accuracies: Array.from(t.shift_accuracy),
      similarities: Array.from(t.shift_similarity), seconds: t.seconds, slices, longestSliceMs: longest, epoch,
      conv: Boolean(state.config?.model?.conv?.length), augment: state.config?.augment ?? 'none',
    };
    post({ type: 'translation', ...state.translation });
  } finally {
    run.free();
    state.translationRun = null;
  }
}

export function translationHandlers(state, post) {
  return {
    /** A picture (`rgba`, `width`, `height`) or image `index` of `split`, moved by `dx, dy`; the
     *  saliency of `class` (default: the moved picture's answer). */
    shift({ rgba, width, height, split, index, dx = 0, dy = 0, class: cls }) {
      const s = session(state);
      const v = rgba
        ? s.shiftRgba(new Uint8Array(rgba), width, height, dx, dy, cls ?? undefined)
        : s.shiftImage(split, index, dx, dy, cls ?? undefined);
      post({
        type: 'shift', dx: v.dx, dy: v.dy, image: v.image, probabilities: Array.from(v.probabilities), class: v.class,
        magnitude: v.magnitude, magnitudeMax: v.magnitude_max, kind: v.kind, original: v.original, shifted: v.shifted,
        side: v.side, second: v.second, secondShifted: v.second_shifted, secondSide: v.second_side,
        similarity: v.similarity, classes: state.data.classes(), epoch: s.epochsDone(),
      }, [v.image.buffer, v.magnitude.buffer, v.original.buffer, v.shifted.buffer, v.second.buffer, v.second_shifted.buffer]);
    },

    /** The translation test now (the last run's result if the model has not changed since; a
     *  test running already posts its own when it ends). */
    async translation() {
      const s = session(state);
      if (state.translation && state.translation.epoch === s.epochsDone() && !state.running) {
        post({ type: 'translation', ...state.translation });
        return;
      }
      await measureTranslation(state, post);
    },
  };
}
