// What <skywatch-trainer> does (its shell and markup are in widget.js): on Train, it starts its
// own worker with the shared start-up sequence (the model stays in memory: `persist: false`),
// trains the preset of its attributes, follows the progress and the epochs, and classifies a
// dropped or chosen picture with the shared prediction view. Once training is done it shows the
// 16 hidden units with the strongest votes (`units`, shared/tiles.js), and "Train more" goes on
// from the model for as many epochs again (`train` with `more`).
//
// Its two runs: quick (the default; sized for one wasm thread on a blog that is not cross-origin
// isolated) and the full lecture run (the whole bundle, 100 epochs), offered only where the
// browser has a real GPU (WebGPU needs no isolation): the reader picks it in the select next to
// Train, which is shown only then (and with backend="webgpu", for any adapter: the tests'
// software one). The probe is the page's own `navigator.gpu.requestAdapter()`, so that nothing is
// downloaded before Train; the worker then decides again with the core's probe and says which
// backend runs in the mode line.

import { WorkerClient, sameOriginWorkerUrl } from '../client.js';
import { startWorker } from '../shared/startup.js';
import { predictFile, renderPrediction, wireDropZone } from '../shared/prediction.js';
import { acc } from '../shared/format.js';
import { changeFirst, drawAtlas } from '../shared/tiles.js';
import { attribute, attributeProblems } from './attributes.js';

/** Units in the strip shown after training: the strongest voters. */
const STRIP_UNITS = 16;

/** The quick run's data: the bundle's `files.js` (written with it by `skywatch subset`) names its
 *  manifest and files as static `new URL('./name', import.meta.url)`, which bundlers follow; so
 *  does this literal `import()`. */
const QUICK = { epochs: 5, files: () => import('../data-quick/files.js') };
/** The lecture's recipe: every training image of the full bundle, 100 epochs (on a GPU). Its
 *  default is the folder beside an unbundled widget (`skywatch build` writes data/ there): the one
 *  folder URL, which bundlers leave alone. The npm package does not carry the full bundle (37 MB);
 *  there `data-url` names it. */
const FULL = { epochs: 100, folder: () => new URL(/* @vite-ignore */ '../data/', import.meta.url).href };
/** Whether to offer the full run for the backend choice `backend`: a real GPU (any adapter when
 *  WebGPU is asked for by name). */
async function gpuOffered(backend) {
  if (backend === 'wasm' || !navigator.gpu) return false;
  try {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return false;
    // `info` since Chrome 127 / Safari 26; before, the flag was on the adapter.
    const software = adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false;
    return backend === 'webgpu' || !software;
  } catch {
    return false;
  }
}

/** Brings the widget `host` (its shadow root `root`) to life; returns the controller, whose
 *  `drop()` ends its worker. */
export function attach(host, root) {
  return new Trainer(host, root);
}

/** The training worker. The literal form is the one bundlers recognise (they bundle worker.js and
 *  rewrite the URL); from another origin (the widget on a CDN) a Worker cannot start directly, so
 *  a same-origin blob module imports it (client.js). */
function startTrainingWorker() {
  const url = new URL('../worker.js', import.meta.url);
  if (url.origin === location.origin) return new Worker(new URL('../worker.js', import.meta.url), { type: 'module' });
  return new Worker(sameOriginWorkerUrl(url), { type: 'module' });
}

class Trainer {
  #host;
  #ui;
  // `ready`: the started worker with its data (a promise), cleared with `client` when the worker
  // crashes or fails to start, so that the next Train starts a fresh one.
  // `dataUrl`: the bundle the worker has loaded.
  #state = { client: null, ready: null, history: [], hasModel: false, crashed: false, config: null, budget: 0, dataUrl: null };

  constructor(host, root) {
    this.#host = host;
    const $ = (sel) => root.querySelector(sel);
    this.#ui = {
      train: $('#train'), mode: $('[data-metric="mode"]'), progress: $('.progress'), bar: $('#bar'),
      barLabel: $('#bar-label'), val: $('[data-metric="val-accuracy"]'), trainAcc: $('[data-metric="train-accuracy"]'),
      epoch: $('[data-metric="epoch"]'), epochs: $('#epochs'), spark: $('polyline'), drop: $('#drop'),
      file: $('#file'), answer: $('.answer'), canvas: $('.answer canvas'), bars: $('.bars'),
      prediction: $('[data-metric="prediction"]'), error: $('.error'), full: $('#full'),
      more: $('#more'), strip: $('.strip'), stripCanvas: $('.strip canvas'), stripWhat: $('.strip .what'),
      recipe: $('#recipe'), recipeLabel: $('.recipe'), backend: $('[data-metric="backend"]'),
    };
    this.#ui.epochs.textContent = String(this.#config().epochs);
    this.#ui.full.href = this.#fullPageUrl();
    this.#ui.recipe.value = attribute(host, 'recipe', 'quick');
    this.#ui.recipe.addEventListener('change', () => { this.#ui.epochs.textContent = String(this.#config().epochs); });
    // The choice appears once the GPU is found (`data-gpu-offered` tells tests the probe is over).
    gpuOffered(this.#config().backend).then((offered) => {
      this.#ui.recipeLabel.hidden = !offered;
      host.dataset.gpuOffered = String(offered);
      this.#ui.epochs.textContent = String(this.#config().epochs);
    });
    this.#ui.train.addEventListener('click', () => this.#onTrain());
    this.#ui.more.addEventListener('click', () => this.#onTrainMore());
    this.#ui.more.textContent = `Train ${this.#config().epochs} more epochs`;
    wireDropZone(this.#ui.drop, this.#ui.file, (f) => this.#classify(f), () => this.#showError('Drop an image file (from your computer, not a link).'));
    this.#setPhase('idle');
    // An attribute not understood is named, and an autostart then waits for Train: the author
    // sees the message before a run other than the one meant starts.
    const problems = attributeProblems(host);
    this.#showProblems(root, problems, host.hasAttribute('autostart'));
    if (host.hasAttribute('autostart') && problems.length === 0) this.#onTrain();
  }

  /** The attributes not understood, listed inside the widget (as text, a long value cut short). */
  #showProblems(root, problems, autostart) {
    this.#host.dataset.attributeProblems = String(problems.length);
    const box = root.querySelector('[data-view="attribute-problems"]');
    box.hidden = problems.length === 0;
    box.querySelector('.waits').hidden = !autostart;
    const clip = (v) => (v.length > 60 ? `${v.slice(0, 60)}…` : v);
    box.querySelector('ul').replaceChildren(...problems.map((p) => {
      const li = document.createElement('li');
      const code = document.createElement('code');
      code.textContent = p.value === null ? p.name : `${p.name}="${clip(p.value)}"`;
      li.append(code, `: ${p.message}; ${p.fallback === 'ignored' ? 'ignored' : `using ${p.fallback}`}.`);
      return li;
    }));
  }

  /** Forgets the worker and its model. */
  drop() {
    this.#state.client?.worker.terminate();
    Object.assign(this.#state, { client: null, ready: null, hasModel: false });
  }

  #config() {
    const h = this.#host;
    // The full run only when it is offered (the select is shown); its attributes still apply.
    const recipe = !this.#ui.recipeLabel.hidden && this.#ui.recipe.value === 'full' ? FULL : QUICK;
    return {
      preset: attribute(h, 'preset', 'lecture'),
      full: recipe === FULL,
      epochs: attribute(h, 'epochs', recipe.epochs),
      seed: attribute(h, 'seed', 0),
      trainSize: attribute(h, 'train-size', null),
      augment: attribute(h, 'augment', 'none'),
      // A given data-url is relative to the page; else the recipe's own bundle (#dataSource).
      dataUrl: h.hasAttribute('data-url') ? new URL(h.getAttribute('data-url'), document.baseURI).href : recipe === FULL ? FULL.folder() : 'quick',
      backend: attribute(h, 'backend', 'auto'),
    };
  }

  #fullPageUrl() {
    // A link, never fetched: relative to the widget's folder, as the attribute is documented.
    const page = new URL(this.#host.getAttribute('full-page') ?? 'index.html', new URL('../widget.js', import.meta.url));
    const c = this.#config();
    page.searchParams.set('preset', c.preset);
    page.searchParams.set('seed', String(c.seed));
    if (c.backend !== 'auto') page.searchParams.set('backend', c.backend);
    return page.href;
  }

  #setPhase(phase) {
    this.#host.dataset.state = phase === 'idle' ? 'ready' : phase;
    const busy = phase === 'loading' || phase === 'training';
    this.#ui.train.disabled = busy;
    this.#ui.recipe.disabled = busy;
    this.#ui.train.textContent = phase === 'done' ? 'Train again' : busy ? 'Training…' : 'Train';
    this.#ui.more.hidden = !this.#state.hasModel || phase === 'error';
    this.#ui.more.disabled = busy;
    this.#ui.drop.disabled = !(phase === 'done' || (phase === 'ready' && this.#state.hasModel));
  }

  #showError(message) {
    this.#ui.error.textContent = message;
    this.#ui.error.hidden = !message;
  }

  /** The worker, started and with its data loaded (once; again after a failure or a crash). */
  #start() {
    this.#state.ready ??= this.#connect().catch((e) => {
      this.drop();
      throw e;
    });
    return this.#state.ready;
  }

  async #connect() {
    const client = new WorkerClient(new URL('../worker.js', import.meta.url), startTrainingWorker);
    this.#state.client = client;
    client.on('crash', ({ message, starting }) => {
      if (starting) return; // the start-up sequence fails with the reason
      this.drop();
      this.#state.crashed = true;
      this.#showError(`The trainer stopped: ${message}. Press Train to start again.`);
      this.#setPhase('error');
    });
    client.on('data-progress', ({ loaded, total }) => {
      this.#ui.barLabel.textContent = 'Downloading the pictures…';
      this.#ui.bar.max = total || loaded;
      this.#ui.bar.value = loaded;
    });
    client.on('progress', ({ progress }) => {
      this.#ui.barLabel.textContent = `Epoch ${progress.epoch + 1}: batch ${progress.batch} of ${progress.batches}`;
      this.#ui.bar.max = progress.batches;
      this.#ui.bar.value = progress.batch;
    });
    client.on('epoch', ({ stats }) => this.#onEpoch(stats));
    client.on('started', ({ config }) => {
      this.#state.config = config;
      this.#state.budget = config.epochs;
      this.#ui.epochs.textContent = String(config.epochs);
    });
    // A GPU fault moved the run to wasm: said, and training goes on.
    client.on('mode', ({ mode, fault }) => {
      this.#showMode(mode);
      if (fault) this.#showError(`The GPU stopped working (${fault.message}); training continues on WebAssembly from epoch ${fault.epochs}.`);
    });
    // The model stays in memory (persist: false): a reader's visit leaves nothing in IndexedDB.
    const c = this.#config();
    const source = await this.#dataSource(c.dataUrl);
    await startWorker(client, {
      init: { persist: false, backend: c.backend },
      dataUrl: source.url,
      dataFiles: source.files,
      onReady: ({ mode }) => {
        this.#showMode(mode);
        if (mode.notice) this.#showError(mode.notice);
      },
      onSilent: (seconds) => this.#showError(seconds == null ? '' : `The trainer has not answered for ${seconds} s; it may still be loading on a slow connection.`),
    });
    this.#state.dataUrl = c.dataUrl;
  }

  /** `{url, files}` for `load-data`: the quick bundle's static URLs (its files.js), or a folder. */
  async #dataSource(dataUrl) {
    if (dataUrl !== 'quick') return { url: dataUrl };
    const { manifest, files } = await QUICK.files();
    return { url: manifest, files };
  }

  #showMode(mode) {
    this.#ui.mode.textContent = mode.line;
    this.#ui.backend.textContent = mode.backend;
  }

  async #onTrain() {
    this.#showError('');
    this.#state.crashed = false;
    try {
      this.#setPhase('loading');
      this.#ui.progress.hidden = false;
      this.#ui.barLabel.textContent = 'Starting…';
      await this.#start();
      const c = this.#config();
      // The other run's bundle (the reader switched between quick and full).
      if (c.dataUrl !== this.#state.dataUrl) {
        this.#ui.barLabel.textContent = 'Loading the pictures…';
        const source = await this.#dataSource(c.dataUrl);
        await this.#state.client.request({ type: 'load-data', url: source.url, files: source.files }, 'data-ready');
        this.#state.dataUrl = c.dataUrl;
      }
      // The preset's configuration comes from the core (wasm presetConfig).
      const { config: preset } = await this.#state.client.request({ type: 'preset', name: c.preset }, 'preset');
      const drawSeed = c.seed === 'random';
      const config = { ...preset, epochs: c.epochs, seed: drawSeed ? 0 : c.seed, train_size: c.trainSize, ...(c.augment !== 'none' ? { augment: c.augment } : {}) };
      this.#state.history = [];
      this.#state.hasModel = false;
      this.#state.budget = config.epochs;
      this.#ui.strip.hidden = true;
      this.#renderHistory();
      await this.#run({ type: 'train', config, drawSeed });
    } catch (e) {
      this.#failed(e);
    }
  }

  /** "Train more": the same run goes on from the model, for the widget's epochs again. */
  async #onTrainMore() {
    if (!this.#state.client || !this.#state.hasModel) return;
    this.#showError('');
    try {
      await this.#run({ type: 'train', config: this.#state.config, continueRun: true, more: this.#config().epochs });
    } catch (e) {
      this.#failed(e);
    }
  }

  async #run(msg) {
    this.#setPhase('training');
    this.#ui.progress.hidden = false;
    await this.#state.client.request(msg, 'done');
    this.#state.hasModel = true;
    this.#ui.barLabel.textContent = 'Done. Now try a picture.';
    // The strip first, so that `done` finds it drawn.
    await this.#showStrip().catch((e) => this.#showError(`The hidden units could not be shown: ${e.message}`));
    this.#setPhase('done');
  }

  #failed(e) {
    // After a crash its own message stays (see #connect).
    if (!this.#state.crashed) this.#showError(String(e.message ?? e));
    this.#setPhase(this.#state.hasModel ? 'ready' : 'error');
  }

  /** The 16 units with the strongest votes, drawn once training is done: what training changed
   *  (W - W0) while that is the clearer picture, else the weights (as the page offers first). */
  async #showStrip() {
    const t = await this.#state.client.request({ type: 'units' }, 'units');
    const units = Array.from(t.order.subarray(0, STRIP_UNITS));
    const mode = changeFirst(t) ? 'change' : 'weights';
    drawAtlas(this.#ui.stripCanvas, mode === 'change' ? { ...t, tiles: t.change } : t, units, STRIP_UNITS);
    const conv = (this.#state.config?.model?.conv?.length ?? 0) > 0;
    const what = conv ? `${t.units} first-layer filters` : `${t.units} hidden units`;
    this.#ui.stripWhat.textContent = `the ${units.length} of its ${what} with the strongest votes, each one's `
      + (conv ? '3×3 colour filter enlarged to' : '3072 input weights drawn as')
      + ` a 32×32 picture, showing ${mode === 'change'
        ? `what training changed (W − W0: the weights moved ${(100 * t.changeRelative).toPrecision(2)}% of their random start)`
        : 'the weights'}`;
    Object.assign(this.#ui.strip.dataset, { units: String(units.length), total: String(t.units), epoch: String(t.epoch), shown: units.join(','), mode });
    this.#ui.strip.hidden = false;
  }

  #onEpoch(stats) {
    this.#state.history.push(stats);
    this.#renderHistory();
  }

  #renderHistory() {
    const h = this.#state.history;
    const last = h[h.length - 1];
    this.#ui.epoch.textContent = String(h.length);
    this.#ui.val.textContent = last ? acc(last.val_accuracy) : '–';
    this.#ui.trainAcc.textContent = last ? acc(last.train_accuracy) : '–';
    const n = this.#state.budget || this.#config().epochs;
    // Accuracy from 0.5 (chance) to 1 on the y axis.
    const pts = h.map((s, i) => `${(100 * (i + 1)) / n},${30 - 30 * Math.max(0, (s.val_accuracy - 0.5) * 2)}`);
    this.#ui.spark.setAttribute('points', ['0,30', ...pts].join(' '));
  }

  async #classify(file) {
    this.#showError('');
    if (!this.#state.client || !this.#state.hasModel) { this.#showError('Train the model first (press Train), then try a picture.'); return; }
    try {
      const r = await predictFile(this.#state.client, file);
      renderPrediction({ canvas: this.#ui.canvas, bars: this.#ui.bars, verdict: this.#ui.prediction }, r);
      this.#ui.answer.hidden = false;
    } catch (e) {
      if (!this.#state.crashed) this.#showError(String(e.message ?? e));
    }
  }
}
