// The training form's values: parsing and checking of URL parameters and form fields, presets,
// and the TrainConfig JSON the worker takes. Pure functions, no DOM.
//
// A form is {preset, conv, hidden, activation, loss, optimizer, lr, momentum, batchSize, epochs,
// trainSize, augment, seed}; `augment` is 'none' | 'flip' | 'shift:K' | 'flip,shift:K' (K 1..8,
// config::Augment); `seed` is a number or 'random' (a seed drawn by the worker when the run
// starts). The presets are not written here: they come from the core (wasm `presetConfig`, the
// worker's `preset` request) at start-up, as `presets`: {name: form} (presetForms). The page
// opens on the first of them.

/** Width of the input layer: 3 x 32 x 32 pixels. */
export const INPUTS = 3072;

export { parseAugment } from '../shared/augment.js';

/** Values per image after convolution blocks of `conv` channels (each block halves the 32-pixel
 *  side: `config::ModelConfig::flat_features`), or the pixels without convolutions. */
export const flatFeatures = (conv) => (conv.length ? conv[conv.length - 1] * (32 >> conv.length) ** 2 : INPUTS);

/** Largest weights file the page reads: that of the largest model the core takes (64 M float32
 *  parameters, `config::MAX_PARAMETERS`) plus 1 MiB of header, as `checkpoint::MAX_FILE_BYTES`. */
export const MAX_WEIGHTS_BYTES = (64 << 20) * 4 + (1 << 20);

/** The fields a preset fixes (its recipe: model, optimizer, batch size); epochs, seed and
 *  training-set size can be changed without leaving the preset. */
export const RECIPE = ['conv', 'hidden', 'activation', 'loss', 'optimizer', 'lr', 'momentum', 'batchSize'];
const LISTS = ['conv', 'hidden'];

/** The forms of the core's presets: {name: TrainConfig} -> {name: form}. */
export function presetForms(configs) {
  return Object.fromEntries(Object.entries(configs).map(([name, c]) => [name, { ...formFromConfig(c, {}), preset: name }]));
}

/** The form the page opens with: the first preset's. */
export const defaultForm = (presets) => ({ ...Object.values(presets)[0] });

/** The preset whose recipe `form` matches, or 'custom'. */
export function matchPreset(form, presets) {
  const momentum = (f) => (f.optimizer === 'sgd' ? f.momentum : 0);
  for (const [name, p] of Object.entries(presets)) {
    if (LISTS.every((k) => p[k].join(',') === form[k].join(','))
      && RECIPE.every((k) => LISTS.includes(k) || (k === 'momentum' ? momentum(p) === momentum(form) : p[k] === form[k]))) return name;
  }
  return 'custom';
}

/** `form` with the recipe of preset `name` (epochs, seed and training-set size kept). */
export function applyPreset(form, name, presets) {
  const p = presets[name];
  if (!p) return { ...form, preset: 'custom' };
  const recipe = Object.fromEntries(RECIPE.map((k) => [k, LISTS.includes(k) ? [...p[k]] : p[k]]));
  return { ...form, ...recipe, preset: name };
}

// Each field: parse(text) -> value, or throws an Error whose message says what is expected.
const int = (min, max) => (text) => {
  const s = String(text).trim();
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new Error(max >= Number.MAX_SAFE_INTEGER ? `expected a whole number of at least ${min}` : `expected a whole number from ${min} to ${max}`);
  }
  return n;
};
const real = (test, expected) => (text) => {
  const s = String(text).trim();
  const n = s === '' ? NaN : Number(s);
  if (!Number.isFinite(n) || !test(n)) throw new Error(`expected ${expected}`);
  return n;
};
import { parseAugment } from '../shared/augment.js';

const oneOf = (...values) => (text) => {
  const s = String(text).trim().toLowerCase();
  if (!values.includes(s)) throw new Error(`expected ${values.join(' or ')}`);
  return s;
};

export const FIELDS = {
  // The names are checked against the core's presets (formFromParams).
  preset: { param: 'preset', parse: (text) => String(text).trim().toLowerCase() },
  hidden: {
    param: 'layers',
    parse(text) {
      const s = String(text).trim();
      if (s === '') return [];
      const parts = s.split(/\s*[,x ]\s*/);
      if (parts.length > 30 || !parts.every((p) => /^\d+$/.test(p) && Number(p) >= 1 && Number(p) <= 16384)) {
        throw new Error('expected hidden layer widths from 1 to 16384 separated by commas, like 512 or 1024,512,128');
      }
      return parts.map(Number);
    },
    format: (v) => v.join(','),
  },
  conv: {
    param: 'conv',
    parse(text) {
      const s = String(text).trim().toLowerCase();
      if (s === '' || s === 'none') return [];
      const parts = s.split(/\s*[,x ]\s*/);
      if (parts.length > 5 || !parts.every((p) => /^\d+$/.test(p) && Number(p) >= 1 && Number(p) <= 256)) {
        throw new Error('expected up to 5 convolution channel widths from 1 to 256 separated by commas, like 16,8, or blank for none');
      }
      return parts.map(Number);
    },
    format: (v) => v.join(','),
  },
  activation: { param: 'activation', parse: oneOf('tanh', 'relu') },
  loss: { param: 'loss', parse: oneOf('nll', 'cross-entropy') },
  optimizer: { param: 'optimizer', parse: oneOf('sgd', 'adam') },
  lr: { param: 'lr', parse: real((n) => n > 0 && n <= 100, 'a learning rate above 0, like 0.01 or 1e-3') },
  momentum: { param: 'momentum', parse: real((n) => n >= 0 && n < 1, 'a momentum from 0 up to (not including) 1') },
  batchSize: { param: 'batch_size', parse: int(1, 65536) },
  epochs: { param: 'epochs', parse: int(1, 100000) },
  trainSize: {
    param: 'train_size',
    parse(text) {
      const s = String(text).trim().toLowerCase();
      if (s === '' || s === 'all') return null;
      if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s)) || Number(s) < 1) {
        throw new Error('expected a number of images (at least 1), or blank for all');
      }
      return Number(s);
    },
    format: (v) => (v == null ? '' : String(v)),
  },
  augment: { param: 'augment', parse: parseAugment },
  seed: {
    param: 'seed',
    parse(text) {
      if (String(text).trim().toLowerCase() === 'random') return 'random';
      try {
        return int(0, Number.MAX_SAFE_INTEGER)(text);
      } catch {
        throw new Error('expected a whole number of at least 0, or random for a new seed');
      }
    },
  },
};

export const format = (key, value) => (FIELDS[key].format ? FIELDS[key].format(value) : String(value));

/** The training backends: the GPU when it is a real one (auto), the GPU whatever it is (webgpu),
 *  the CPU (wasm). */
export const BACKENDS = ['auto', 'webgpu', 'wasm'];

/** Reads the run's settings from URL parameters, before the worker starts:
 *  `{threads, threadsParam, backend, autostart, problems: [{param, value, message, fallback}]}`. */
export function runFromParams(params, defaultThreads) {
  const problems = [];
  let backend = 'auto';
  if (params.has('backend')) {
    try {
      backend = oneOf(...BACKENDS)(params.get('backend'));
    } catch (e) {
      problems.push({ param: 'backend', value: params.get('backend'), message: e.message, fallback: 'auto' });
    }
  }
  let threads = defaultThreads;
  let threadsParam = null;
  if (params.has('threads')) {
    try {
      threads = int(1, 1024)(params.get('threads'));
      threadsParam = threads;
    } catch (e) {
      problems.push({ param: 'threads', value: params.get('threads'), message: e.message, fallback: String(defaultThreads) });
    }
  }
  const start = (params.get('autostart') ?? '').trim().toLowerCase();
  const autostart = ['1', 'true', 'yes'].includes(start);
  if (!autostart && !['', '0', 'false', 'no'].includes(start)) {
    problems.push({ param: 'autostart', value: params.get('autostart'), message: 'expected 1, true or yes (or 0, false, no)', fallback: 'no autostart' });
  }
  return { threads, threadsParam, backend, autostart, problems };
}

/** Reads the form from URL parameters: `{form, problems: [{param, value, message, fallback}],
 *  hasConfig}`. A malformed value is reported and the field keeps its default. */
export function formFromParams(params, presets) {
  const problems = [];
  const defaults = defaultForm(presets);
  const read = (key, check = () => {}) => {
    const { param, parse } = FIELDS[key];
    if (!params.has(param)) return undefined;
    const value = params.get(param);
    try {
      const parsed = parse(value);
      check(parsed);
      return { value: parsed };
    } catch (e) {
      problems.push({ param, value, message: e.message, fallback: key === 'trainSize' ? 'all images' : format(key, defaults[key]) });
      return undefined;
    }
  };
  const names = [...Object.keys(presets), 'custom'];
  const preset = read('preset', (name) => {
    if (!names.includes(name)) throw new Error(`expected ${names.join(' or ')}`);
  })?.value ?? defaults.preset;
  const form = applyPreset(defaults, preset === 'custom' ? defaults.preset : preset, presets);
  let hasConfig = params.has('preset');
  for (const key of Object.keys(FIELDS)) {
    if (key === 'preset') continue;
    const got = read(key);
    if (got) { form[key] = got.value; hasConfig = true; }
  }
  form.preset = matchPreset(form, presets);
  return { form, problems, hasConfig };
}

/** URL parameters for `form` (and `threads` when given, `backend` when not auto). */
export function paramsFromForm(form, threads = null, backend = 'auto') {
  const p = new URLSearchParams();
  if (threads != null) p.set('threads', String(threads));
  if (backend !== 'auto') p.set('backend', backend);
  p.set('preset', form.preset);
  if (form.preset === 'custom') {
    if (form.conv.length) p.set('conv', format('conv', form.conv));
    p.set('layers', format('hidden', form.hidden));
    p.set('activation', form.activation);
    p.set('loss', form.loss);
    p.set('optimizer', form.optimizer);
    p.set('lr', String(form.lr));
    if (form.optimizer === 'sgd') p.set('momentum', String(form.momentum));
    p.set('batch_size', String(form.batchSize));
  }
  p.set('epochs', String(form.epochs));
  p.set('seed', String(form.seed));
  if (form.trainSize != null) p.set('train_size', String(form.trainSize));
  if (form.augment && form.augment !== 'none') p.set('augment', form.augment);
  return p;
}

/** The worker's TrainConfig for `form` with `classes` outputs. A seed still to be drawn
 *  ('random') is 0 here: the worker replaces it (train's drawSeed). */
export function configFromForm(form, classes = 2) {
  return {
    model: {
      layers: [flatFeatures(form.conv), ...form.hidden, classes],
      activation: form.activation,
      loss: form.loss,
      ...(form.conv.length ? { conv: [...form.conv] } : {}),
    },
    optimizer: {
      kind: form.optimizer,
      lr: form.lr,
      momentum: form.optimizer === 'sgd' ? form.momentum : 0,
      nesterov: false,
      weight_decay: 0,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
    },
    batch_size: form.batchSize,
    epochs: form.epochs,
    seed: form.seed === 'random' ? 0 : form.seed,
    train_size: form.trainSize,
    // `none` is not written, as the core does not write it (the run's configuration is unchanged).
    ...(form.augment && form.augment !== 'none' ? { augment: form.augment } : {}),
  };
}

/** The form for a TrainConfig (a preset, a restored or an imported model). */
export function formFromConfig(c, presets) {
  const form = {
    conv: [...(c.model.conv ?? [])],
    hidden: c.model.layers.slice(1, -1),
    activation: c.model.activation,
    loss: c.model.loss,
    optimizer: c.optimizer.kind,
    lr: c.optimizer.lr,
    momentum: c.optimizer.momentum ?? 0,
    batchSize: c.batch_size,
    epochs: c.epochs,
    trainSize: c.train_size ?? null,
    augment: c.augment ?? 'none',
    seed: c.seed,
  };
  // f32 on the Rust side: 0.01 comes back as 0.009999999776482582.
  form.lr = Number(form.lr.toPrecision(6));
  form.momentum = Number(form.momentum.toPrecision(6));
  form.preset = matchPreset(form, presets);
  return form;
}

/** A short description of a config, e.g. "3072-512-2 tanh, nll, SGD lr 0.01, batch 64". */
export function describeRecipe(c) {
  const o = c.optimizer;
  const lr = Number(o.lr.toPrecision(6));
  const opt = o.kind === 'sgd'
    ? `SGD lr ${lr}${o.momentum ? `, momentum ${Number(o.momentum.toPrecision(6))}` : ''}`
    : `Adam lr ${lr}`;
  const conv = c.model.conv?.length ? `conv ${c.model.conv.join(',')} then ` : '';
  const augment = c.augment && c.augment !== 'none' ? `, augment ${c.augment}` : '';
  return `${conv}${c.model.layers.join('-')} ${c.model.activation}, ${c.model.loss}, ${opt}, batch ${c.batch_size}${augment}`;
}
