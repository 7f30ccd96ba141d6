// The charts panel: two live charts (loss per epoch; train and validation accuracy per epoch)
// with uPlot, redrawn when the model's history changes. Colours come from the page's CSS
// variables, so the charts follow light and dark mode; the width follows the container. Behind
// the run's lines, when the PyTorch band applies to the run (page/band.js), the band: min-max area
// and median line of PyTorch's training loss (loss chart) and validation accuracy (accuracy chart)
// over its seeds, over the run's epoch budget.
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
  return {
    fg: v('--muted'), grid: v('--grid'), loss: v('--series-1'), train: v('--series-1'), val: v('--series-2'),
    band: v('--band'), bandLine: v('--band-line'),
  };
}

/** The band's three series (min, median, max), drawn first, so behind the run's. */
function bandSeries(c) {
  const edge = (label) => ({ label, stroke: c.bandLine, width: 1, points: { show: false }, value: legendValue((v) => v.toFixed(4)) });
  return [edge('PyTorch min'), { ...edge('PyTorch median'), dash: [4, 3], width: 1.5 }, edge('PyTorch max')];
}

function options(kind, width, c, band) {
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
      ...(band ? bandSeries(c) : []),
      ...(kind === 'loss'
        ? [line('training loss', c.loss)]
        : [line('train accuracy', c.train), line('val accuracy', c.val, [6, 3])]),
    ],
    bands: band ? [{ series: [3, 1], fill: c.band }] : [],
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
    this.band = null;
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
      this.plots[kind] = new uPlot(options(kind, Math.max(200, el.clientWidth), c, this.band), this.data[kind], el);
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

  /** Shows `history` (EpochStats[]), with `band` ({series, budget} from page/band.js, or null)
   *  behind it. */
  setHistory(history, band) {
    if (Boolean(band) !== Boolean(this.band)) {
      // The band's series come and go with the plots' options.
      this.band = band;
      this.#destroyPlots();
      this.#create();
    }
    this.band = band;
    if (!band) {
      const x = history.map((s) => s.epoch);
      this.data.loss = [x, history.map((s) => s.loss)];
      this.data.accuracy = [x, history.map((s) => s.train_accuracy), history.map((s) => s.val_accuracy)];
    } else {
      // Epochs 0 .. the run's budget (or its last epoch, if past it), within the band's epochs.
      const last = history.length ? history[history.length - 1].epoch : -1;
      const n = Math.max(last + 1, Math.min(band.series.epochs, band.budget));
      const x = Array.from({ length: n }, (_, e) => e);
      const byEpoch = new Map(history.map((s) => [s.epoch, s]));
      const run = (key) => x.map((e) => byEpoch.get(e)?.[key] ?? null);
      const edges = (stat) => ['min', 'median', 'max'].map((k) => x.map((e) => stat[k][e] ?? null));
      this.data.loss = [x, ...edges(band.series.train_loss), run('loss')];
      this.data.accuracy = [x, ...edges(band.series.val_accuracy), run('train_accuracy'), run('val_accuracy')];
    }
    this.plots.loss.setData(this.data.loss);
    this.plots.accuracy.setData(this.data.accuracy);
    for (const plot of Object.values(this.plots)) plot.setLegend();
  }
}

let charts = null;
let drawn = '';
let band = null;
let bandVersion = 0;

/** The PyTorch band to draw behind the run (page/band.js): {series, budget}, or null. */
export function setChartBand(b) {
  band = b;
  bandVersion++;
}

/** Draws the model's history (once per change of it or of the band). */
export function renderCharts() {
  charts ??= new Charts($('chart-loss'), $('chart-accuracy'));
  const key = `${state.historyVersion}|${bandVersion}`;
  if (drawn === key) return;
  drawn = key;
  charts.setHistory(state.model?.history ?? [], state.model ? band : null);
}
