// <skywatch-trainer>: the trainer as a custom element for blog posts.
//
//   <script type="module" src="https://example.org/skywatch/widget.js"></script>
//   <skywatch-trainer epochs="5" theme="auto"></skywatch-trainer>
//
// Attributes: preset (lecture | deep), epochs, train-size, seed, data-url (a bundle folder; default
// the quick subset next to this script), autostart, compact, theme (light | dark | auto),
// full-page (URL of the full trainer page; default index.html next to this script).
// Everything lives in an open shadow root with its own stylesheet. Training runs in a Worker:
// threaded when the host page is cross-origin isolated, single-threaded otherwise. Each element
// has its own worker and its own saved model, so several widgets on a page are independent.
// The host element reflects its state in `data-state` (loading, ready, training, done, error)
// and exposes the latest values in `[data-metric]` elements inside the shadow root.

import { WorkerClient, decodeImage } from './client.js';

const BASE = new URL('./', import.meta.url);
const QUICK = { epochs: 5, dataUrl: 'data-quick/' };


// Static markup of ours, no data in it (the stylesheet link is added through the DOM).
const TEMPLATE = `
  <section class="card" aria-labelledby="title">
    <header>
      <h2 id="title">Bird or airplane?</h2>
      <p class="lede">Train a small neural network on 32x32 photos, right here in your browser.</p>
    </header>
    <div class="controls">
      <button type="button" id="train" class="primary">Train</button>
      <span class="mode" role="status" data-metric="mode">not started</span>
    </div>
    <div class="progress" hidden>
      <label for="bar" id="bar-label">Loading…</label>
      <progress id="bar" max="1" value="0"></progress>
    </div>
    <div class="result" aria-live="polite">
      <p class="big"><span class="label">Validation accuracy</span>
        <span class="value" data-metric="val-accuracy">–</span></p>
      <p class="small">Epoch <span data-metric="epoch">0</span> of <span id="epochs"></span>,
        train accuracy <span data-metric="train-accuracy">–</span></p>
      <svg class="spark" viewBox="0 0 100 30" preserveAspectRatio="none" role="img" aria-label="validation accuracy per epoch">
        <polyline points="" />
      </svg>
    </div>
    <div class="ask">
      <button type="button" class="drop" id="drop" disabled>
        <span>Drop a picture here, or choose one</span>
      </button>
      <input type="file" id="file" accept="image/*" hidden>
      <div class="answer" hidden>
        <canvas width="32" height="32" aria-hidden="true"></canvas>
        <div class="bars" role="status" aria-live="polite"></div>
        <p class="verdict">It looks like a <strong data-metric="prediction"></strong>.</p>
      </div>
    </div>
    <p class="error" role="alert" hidden></p>
    <footer><a id="full" target="_blank" rel="noopener">Open the full trainer</a> ·
      <span class="small">runs entirely on your device</span></footer>
  </section>`;

class SkywatchTrainer extends HTMLElement {
  #ui = {};
  // `ready`: the started worker with its data (a promise), cleared with `client` when the worker
  // crashes or fails to start, so that the next Train starts a fresh one.
  #state = { client: null, ready: null, history: [], hasModel: false, crashed: false };

  connectedCallback() {
    if (this.shadowRoot) return;
    const root = this.attachShadow({ mode: 'open' });
    const css = document.createElement('link');
    css.rel = 'stylesheet';
    css.href = new URL('widget.css', BASE).href;
    const tpl = document.createElement('template');
    tpl.innerHTML = TEMPLATE; // static markup of ours, no data inserted
    root.append(css, tpl.content.cloneNode(true));
    const $ = (sel) => root.querySelector(sel);
    this.#ui = {
      train: $('#train'), mode: $('[data-metric="mode"]'), progress: $('.progress'), bar: $('#bar'),
      barLabel: $('#bar-label'), val: $('[data-metric="val-accuracy"]'), trainAcc: $('[data-metric="train-accuracy"]'),
      epoch: $('[data-metric="epoch"]'), epochs: $('#epochs'), spark: $('polyline'), drop: $('#drop'),
      file: $('#file'), answer: $('.answer'), canvas: $('canvas'), bars: $('.bars'),
      prediction: $('[data-metric="prediction"]'), error: $('.error'), full: $('#full'),
    };
    this.#ui.epochs.textContent = String(this.#config().epochs);
    this.#ui.full.href = this.#fullPageUrl();
    this.#ui.train.addEventListener('click', () => this.#onTrain());
    this.#ui.drop.addEventListener('click', () => this.#ui.file.click());
    this.#ui.file.addEventListener('change', () => this.#ui.file.files[0] && this.#classify(this.#ui.file.files[0]));
    this.#ui.drop.addEventListener('dragover', (e) => { e.preventDefault(); this.#ui.drop.classList.add('over'); });
    this.#ui.drop.addEventListener('dragleave', () => this.#ui.drop.classList.remove('over'));
    this.#ui.drop.addEventListener('drop', (e) => {
      e.preventDefault();
      this.#ui.drop.classList.remove('over');
      const f = e.dataTransfer?.files?.[0];
      if (f) this.#classify(f);
    });
    this.#setPhase('idle');
    if (this.hasAttribute('autostart')) this.#onTrain();
  }

  disconnectedCallback() {
    this.#drop();
  }

  #config() {
    const int = (name, dflt, min, max) => {
      const v = Number.parseInt(this.getAttribute(name) ?? '', 10);
      return Number.isFinite(v) && v >= min && v <= max ? v : dflt;
    };
    const preset = this.getAttribute('preset') === 'deep' ? 'deep' : 'lecture';
    const trainSize = this.getAttribute('train-size');
    return {
      preset,
      epochs: int('epochs', QUICK.epochs, 1, 1000),
      seed: int('seed', 0, 0, Number.MAX_SAFE_INTEGER),
      trainSize: trainSize === null || trainSize === 'all' ? null : int('train-size', null, 1, 1e6),
      dataUrl: new URL(this.getAttribute('data-url') ?? QUICK.dataUrl, this.hasAttribute('data-url') ? document.baseURI : BASE).href,
    };
  }

  #fullPageUrl() {
    const page = new URL(this.getAttribute('full-page') ?? 'index.html', BASE);
    const c = this.#config();
    page.searchParams.set('preset', c.preset);
    page.searchParams.set('seed', String(c.seed));
    return page.href;
  }

  #setPhase(phase) {
    this.dataset.state = phase === 'idle' ? 'ready' : phase;
    const busy = phase === 'loading' || phase === 'training';
    this.#ui.train.disabled = busy;
    this.#ui.train.textContent = phase === 'done' ? 'Train again' : busy ? 'Training…' : 'Train';
    this.#ui.drop.disabled = !(phase === 'done' || (phase === 'ready' && this.#state.hasModel));
  }

  #showError(message) {
    this.#ui.error.textContent = message;
    this.#ui.error.hidden = !message;
  }

  /** The worker, started and with its data loaded (once; again after a failure or a crash). */
  #start() {
    this.#state.ready ??= this.#connect().catch((e) => {
      this.#drop();
      throw e;
    });
    return this.#state.ready;
  }

  /** Forgets the worker and its model. */
  #drop() {
    this.#state.client?.worker.terminate();
    Object.assign(this.#state, { client: null, ready: null, hasModel: false });
  }

  async #connect() {
    const client = new WorkerClient(new URL('./worker.js', import.meta.url));
    this.#state.client = client;
    client.on('crash', ({ message }) => {
      this.#drop();
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
    // Both at once, as the page does: the data downloads while the wasm compiles. The model
    // stays in memory (persist: false): a reader's visit leaves nothing in IndexedDB.
    const readyP = client.request({ type: 'init', persist: false }, 'ready');
    const dataP = client.request({ type: 'load-data', url: this.#config().dataUrl }, 'data-ready');
    dataP.catch(() => {}); // init's error first, if both fail
    const { mode } = await readyP;
    this.#ui.mode.textContent = mode.reason;
    await dataP;
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
      const { config: preset } = await this.#state.client.request({ type: 'preset', name: c.preset }, 'preset');
      const config = { ...preset, epochs: c.epochs, seed: c.seed, train_size: c.trainSize };
      this.#state.history = [];
      this.#renderHistory();
      this.#setPhase('training');
      await this.#state.client.request({ type: 'train', config }, 'done');
      this.#state.hasModel = true;
      this.#ui.barLabel.textContent = 'Done. Now try a picture.';
      this.#setPhase('done');
    } catch (e) {
      // After a crash its own message stays (see #connect).
      if (!this.#state.crashed) this.#showError(String(e.message ?? e));
      this.#setPhase(this.#state.hasModel ? 'ready' : 'error');
    }
  }

  #onEpoch(stats) {
    this.#state.history.push(stats);
    this.#renderHistory();
  }

  #renderHistory() {
    const h = this.#state.history;
    const last = h[h.length - 1];
    this.#ui.epoch.textContent = String(h.length);
    this.#ui.val.textContent = last ? last.val_accuracy.toFixed(4) : '–';
    this.#ui.trainAcc.textContent = last ? last.train_accuracy.toFixed(4) : '–';
    const n = this.#config().epochs;
    // Accuracy from 0.5 (chance) to 1 on the y axis.
    const pts = h.map((s, i) => `${(100 * (i + 1)) / n},${30 - 30 * Math.max(0, (s.val_accuracy - 0.5) * 2)}`);
    this.#ui.spark.setAttribute('points', ['0,30', ...pts].join(' '));
  }

  async #classify(file) {
    this.#showError('');
    try {
      const { rgba, width, height } = await decodeImage(file);
      const p = await this.#state.client.request({ type: 'predict', rgba, width, height }, 'prediction', [rgba]);
      this.#renderPrediction(p);
    } catch (e) {
      if (!this.#state.crashed) this.#showError(String(e.message ?? e));
    }
  }

  #renderPrediction({ probabilities, image, classes }) {
    const ctx = this.#ui.canvas.getContext('2d');
    ctx.putImageData(new ImageData(new Uint8ClampedArray(image), 32, 32), 0, 0);
    const best = probabilities.indexOf(Math.max(...probabilities));
    this.#ui.bars.replaceChildren(...classes.map((name, i) => {
      const row = document.createElement('div');
      row.className = 'bar-row';
      const label = document.createElement('span');
      label.textContent = name;
      const meter = document.createElement('meter');
      meter.min = 0; meter.max = 1; meter.value = probabilities[i];
      meter.setAttribute('aria-label', `${name} probability`);
      const pct = document.createElement('span');
      pct.textContent = `${(100 * probabilities[i]).toFixed(1)}%`;
      row.append(label, meter, pct);
      return row;
    }));
    this.#ui.prediction.textContent = classes[best];
    this.#ui.answer.hidden = false;
  }
}

if (!customElements.get('skywatch-trainer')) customElements.define('skywatch-trainer', SkywatchTrainer);
