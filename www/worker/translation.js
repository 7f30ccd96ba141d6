// The worker's side of translation (the lecture's last slide): a picture moved by the page's shift
// control, and the translation test of the model. worker.js merges `translationHandlers` into its
// handlers; training.js calls `measureTranslation` when a run ends, with no click.
//
// Cost: a shift is two forward passes and one backward pass (milliseconds); the test is
// 2000 x 25 forward passes on the test split (a few seconds on wasm), run once per finished run
// and never between training slices.

/** The wasm Session to read (backend.js Model.inspection: on WebGPU, its copy on the CPU). */
function session(state) {
  if (!state.session) throw new Error('no model yet: train or load one first');
  return state.session.inspection();
}

/** Runs the translation test of the current model and posts it as `translation`. */
export function measureTranslation(state, post) {
  const s = session(state);
  const t = s.translationTest();
  state.translation = {
    shifts: Array.from(t.shift_px), accuracies: Array.from(t.shift_accuracy),
    similarities: Array.from(t.shift_similarity), seconds: t.seconds, epoch: s.epochsDone(),
    conv: Boolean(state.config?.model?.conv?.length), augment: state.config?.augment ?? 'none',
  };
  post({ type: 'translation', ...state.translation });
}

export function translationHandlers(state, post) {
  return {
    /** A picture (`rgba`, `width`, `height`) or image `index` of `split`, moved by `dx, dy`. */
    shift({ rgba, width, height, split, index, dx = 0, dy = 0 }) {
      const s = session(state);
      const v = rgba ? s.shiftRgba(new Uint8Array(rgba), width, height, dx, dy) : s.shiftImage(split, index, dx, dy);
      post({
        type: 'shift', dx: v.dx, dy: v.dy, image: v.image, probabilities: Array.from(v.probabilities), class: v.class,
        magnitude: v.magnitude, magnitudeMax: v.magnitude_max, kind: v.kind, original: v.original, shifted: v.shifted,
        side: v.side, second: v.second, secondShifted: v.second_shifted, secondSide: v.second_side,
        similarity: v.similarity, classes: state.data.classes(), epoch: s.epochsDone(),
      }, [v.image.buffer, v.magnitude.buffer, v.original.buffer, v.shifted.buffer, v.second.buffer, v.second_shifted.buffer]);
    },

    /** The translation test now (the last run's result if the model has not changed since). */
    translation() {
      const s = session(state);
      if (state.translation && state.translation.epoch === s.epochsDone() && !state.running) {
        post({ type: 'translation', ...state.translation });
        return;
      }
      measureTranslation(state, post);
    },
  };
}
