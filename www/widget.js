// <skywatch-trainer>: the trainer as a custom element for blog posts.
//
//   <script type="module" src="https://example.org/skywatch/widget.js"></script>
//   <skywatch-trainer epochs="5" theme="auto"></skywatch-trainer>
//
// Attributes: preset (lecture | deep | conv), epochs, train-size, augment (none | flip | shift:K |
// flip,shift:K: data augmentation, K up to 8), seed (a number, or random: drawn when
// the run starts), data-url (a bundle folder; default the quick subset next to this script, or
// the full bundle for the full run), backend (auto | webgpu | wasm; default auto), recipe (quick |
// full: which run the choice offered with a GPU starts on; default quick), autostart, compact,
// theme (light | dark | auto), full-page (URL of the full trainer page; default index.html next
// to this script).
// Everything lives in an open shadow root with its own stylesheet. Training runs in a Worker, on
// the reader's GPU (WebGPU, which needs no cross-origin isolation) or in WebAssembly: threaded
// when the host page is cross-origin isolated, single-threaded otherwise. Where the browser offers
// a real GPU, the reader may choose the full lecture run (the whole bundle of 10,000 images, 100
// epochs) instead of the quick one; where only wasm is available, only the quick run is offered.
// Each element has its own worker and its own model, so several widgets on a page are
// independent.
// The host element reflects its state in `data-state` (loading, ready, training, done, error)
// and exposes the latest values in `[data-metric]` elements inside the shadow root.
//
// This file is the element's shell: its markup, with the error area, and no imports. What it
// does is in widget/trainer.js, imported when the first element connects; if that fails (a
// missing file, a module that throws), the error area says why, instead of a widget that never
// answers.
//
// Every file is named by a static `new URL('./literal', import.meta.url)` or `import('./literal')`
// expression, never a folder URL or a computed name: the forms bundlers (Vite, webpack, Rollup)
// follow and copy into their output with no configuration, and that also work unbundled, from
// any origin. Defined once per page: a second copy of this module (the package imported twice,
// two versions on one page) leaves the first definition and says so with `console.info`.

const WATCHDOG_MS = 10_000;

// Static markup of ours, no data in it (the stylesheet link is added through the DOM).
const TEMPLATE = `
  <section class="card" aria-labelledby="title">
    <header>
      <h2 id="title">Bird or airplane?</h2>
      <p class="lede">Train a small neural network on 32x32 photos, right here in your browser.</p>
    </header>
    <div class="notice" data-view="attribute-problems" hidden>
      <p>Some attributes were not understood; the defaults are used instead<span class="waits" hidden>, and
        autostart waits for Train</span>:</p>
      <ul></ul>
    </div>
    <div class="controls">
      <button type="button" id="train" class="primary" disabled>Train</button>
      <button type="button" id="more" class="secondary" hidden>Train more</button>
      <label class="recipe" hidden><span class="visually-hidden">Run</span>
        <select id="recipe">
          <option value="quick">Quick: 1,000 images, 5 epochs</option>
          <option value="full">Full lecture run (GPU): 10,000 images, 100 epochs</option>
        </select></label>
      <span class="mode" role="status" data-metric="mode">not started</span>
      <span data-metric="backend" hidden></span>
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
    <figure class="strip" data-view="hidden-units" hidden>
      <canvas role="img" aria-label="What the first layer learned: 16 tiles, 32 by 32 pixels each"></canvas>
      <figcaption>What it learned: <span class="what">the 16 hidden units with the strongest votes</span>
        (grey is 0, brighter is positive, darker negative, each tile scaled on its own);
        the bar under a tile is the class it votes for, <span class="airplane">airplane</span> or <span class="bird">bird</span>.</figcaption>
    </figure>
    <div class="ask">
      <button type="button" class="drop" id="drop" disabled>
        <span>Drop a picture here, or choose one</span>
      </button>
      <input type="file" id="file" accept="image/*" hidden>
      <div class="answer" hidden>
        <canvas width="32" height="32" aria-hidden="true"></canvas>
        <ul class="bars" role="status" aria-live="polite"></ul>
        <p class="verdict">It looks like a <strong data-metric="prediction"></strong>.</p>
      </div>
    </div>
    <p class="error" role="alert" hidden></p>
    <footer><a id="full" target="_blank" rel="noopener">Open the full trainer</a> ·
      <span class="small">runs entirely on your device</span></footer>
  </section>`;

/** For the error message only: the trainer is loaded with the literal `import()` below. */
const TRAINER_URL = new URL('./widget/trainer.js', import.meta.url).href;
let trainerModule = null;

export class SkywatchTrainer extends HTMLElement {
  #trainer = null;

  connectedCallback() {
    if (this.shadowRoot) return;
    const root = this.attachShadow({ mode: 'open' });
    const css = document.createElement('link');
    css.rel = 'stylesheet';
    css.href = new URL('./widget.css', import.meta.url).href;
    const tpl = document.createElement('template');
    tpl.innerHTML = TEMPLATE; // static markup of ours, no data inserted
    root.append(css, tpl.content.cloneNode(true));
    this.dataset.state = 'loading';
    const fail = (message) => {
      const error = root.querySelector('.error');
      error.textContent = message;
      error.hidden = false;
      this.dataset.state = 'error';
    };
    const watchdog = setTimeout(() => fail(`The trainer's scripts have not loaded after ${WATCHDOG_MS / 1000} s (a slow connection?).`), WATCHDOG_MS);
    trainerModule ??= import('./widget/trainer.js');
    trainerModule.then((m) => {
      clearTimeout(watchdog);
      root.querySelector('.error').hidden = true;
      this.#trainer = m.attach(this, root);
    }, async (e) => {
      clearTimeout(watchdog);
      // The browser's message names trainer.js, not the module that is missing: find it.
      const missing = await import('./shared/probe.js').then((p) => p.missingModule(TRAINER_URL), () => null);
      fail(`The trainer could not load: ${missing ?? `${e.name}: ${e.message}`}`);
    });
  }

  disconnectedCallback() {
    this.#trainer?.drop();
  }
}

if (customElements.get('skywatch-trainer')) {
  console.info(`<skywatch-trainer> is already defined on this page; the copy at ${import.meta.url} is not used.`);
} else {
  customElements.define('skywatch-trainer', SkywatchTrainer);
}
