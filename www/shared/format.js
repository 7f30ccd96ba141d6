// Numbers as the page and the widget show them. The locale is fixed: the page is written in
// English, and the browser's own language may be one that Intl rejects (WebKitGTK under
// LANG=C.UTF-8 reports navigator.language "C", and `new Intl.NumberFormat("C")` throws a
// RangeError; see boot.js), so nothing here depends on it.

export const LOCALE = 'en-US';

/** An accuracy or a probability with four decimals: `0.8010`. */
export const acc = (x) => x.toFixed(4);
/** A whole number with thousands separators: `10,000`. */
export const int = (n) => n.toLocaleString(LOCALE);
/** A share as a percentage, one decimal near 0 and 1 (`99.6%`), none elsewhere (`73%`). */
export const pct = (x) => `${(x * 100).toFixed(x >= 0.995 || x < 0.005 ? 1 : 0)}%`;
/** A share as a percentage with one decimal: `62.3%`. */
export const pct1 = (x) => `${(x * 100).toFixed(1)}%`;
/** `12.3 MB`, for messages. */
export const megabytes = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
/** `1 epoch`, `2 epochs`. */
export const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
