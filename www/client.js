// The page side of the worker protocol, shared by the training page and the blog widget.
//
// Requests (page -> worker), each `{type, ...}`:
//   init        {threads, store, base?, persist?} -> ready {mode: {threads, kernel, isolated, reason}}
//                (persist: false keeps the model only in memory, not in IndexedDB)
//   load-data   {url}                        -> data-progress {file, loaded, total, fromCache}*, data-ready {classes, train, test, fromCache}
//   restore     {}                           -> restored {found, config?, history?, summary?, discarded?}
//   train       {config, continueRun?}       -> started {config, summary, batchesPerEpoch, trainSize, epochsDone},
//                                               progress {progress, batches, seconds}*, epoch {stats}*, done | stopped {epochs}
//   pause / resume / stop                    -> paused / resumed / stopped
//   evaluate    {}                           -> evaluation {train, test}       (EvalStats: accuracy, loss, confusion)
//   predict     {rgba: ArrayBuffer, width, height} (transferred) -> prediction {probabilities, image: Uint8Array 32x32 RGBA, classes}
//   gallery     {indices}                    -> gallery {items: [{index, label, probabilities}], images: Uint8Array, classes}
//   export      {}                           -> weights {bytes: Uint8Array (safetensors), config}
//   import      {bytes: ArrayBuffer, config} (transferred) -> imported {config, summary}
//   describe    {config}                     -> described {summary}
//   preset      {name}                       -> preset {config}
//   forget      {}                           -> forgotten
// Any request can instead get `error {where: <request type>, message}`.
// Types of config and stats: the TypeScript declarations in pkg/skywatch.d.ts.

export class WorkerClient extends EventTarget {
  /** @param {URL | string} workerUrl URL of worker.js */
  constructor(workerUrl) {
    super();
    this.workerUrl = workerUrl;
    this.#start();
  }

  #start() {
    this.worker = new Worker(this.workerUrl, { type: 'module' });
    this.worker.onmessage = ({ data }) => this.dispatchEvent(new CustomEvent(data.type, { detail: data }));
    // A crash (uncaught error, out of memory while loading) ends up here, not as a message.
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      this.dispatchEvent(new CustomEvent('crash', { detail: { message: e.message || 'the training worker stopped unexpectedly' } }));
    };
  }

  /** Ends the worker and starts a fresh one (after a crash). */
  restart() {
    this.worker.terminate();
    this.#start();
  }

  send(msg, transfer = []) {
    this.worker.postMessage(msg, transfer);
  }

  /** Calls `fn(detail)` for every message of `type`; returns a function that unsubscribes. */
  on(type, fn) {
    const h = (e) => fn(e.detail);
    this.addEventListener(type, h);
    return () => this.removeEventListener(type, h);
  }

  /** Sends `msg` and resolves with the first `replyType` message, or rejects with its error. */
  request(msg, replyType, transfer = []) {
    return new Promise((resolve, reject) => {
      const offs = [];
      const done = () => offs.forEach((off) => off());
      offs.push(this.on(replyType, (d) => { done(); resolve(d); }));
      offs.push(this.on('error', (d) => { if (d.where === msg.type) { done(); reject(new Error(d.message)); } }));
      offs.push(this.on('crash', (d) => { done(); reject(new Error(d.message)); }));
      this.send(msg, transfer);
    });
  }
}

/** Floating-point operations of one training sample (forward, weight and bias gradients, input
 *  gradients of every layer but the first), for the GFLOP/s display. */
export function trainFlopsPerSample(layers) {
  let flops = 0;
  for (let l = 0; l + 1 < layers.length; l++) {
    const mac = layers[l] * layers[l + 1];
    flops += 2 * mac * (l === 0 ? 2 : 3);
  }
  return flops;
}

/** Decodes an image file (any format the browser knows) into RGBA, scaled down so that its
 *  shorter side is at most `maxSide` (a 50-megapixel photo need not cross into wasm whole). */
export async function decodeImage(blob, maxSide = 256) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    throw new Error(`${blob.name || 'the file'} is not an image this browser can decode`);
  }
  const scale = Math.min(1, maxSide / Math.min(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const { data } = ctx.getImageData(0, 0, width, height);
  return { rgba: data.buffer, width, height };
}
