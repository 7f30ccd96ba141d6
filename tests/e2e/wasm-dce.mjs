// How much smaller the single-threaded wasm (www/pkg) would be if it carried only what the blog
// widget uses: binaryen's wasm-metadce keeps the exports the widget's requests reach (training on
// wasm and WebGPU, prediction, the unit strip, the GPU-to-wasm fallback) and drops the page-only
// ones (the other views of what the model learned, the gallery, weights export/import, the
// PyTorch band), with everything only they reach; wasm-opt -O3 then tidies up. A measurement that
// prints figures: a separate widget package is worth building only if it saves at least 15%.
//
//   node tests/e2e/wasm-dce.mjs [path/to/skywatch_bg.wasm]     (after scripts/build)

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { ROOT } from './harness.mjs';

/** Exports only the full page calls (worker/inspect.js, the gallery, page/weights.js, the band). */
const PAGE_ONLY = new Set(['bandPositionFor', 'data_imagesRgba', 'data_labelsOf', 'data_testImageRgba', 'data_testLabel',
  'gpusession_exportWeights', 'gpusession_importWeights', 'gpusession_hardExamples', 'gpusession_predictTest',
  'pytorchBand', 'session_bandPosition', 'session_bandPreset', 'session_exportWeights', 'session_importWeights',
  'session_hardExamples', 'session_neighboursImage', 'session_neighboursRgba', 'session_predictTest',
  'session_saliencyImage', 'session_saliencyRgba', 'session_topActivations', 'session_topActivationsAll', 'session_unitTilesAt']);

const input = process.argv[2] ?? join(ROOT, 'www/pkg/skywatch_bg.wasm');
const bytes = readFileSync(input);
const module = new WebAssembly.Module(bytes);
const exports = WebAssembly.Module.exports(module).map((e) => e.name);
const graph = exports.filter((e) => !PAGE_ONLY.has(e)).map((e) => ({ name: `export ${e}`, export: e, root: true }));
for (const i of WebAssembly.Module.imports(module)) graph.push({ name: `import ${i.module}.${i.name}`, import: [i.module, i.name] });

const tmp = mkdtempSync(join(tmpdir(), 'skywatch-dce-'));
try {
  writeFileSync(join(tmp, 'graph.json'), JSON.stringify(graph));
  const bin = (name) => join(ROOT, 'node_modules/.bin', name);
  execFileSync(bin('wasm-metadce'), ['--enable-simd', '--enable-bulk-memory', '--enable-reference-types', '--enable-nontrapping-float-to-int',
    '--enable-sign-ext', '--enable-mutable-globals', '--enable-multivalue', '-f', join(tmp, 'graph.json'), input, '-o', join(tmp, 'dce.wasm')], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync(bin('wasm-opt'), ['-all', '-O3', join(tmp, 'dce.wasm'), '-o', join(tmp, 'widget.wasm')], { stdio: 'inherit' });
  const sizes = (b) => ({ raw: b.length, gzip: gzipSync(b, { level: 9 }).length, brotli: brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length });
  const all = sizes(bytes);
  const widget = sizes(readFileSync(join(tmp, 'widget.wasm')));
  console.log(`exports: ${exports.length}, of which page-only: ${exports.filter((e) => PAGE_ONLY.has(e)).length}`);
  for (const k of ['raw', 'gzip', 'brotli']) {
    console.log(`${k}: whole ${all[k]} bytes, widget-only ${widget[k]} bytes, saves ${(100 * (1 - widget[k] / all[k])).toFixed(1)}%`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
