// The shift control of a panel ("Bird or airplane?", "Why this answer?"): the panel's picture moved
// by `dx, dy` pixels in -8..8 (a slider per axis, the arrow keys while the picture has focus, a
// reset), and the worker's `shift` reply for it (worker/translation.js: the moved picture as the
// model sees it, its probabilities and saliency, and the first layer's response to the original
// and the moved picture). One module for both panels; each panel draws the reply in its own view,
// and "Move the picture" (translation.js) draws the first layer's response of the panel moved
// last.
//
// Markup, in index.html (the control is on the page, disabled, from the start): `<div class="shift"
// data-control="shift" data-panel="NAME">` holding `#shift-NAME-dx`, `-dy` (range inputs), their
// `-dx-out`, `-dy-out`, `#shift-NAME-reset` and `#shift-NAME-error`; its hint states
// SHIFT_DEFINITION. Automation hooks: `data-dx`, `data-dy` (the shift asked for) and `data-panel`.

import { client, refreshDue, scheduleRender, state } from './state.js';
import { setProp, setText } from '../shared/dom.js';

export const MAX_SHIFT = 8;

/** The one line that defines the shift, shown under each control. */
export const SHIFT_DEFINITION = 'The shift moves the normalised picture the model reads; zeros, the mean colour, fill what it leaves.';

/** The controls by panel, and the panel moved last (the one "Move the picture" follows). */
const controls = new Map();
let movedLast = null;

/** The reply "Move the picture" shows: that of the panel moved last, else of any panel with one
 *  for its current picture (null: none). */
export function followedShift() {
  for (const panel of [movedLast, ...controls.keys()]) {
    const c = controls.get(panel);
    const r = c?.result;
    if (c?.ready && r && r.subject === c.subjectKey) return r;
  }
  return null;
}

const KEYS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

/** "moved 2 right, 1 up" (or "not moved"). */
export function shiftWords(dx, dy) {
  if (!dx && !dy) return 'not moved';
  const part = (v, pos, neg) => (v ? `${Math.abs(v)} ${v > 0 ? pos : neg}` : '');
  return `moved ${[part(dx, 'right', 'left'), part(dy, 'down', 'up')].filter(Boolean).join(', ')}`;
}

/** The `shift` request's picture fields for a subject: a picture of the user's (RGBA) or an image
 *  of the data. */
function ask(s) {
  return s.kind === 'picture'
    ? { rgba: Uint8Array.from(s.image).buffer, width: 32, height: 32 }
    : { split: s.split, index: s.index };
}

/** A shift control in `box` for the panel `panel` ('picture' | 'why'), whose picture is `target`
 *  (it takes the focus for the arrow keys). */
export function shiftControl({ panel, box, target }) {
  const part = (name) => box.querySelector(`#shift-${panel}-${name}`);
  const [sx, sy, reset, error] = [part('dx'), part('dy'), part('reset'), part('error')];
  const [ox, oy] = [part('dx-out'), part('dy-out')];

  const c = {
    panel, dx: 0, dy: 0,
    result: null,      // the latest reply, with `subject` (its key) and `key` (what it answers)
    busy: false, key: '', error: '', askedAt: 0, timer: 0,
    ready: false, subjectKey: '',
  };
  controls.set(panel, c);

  const set = (dx, dy) => {
    if (!c.ready) return;
    const clamp = (v) => Math.max(-MAX_SHIFT, Math.min(MAX_SHIFT, v));
    [c.dx, c.dy] = [clamp(dx), clamp(dy)];
    movedLast = panel;
    scheduleRender();
  };
  sx.addEventListener('input', () => set(Number(sx.value), c.dy));
  sy.addEventListener('input', () => set(c.dx, Number(sy.value)));
  reset.addEventListener('click', () => set(0, 0));
  target.addEventListener('keydown', (e) => {
    const d = KEYS[e.key];
    if (!d || !c.ready) return;
    e.preventDefault();
    set(c.dx + d[0], c.dy + d[1]);
  });

  function request(subject, key, cls) {
    c.busy = true;
    c.key = key;
    const msg = { type: 'shift', ...ask(subject.value), dx: c.dx, dy: c.dy, class: cls ?? null };
    client.request(msg, 'shift', msg.rgba ? [msg.rgba] : [])
      .then((r) => { c.result = { ...r, subject: subject.key, key, panel }; c.error = ''; },
        (e) => { c.error = state.crashed ? '' : `Could not move it: ${e.message}`; })
      .finally(() => { c.busy = false; scheduleRender(); });
  }

  /** Draws the control and asks for the reply the panel needs. `subject`: {key, value} or null
   *  (no picture yet); `cls`: the class whose saliency to show (null: the answer). Returns the
   *  reply for this subject when the picture is moved (null when it is not, or none yet): the
   *  reply may be for the previous shift while the next one is being computed. */
  c.render = (subject, cls = null) => {
    c.ready = Boolean(subject && state.model && !state.crashed);
    for (const input of [sx, sy, reset]) setProp(input, 'disabled', !c.ready);
    box.dataset.dx = String(c.dx);
    box.dataset.dy = String(c.dy);
    setProp(sx, 'value', String(c.dx));
    setProp(sy, 'value', String(c.dy));
    setText(ox, String(c.dx));
    setText(oy, String(c.dy));
    setText(error, c.error);
    setProp(target, 'tabIndex', c.ready ? 0 : -1);
    if (!c.ready) { c.result = null; c.key = ''; return null; }
    c.subjectKey = subject.key;
    const base = `${subject.key}|${cls}|${c.dx},${c.dy}|`;
    const key = `${base}${state.historyVersion}`;
    // A new picture, class or shift at once; a newer model at most every REFRESH_MS while training.
    if (!c.busy && key !== c.key && (!c.key.startsWith(base) || refreshDue(c))) request(subject, key, cls);
    const r = c.result;
    return r && r.subject === subject.key && (c.dx || c.dy) ? r : null;
  };
  return c;
}
