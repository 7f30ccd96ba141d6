// The lecture's curve beside yours: the PyTorch band (www/reference/pytorch-band.json: per epoch the
// min, median and max over 5 seeds of PyTorch running the preset's recipe) drawn behind the charts
// (page/charts.js), and a line saying where the run's validation accuracy stands in it. Asked for
// (`band`) once per change of the model's history; the worker says which preset's band applies to
// the run, or why none does (a subset of the images, another recipe, uploaded weights).
//
// Automation hook: `[data-metric="pytorch-band"]` reads `inside` or `outside` (the latest epoch's
// validation accuracy against the band's min-max at that epoch); it is empty when the band does
// not apply, or past its epochs.

import { $, client, metricEl, oneAtATime, pushError, state } from './state.js';
import { setText } from '../shared/dom.js';
import { setChartBand } from './charts.js';

const view = { busy: false, again: false, asked: -1, result: null, version: 0 };

function requestBand() {
  if (!state.model || state.crashed) return;
  oneAtATime(view, requestBand, () => client.request({ type: 'band' }, 'band')
    .then((r) => { view.result = r; view.version++; },
      (e) => { if (!state.crashed) pushError('band', `The PyTorch band could not be placed: ${e.message}`); }));
}

/** Trailing epochs outside the band on the same side as the last one. */
function outsideStreak(positions) {
  const last = positions[positions.length - 1];
  if (!last || last.inside) return 0;
  let n = 0;
  for (let i = positions.length - 1; i >= 0 && positions[i]?.side === last.side; i--) n++;
  return n;
}

let drawn = '';

export function renderBand() {
  if (state.model && !state.crashed && view.asked !== state.historyVersion) {
    view.asked = state.historyVersion;
    requestBand();
  }
  const r = state.model ? view.result : null;
  const key = `${view.version}|${Boolean(r)}|${state.model?.config.epochs}`;
  if (drawn === key) return;
  drawn = key;
  const line = $('band-line');
  const hook = metricEl('pytorch-band');
  line.hidden = !r;
  setChartBand(r?.preset ? { series: r.series, budget: state.model.config.epochs } : null);
  if (!r) { setText(hook, ''); return; }
  line.dataset.applies = r.preset ? 'yes' : 'no';
  if (!r.preset) {
    setText(hook, '');
    setText($('band-text'), `The PyTorch band does not apply to this run: ${r.reason}.`);
    return;
  }
  const p = r.provenance;
  const source = `PyTorch ${p.torch.replace(/\+.*/, '')}, the ${r.preset} recipe, ${p.seeds.length} seeds`;
  const positions = r.positions;
  const last = positions[positions.length - 1];
  line.dataset.preset = r.preset;
  if (!positions.length) {
    setText(hook, '');
    setText($('band-text'), `The charts show the band of ${source} (min-max area, median dashed). Where this run stands is given after each epoch.`);
    return;
  }
  if (!last) {
    setText(hook, '');
    setText($('band-text'), `Epoch ${state.model.history.length - 1}: past the band's ${r.series.epochs} epochs (${source}).`);
    return;
  }
  setText(hook, last.inside ? 'inside' : 'outside');
  const inside = positions.filter((x) => x?.inside).length;
  const counted = positions.filter(Boolean).length;
  const streak = outsideStreak(positions);
  const steady = streak >= 3
    ? ` It has been ${last.side} the band for ${streak} epochs in a row, which begins to mean a real difference.`
    : '';
  const text = `${last.text.charAt(0).toUpperCase()}${last.text.slice(1)}`;
  setText($('band-text'), `${text} for validation accuracy (${source}); inside at ${inside} of ${counted} epochs so far. `
    + `Five runs make a narrow band: a run just like PyTorch's is outside it at any one epoch about one time in three, `
    + `so an epoch outside is not alarming; only a run that stays outside on one side would mean a difference.${steady}`);
}
