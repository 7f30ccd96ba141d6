// The `augment` option of a run (config::Augment in the core), read the same way by the page's
// form and URL and by the widget's attribute.

/** Largest augmentation shift (config::MAX_AUGMENT_SHIFT). */
export const MAX_AUGMENT_SHIFT = 8;

/** Data augmentation, as the core writes it (config::Augment): none, flip, shift:K, flip,shift:K. */
export function parseAugment(text) {
  const s = String(text).trim().toLowerCase().replace(/\s+/g, '');
  if (s === 'none' || s === '') return 'none';
  const m = /^(?:(flip)|(?:(flip),)?shift:(\d+))$/.exec(s);
  const k = m?.[3] != null ? Number(m[3]) : 0;
  if (!m || (m[3] != null && (k < 1 || k > MAX_AUGMENT_SHIFT))) {
    throw new Error(`expected none, flip, shift:K or flip,shift:K with K from 1 to ${MAX_AUGMENT_SHIFT}`);
  }
  return [m[1] || m[2] ? 'flip' : '', k ? `shift:${k}` : ''].filter(Boolean).join(',');
}
