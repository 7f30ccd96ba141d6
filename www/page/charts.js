// The charts panel: two live charts (loss per epoch; train and validation accuracy per epoch)
// with uPlot, redrawn when the model's history changes. Colours come from the page's CSS
// variables, so the charts follow light and dark mode; the width follows the container.
//
// uPlot formats numbers with `new Intl.NumberFormat(navigator.language)` when its module loads;
// boot.js makes sure that language is one Intl accepts before this module is imported.

import uPlot from '../vendor/uplot/uPlot.esm.js';
import { $, state } from './state.js';

const HEIGHT = 220;
const dark = matchMedia('(prefers-color-scheme: dark)');

function colors() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  return { fg: v('--muted'), grid: v('--grid'), loss: v('--series-1'), train: v('--series-1'), val: v('--series-2') };
}

function options(kind, width, c) {
  const axis = (label, extra = {}) => ({
    label,
    stroke: c.fg,
    labelFont: '600 12px system-ui, sans-serif',
    font: '12px system-ui, sans-serif',
    grid: { stroke: c.grid, width: 1 },
    ticks: { stroke: c.grid, width: 1 },
    ...extra,
  });
  const line = (label, stroke, dash) => ({
    label,
    stroke,
    width: 2,
    dash,
    points: { size: 5, fill: stroke },
    value: legendValue((v) => v.toFixed(4)),
  });
  return {
    width,
    height: HEIGHT,
    scales: {
      // Empty charts keep their axes: a run's first epochs draw into a frame, not from nothing.
      x: { time: false, range: (u) => epochRange(u.data[0]) },
      y: { range: kind === 'accuracy' ? (u, min, max) => accuracyRange(min, max) : (u, min, max) => (min == null ? [0, 1] : uPlot.rangeNum(min, max, 0.1, true)) },
    },
    axes: [
      axis('epoch', { incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000], values: (u, ticks) => ticks.map(String) }),
      axis(kind === 'loss' ? 'loss' : 'accuracy', { size: 56, values: (u, ticks) => ticks.map((t) => +t.toFixed(3)) }),
    ],
    series: [
      { label: 'epoch', value: legendValue(String) },
      ...(kind === 'loss'
        ? [line('training loss', c.loss)]
        : [line('train accuracy', c.train), line('val accuracy', c.val, [6, 3])]),
    ],
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
  };
}

/** A legend formatter: the value under the cursor, or the latest one when the cursor is away. */
function legendValue(fmt) {
  return (u, v, si, idx) => {
    const d = u.data[si];
    const val = idx == null ? d[d.length - 1] : v;
    return val == null ? '–' : fmt(val);
  };
}

/** From epoch 0 (or the first shown) to the last, at least one epoch wide. */
function epochRange(x) {
  if (!x.length) return [0, 10];
  const lo = Math.min(0, x[0]);
  return [lo, Math.max(lo + 1, x[x.length - 1])];
}

/** A y range for accuracies that is never narrower than 0.1 and stays within [0, 1]. */
function accuracyRange(min, max) {
  if (min == null || max == null) return [0, 1];
  let lo = Math.floor(min * 20) / 20;
  let hi = Math.ceil(max * 20) / 20;
  if (hi - lo < 0.1) { lo = Math.max(0, hi - 0.1); hi = Math.min(1, lo + 0.1); }
  return [Math.max(0, lo), Math.min(1, hi)];
}

class Charts {
  /** @param {HTMLElement} lossEl @param {HTMLElement} accEl containers (their width is used) */
  constructor(lossEl, accEl) {
    this.els = { loss: lossEl, accuracy: accEl };
    this.data = { loss: [[], []], accuracy: [[], [], []] };
    this.plots = {};
    this.#create();
    this.resizer = new ResizeObserver(() => this.#resize());
    this.resizer.observe(lossEl);
    this.resizer.observe(accEl);
    // Theme change (system setting, or emulated in tests): rebuild with the new colours.
    this.onScheme = () => { this.#destroyPlots(); this.#create(); };
    dark.addEventListener('change', this.onScheme);
  }

  #create() {
    const c = colors();
    for (const kind of ['loss', 'accuracy']) {
      const el = this.els[kind];
      this.plots[kind] = new uPlot(options(kind, Math.max(200, el.clientWidth), c), this.data[kind], el);
    }
  }

  #resize() {
    for (const [kind, plot] of Object.entries(this.plots)) {
      const width = Math.max(200, this.els[kind].clientWidth);
      if (width !== plot.width) plot.setSize({ width, height: HEIGHT });
    }
  }

  #destroyPlots() {
    for (const plot of Object.values(this.plots)) plot.destroy();
    this.plots = {};
  }

  /** Shows `history` (EpochStats[]). */
  setHistory(history) {
    const x = history.map((s) => s.epoch);
    this.data.loss = [x, history.map((s) => s.loss)];
    this.data.accuracy = [x, history.map((s) => s.train_accuracy), history.map((s) => s.val_accuracy)];
    this.plots.loss.setData(this.data.loss);
    this.plots.accuracy.setData(this.data.accuracy);
    for (const plot of Object.values(this.plots)) plot.setLegend();
  }
}

let charts = null;
let drawn = -1;

/** Draws the model's history (once per change of it). */
export function renderCharts() {
  charts ??= new Charts($('chart-loss'), $('chart-accuracy'));
  if (drawn === state.historyVersion) return;
  drawn = state.historyVersion;
  charts.setHistory(state.model?.history ?? []);
}
