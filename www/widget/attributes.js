// The attributes of <skywatch-trainer>, read in one place: each one's parser, and the list of
// those the widget did not understand (a value it cannot read, or a name it does not know), which
// the widget shows inside itself, the way the page lists the address's values it did not
// understand. A widget with any such attribute does not autostart: it waits for Train, so that
// the author sees the message before the wrong run starts.

import { parseAugment } from '../shared/augment.js';

const BACKENDS = ['auto', 'webgpu', 'wasm'];

/** A parser for a whole number in [min, max], written as plain digits. */
const int = (min, max) => (text) => {
  const t = text.trim();
  const v = /^\d+$/.test(t) ? Number(t) : Number.NaN;
  if (!(v >= min && v <= max)) throw new Error(`expected a whole number from ${min} to ${max}`);
  return v;
};

/** A parser for one of `options` (case and surrounding spaces ignored). */
const oneOf = (...options) => (text) => {
  const t = text.trim().toLowerCase();
  if (!options.includes(t)) throw new Error(`expected ${options.join(', ')}`);
  return t;
};

const any = (text) => text;

/** Each attribute the widget reads, with its parser (a present attribute only). */
export const PARSERS = {
  preset: oneOf('lecture', 'deep', 'conv'),
  epochs: int(1, 1000),
  'train-size': (text) => {
    if (text.trim().toLowerCase() === 'all') return null;
    try {
      return int(1, 1e6)(text);
    } catch {
      throw new Error('expected a whole number from 1 to 1000000, or all');
    }
  },
  seed: (text) => {
    if (text.trim().toLowerCase() === 'random') return 'random';
    try {
      return int(0, Number.MAX_SAFE_INTEGER)(text);
    } catch {
      throw new Error('expected a whole number of at least 0, or random for a new seed');
    }
  },
  augment: (text) => parseAugment(text),
  'data-url': any,
  backend: oneOf(...BACKENDS),
  recipe: oneOf('quick', 'full'),
  autostart: any, // a boolean attribute: present or not
  compact: any,
  theme: oneOf('light', 'dark', 'auto'),
  'full-page': any,
};

/** What the widget uses when an attribute is absent or not understood (said in its message). */
const FALLBACKS = {
  preset: 'lecture', epochs: "the run's default", 'train-size': 'all', augment: 'none', seed: '0', backend: 'auto',
  recipe: 'quick', theme: 'auto',
};

/** Attributes of every HTML element (and `aria-*`, `data-*`, `on*`), which are the page's. */
const GLOBAL = new Set(['id', 'class', 'style', 'title', 'lang', 'dir', 'hidden', 'tabindex', 'slot', 'part',
  'exportparts', 'role', 'translate', 'accesskey', 'autofocus', 'autocapitalize', 'contenteditable', 'draggable',
  'enterkeyhint', 'inert', 'inputmode', 'is', 'itemid', 'itemprop', 'itemref', 'itemscope', 'itemtype', 'nonce',
  'popover', 'spellcheck', 'writingsuggestions']);
const isGlobal = (name) => GLOBAL.has(name) || /^(aria|data)-/.test(name) && !(name in PARSERS) || name.startsWith('on');

/** The value of `host`'s attribute `name`: its parsed value, or `fallback` when it is absent or
 *  not understood. */
export function attribute(host, name, fallback) {
  const text = host.getAttribute(name);
  if (text === null) return fallback;
  try {
    return PARSERS[name](text);
  } catch {
    return fallback;
  }
}

/** The attributes of `host` the widget did not understand, in their order:
 *  `[{name, value, message, fallback}]`; a name it does not know has `value` null. */
export function attributeProblems(host) {
  const problems = [];
  for (const { name, value } of host.attributes) {
    if (!(name in PARSERS)) {
      if (!isGlobal(name)) {
        problems.push({ name, value: null, message: `not an attribute of <skywatch-trainer> (it knows ${Object.keys(PARSERS).join(', ')})`, fallback: 'ignored' });
      }
      continue;
    }
    try {
      PARSERS[name](value);
    } catch (e) {
      problems.push({ name, value, message: e.message, fallback: FALLBACKS[name] ?? 'the default' });
    }
  }
  return problems;
}
