// Reading the page's views of what the model learned through their automation hooks
// (www/page/units.js, why.js), and the one check of a drawn unit tile, for the tests of those
// views on both backends (insight.test.mjs, webgpu.test.mjs). What the views must show is
// computed in weights.mjs.

/** The data attributes of `[data-view=name]`. */
export const viewData = (page, name) => page.evaluate((n) => ({ ...document.querySelector(`[data-view="${n}"]`)?.dataset }), name);

/** Waits until `[data-view=name]` has `data-key` equal to `want`. */
export async function waitForView(page, name, key, want, timeout = 60_000) {
  await page.waitForFunction(({ name, key, want }) => document.querySelector(`[data-view="${name}"]`)?.dataset[key] === want,
    { name, key, want }, { timeout, polling: 50 });
}

/** The RGBA pixels of the atlas tile at display position `p` (the hook's layout). */
export const atlasTile = (page, p) => page.evaluate((p) => {
  const box = document.querySelector('[data-view="hidden-units"]');
  const { columns, pitchX, pitchY } = box.dataset;
  const x = (p % Number(columns)) * Number(pitchX);
  const y = Math.floor(p / Number(columns)) * Number(pitchY);
  return Array.from(box.querySelector('canvas').getContext('2d').getImageData(x, y, 32, 32).data);
}, p);

/** The bytes of a drawn tile that differ from `want` (weights.mjs expectedTile), as [index, page,
 *  expected]; a byte whose exact value is a half may be rounded either way. */
export const tileOff = (got, want) => got.map((v, i) => [i, v, want.rgba[i]])
  .filter(([i, v, w]) => v !== w && !(want.halfway[i] && Math.abs(v - w) === 1));

/** The saliency view: its data attributes and the map's alpha channel (1024 values). */
export const saliencyShown = (page) => page.evaluate(() => {
  const box = document.querySelector('[data-view="saliency"]');
  const px = document.getElementById('why-map').getContext('2d').getImageData(0, 0, 32, 32).data;
  return {
    hidden: box.hidden, ...box.dataset,
    alpha: Array.from({ length: 1024 }, (_, i) => px[4 * i + 3]),
    image: Array.from(document.getElementById('why-image').getContext('2d').getImageData(0, 0, 32, 32).data),
  };
});

/** The alpha the page draws for the reference's magnitude map: round(255 m / max). */
export const expectedAlpha = (ref) => Array.from(ref.magnitude, (m) => (ref.magnitude_max > 0 ? Math.round((255 * m) / ref.magnitude_max) : 0));
