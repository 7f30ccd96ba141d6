// The worker's side of "what it learned": hidden units as pictures, top activations, "why this
// answer?" (saliency and nearest neighbours), hard examples, the PyTorch band, and "train more".
// worker.js imports `inspectHandlers` and merges them into its `handlers`; the messages are listed
// in client.js's protocol table.
//
// Cost while training: nothing runs here unless the page asks, and the page asks at most once per
// epoch (tiles, hard examples, band) or per picture refresh (saliency, about 6 ms). The heavy part,
// the scan of the training images behind top activations and neighbours (3 to 7 s on one wasm
// thread), never runs between training slices: while a run is training and not paused, `unit` and
// `neighbours` answer `deferred: 'training'` and the page asks again once training pauses or ends.

/** Images per unit and direction, and neighbours per picture (the core's default, 8). */
const TOP = 8;

/** Installs the handlers for `state` (worker.js's state: session, data, history, running, paused,
 *  origin) that reply through `post(msg, transfer)`. */
export function inspectHandlers(state, post) {
  // The wasm Session to read: the run's own on wasm, its copy on the CPU on WebGPU (backend.js
  // Model.inspection).
  const session = () => {
    if (!state.session) throw new Error('no model yet: train or load one first');
    return state.session.inspection();
  };
  /** The scan may run now: no training slice is due (idle, done, stopped or paused). */
  const scanAllowed = () => !state.running || state.paused;
  const trainImages = (indices) => state.data.imagesRgba('train', Uint32Array.from(indices));

  let band = null; // the committed PyTorch band (wasm pytorchBand), parsed once

  return {
    /** Unit tiles: the latest kept snapshot, or the kept one nearest to `epoch` (the scrubber's;
     *  the history is thinned as training goes on, so an epoch shown before may be gone). */
    units({ epoch = null } = {}) {
      const s = session();
      const kept = s.unitTileEpochs().epochs;
      const at = epoch == null ? kept[kept.length - 1] : kept.reduce((best, e) => (Math.abs(e - epoch) < Math.abs(best - epoch) ? e : best));
      const t = s.unitTilesAt(at);
      // `change` (W - W0 as tiles) is null for a run from a file's weights (start unknown).
      post({
        type: 'units', asked: epoch, epoch: t.epoch, epochs: kept, units: t.units, classes: t.classes,
        tiles: t.tiles, scale: t.scale, votes: t.votes, votesExact: t.votes_exact, order: t.order,
        change: t.change, changeScale: t.change_scale, changeRelative: t.change_relative,
      }, [t.tiles.buffer, t.scale.buffer, t.votes.buffer, t.order.buffer, ...(t.change ? [t.change.buffer, t.change_scale.buffer] : [])]);
    },

    /** One unit's 8 most and 8 most negatively activating training images, with the current
     *  weights. */
    unit({ unit }) {
      const s = session();
      if (!scanAllowed()) { post({ type: 'unit', unit, deferred: 'training' }); return; }
      const scanned = s.inspectionReady();
      const a = s.topActivations(unit);
      const images = trainImages([...a.top, ...a.bottom]);
      post({
        type: 'unit', unit, epoch: s.epochsDone(), scanned: !scanned,
        top: a.top, topValues: a.top_values, topLabels: a.top_labels,
        bottom: a.bottom, bottomValues: a.bottom_values, bottomLabels: a.bottom_labels, images,
      }, [images.buffer]);
    },

    /** Saliency of a picture (`rgba`, `width`, `height`) or of image `index` of `split`, for
     *  `class` (default: the predicted one). */
    why({ rgba, width, height, split, index, class: cls }) {
      const s = session();
      const m = rgba
        ? s.saliencyRgba(new Uint8Array(rgba), width, height, cls ?? undefined)
        : s.saliencyImage(split, index, cls ?? undefined);
      const label = rgba ? null : state.data.labelsOf(split, Uint32Array.from([index]))[0];
      post({
        type: 'why', class: m.class, probabilities: Array.from(m.probabilities), logProbability: m.log_probability,
        magnitude: m.magnitude, magnitudeMax: m.magnitude_max, image: m.image, label, epoch: s.epochsDone(),
        classes: state.data.classes(),
      }, [m.magnitude.buffer, m.image.buffer]);
    },

    /** The training images nearest to a picture or to image `index` of `split`, in the first
     *  hidden layer's space (a convolutional model's first fully connected layer, fc1). */
    neighbours({ rgba, width, height, split, index, k = TOP }) {
      const s = session();
      if (!scanAllowed()) { post({ type: 'neighbours', deferred: 'training' }); return; }
      const scanned = s.inspectionReady();
      const n = rgba ? s.neighboursRgba(new Uint8Array(rgba), width, height, k) : s.neighboursImage(split, index, k);
      const images = trainImages(n.indices);
      post({
        type: 'neighbours', indices: n.indices, labels: n.labels, distances: n.distances, images,
        epoch: s.epochsDone(), scanned: !scanned,
      }, [images.buffer]);
    },

    /** The hard examples of this session's epochs, `n` per list, with their thumbnails. */
    async hard({ n = 12 } = {}) {
      // From the run itself, on either backend (not from the CPU copy of a WebGPU run).
      session();
      const h = await state.session.hardExamples(n);
      const unique = [...new Set([...h.most_wrong, ...h.forgotten, ...h.ambiguous].map((x) => x.index))];
      const slot = new Map(unique.map((i, k) => [i, k]));
      const withThumb = (list) => list.map((x) => ({ ...x, thumb: slot.get(x.index) }));
      const images = trainImages(unique);
      post({
        type: 'hard', epochs: h.epochs, images: h.images, forgettable: h.forgettable,
        mostWrong: withThumb(h.most_wrong), forgotten: withThumb(h.forgotten), ambiguous: withThumb(h.ambiguous),
        thumbs: images, classes: state.data.classes(),
      }, [images.buffer]);
    },

    /** The PyTorch band for this run: the preset it applies to (or why none does), the band's
     *  series for the charts, and where each finished epoch's validation accuracy and training
     *  loss stand in it. */
    band() {
      const s = session();
      band ??= state.wasm.pytorchBand();
      const { preset, reason } = bandApplies(state, s, band);
      const reply = { type: 'band', preset, reason, positions: [], lossPositions: [] };
      if (preset) {
        const p = band.presets[preset];
        const v = band.provenance;
        reply.series = { epochs: p.epochs, val_accuracy: p.val_accuracy, train_loss: p.train_loss };
        reply.provenance = { seeds: v.seeds, torch: v.torch, date: v.date, script: v.script };
        const at = (metric, e, value) => (e < p.epochs ? state.wasm.bandPositionFor(preset, metric, e, value) : null);
        reply.positions = state.history.map((e) => at('val_accuracy', e.epoch, e.val_accuracy));
        reply.lossPositions = state.history.map((e) => at('train_loss', e.epoch, e.loss));
      }
      post(reply);
    },
  };
}

/** `{preset, reason}`: the band's preset this run follows, or null and why none applies. */
function bandApplies(state, s, band) {
  const want = band.provenance.data;
  if (state.origin === 'weights') {
    return { preset: null, reason: 'this model started from uploaded weights, not from the recipe\'s random initialisation' };
  }
  const classes = state.data.classes();
  if (classes.join(',') !== want.classes.join(',')) {
    return { preset: null, reason: `the band was measured on ${want.classes.join(' vs ')}; this data is ${classes.join(' vs ')}` };
  }
  const n = s.trainLength();
  if (n !== want.train.count) {
    return { preset: null, reason: `the band was measured on all ${want.train.count.toLocaleString('en-US')} training images; this run uses ${n.toLocaleString('en-US')}` };
  }
  const preset = s.bandPreset();
  if (!preset) {
    return { preset: null, reason: `the band is for the recipes of the ${Object.keys(band.presets).join(' and ')} presets (their model, optimizer and batch size); this run's recipe differs` };
  }
  return { preset, reason: '' };
}

/** "Train more": the run's epoch budget becomes at least `epochsDone + more` (`extendEpochs`);
 *  `state.config` follows the session's. */
export async function trainMore(state, more) {
  const n = Number(more);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new Error(`train more: ${more} is not a number of epochs from 1 to 10000`);
  const extra = state.history.length + n - state.config.epochs;
  if (extra > 0) await state.session.extendEpochs(extra);
  state.config = (await state.session.info()).config;
}
