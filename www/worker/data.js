// The worker's data: the CIFAR-2 bundle's manifest and its two record files, downloaded with
// progress reports (`data-progress`), retried when a connection drops, kept in the Cache API
// (record files carry their hash in their name, so a cached copy never goes stale), hashed with
// `crypto.subtle` where it exists, and handed to wasm's `Data`, which checks sizes, sha256 and
// labels against the manifest. A version-2 file (pixel predictor, then deflate) is inflated by
// worker/decode.js between the hash, which covers the file as downloaded, and `Data`, which undoes
// the predictor. worker.js routes `load-data` here; the reply is `data-ready`. Every error names
// the URL it is about.

import { inflateSplit } from './decode.js';

const DATA_CACHE = 'skywatch-data-v1';
/** Tries per data file before the download is reported as failed. */
const DOWNLOAD_ATTEMPTS = 3;

/** Fetches `url` with progress reports, from the Cache API when it holds it. The bytes land in
 *  one buffer of the announced length (no list of chunks to concatenate: the page's peak memory
 *  is what the issue on speed counts). */
async function fetchCached(post, url, name, cache) {
  const cached = cache ? await cache.match(url) : undefined;
  if (cached) return readBody(post, cached, name, true);
  // A connection that drops half way restarts the file from its start (a clean restart: nothing
  // partial is kept or cached), a few times with a growing pause.
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url);
      if (!res.ok) throw new HttpError(`${name}: HTTP ${res.status} ${res.statusText} for ${url}`);
      return await readBody(post, res, name, false);
    } catch (e) {
      if (e instanceof HttpError) throw e;
      if (attempt >= DOWNLOAD_ATTEMPTS) {
        throw new Error(`${name}: the download failed ${attempt} times (${e.message}); check the connection and try again`);
      }
      post({ type: 'data-progress', file: name, loaded: 0, total: 0, fromCache: false, retry: attempt });
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

/** An HTTP error status: retrying the same request would not help. */
class HttpError extends Error {}

async function readBody(post, res, name, fromCache) {
  const total = Number(res.headers.get('content-length')) || 0;
  const reader = res.body.getReader();
  let bytes = new Uint8Array(total);
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.length > bytes.length) {
      // No or a wrong Content-Length: grow (doubling), which only a misconfigured server causes.
      const bigger = new Uint8Array(Math.max(2 * bytes.length, loaded + value.length));
      bigger.set(bytes.subarray(0, loaded));
      bytes = bigger;
    }
    bytes.set(value, loaded);
    loaded += value.length;
    post({ type: 'data-progress', file: name, loaded, total, fromCache });
  }
  return { bytes: loaded === bytes.length ? bytes : bytes.slice(0, loaded), fromCache };
}

/** Lower-case hex sha256 by the browser's native implementation, or undefined where
 *  `crypto.subtle` is missing (pages over plain http): the wasm side then hashes. */
async function sha256(bytes) {
  if (!self.crypto?.subtle) return undefined;
  const d = new Uint8Array(await self.crypto.subtle.digest('SHA-256', bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** `load-data`: fetches the manifest and both splits of the bundle in the folder `base` (a URL),
 *  checks them in wasm and keeps them in `ctx.state.data`; waits for `ctx.wasmReady` only to hand
 *  the bytes over, so that the download overlaps the package's compilation. With `files` (a
 *  bundle's files.js: its file names mapped to URLs, which a bundler may have rewritten), `base`
 *  is the manifest's own URL and each split is fetched from its entry. */
export async function loadData({ state, post, wasmReady }, base, files = null) {
  const manifestUrl = files ? base.href : new URL('manifest.json', base).href;
  const res = await fetch(manifestUrl, { cache: 'no-cache' }).catch((e) => {
    throw new Error(`manifest.json: the download failed (${e.message}) for ${manifestUrl}; check the connection and try again`);
  });
  if (!res.ok) throw new Error(`manifest.json: HTTP ${res.status} for ${manifestUrl} (build the data with \`skywatch data\`)`);
  const manifestText = await res.text();
  let manifest;
  try {
    manifest = JSON.parse(manifestText);
  } catch (e) {
    throw new Error(`manifest.json: not valid JSON (${e.message}) at ${manifestUrl}; rebuild the bundle with \`skywatch data\``);
  }
  // The wasm side checks the whole manifest; before fetching, only this: the files must be plain
  // names inside the bundle folder (a manifest cannot send the page elsewhere).
  for (const split of ['train', 'test']) {
    const file = manifest?.[split]?.file;
    if (typeof file !== 'string' || !/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(file) || (files && typeof files[file] !== 'string')) {
      throw new Error(`manifest.json: ${split}.file ${JSON.stringify(file)} is not a plain file name in the bundle folder (${manifestUrl})`);
    }
  }
  const cache = self.caches ? await self.caches.open(DATA_CACHE).catch(() => null) : null;
  const splits = [manifest.train, manifest.test];
  const urls = splits.map((s) => new URL(files ? files[s.file] : s.file, base).href);
  const [train, test] = await Promise.all(splits.map((s, i) => fetchCached(post, urls[i], s.file, cache)));
  try {
    // The sha256 of each file as downloaded; a version-2 file is then inflated. `Data` checks
    // sizes, sha256 and labels against the manifest (and undoes version 2's pixel predictor); it
    // copies the bytes into wasm memory.
    const [trainSha, testSha] = await Promise.all([sha256(train.bytes), sha256(test.bytes)]);
    const [trainBytes, testBytes] = await Promise.all([train, test].map((got, i) => inflateSplit(splits[i], got.bytes, urls[i])));
    await wasmReady;
    try {
      state.data = new state.wasm.Data(manifestText, trainBytes, testBytes, trainSha, testSha);
    } catch (e) {
      throw new Error(`${e.message} (the bundle at ${manifestUrl})`);
    }
  } catch (e) {
    // A corrupt cached copy must not be served again.
    if (cache) await Promise.all(urls.map((f) => cache.delete(f)));
    throw e;
  }
  if (cache) {
    // Record files carry their hash in their name, so a cached copy never goes stale.
    for (const [i, got] of [train, test].entries()) {
      if (!got.fromCache) await cache.put(urls[i], new Response(got.bytes, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(got.bytes.length) } }));
    }
  }
  post({
    type: 'data-ready',
    classes: state.data.classes(),
    train: state.data.trainLength(),
    test: state.data.testLength(),
    fromCache: train.fromCache && test.fromCache,
  });
}

