// Decoding of a downloaded bundle file (see src/data/mod.rs, "version 2"): a version-2 split is
// the records through the per-channel "sub" + "up" pixel predictor, then deflated (zlib). The
// browser inflates it natively, `DecompressionStream('deflate')`; the wasm side (`Data`) checks
// the sha256 of the file as downloaded and undoes the predictor. A version-1 split is the records
// as they are.
//
// Shapes: in, the file (`stored_bytes` bytes); out, `bytes` = count x 3073 bytes, or an error
// naming the file and its URL.

/** The encoding this worker can undo. */
export const SUB_UP_DEFLATE = 'sub-up-deflate';

/** The bytes to hand to wasm's `Data` for manifest entry `info`, downloaded as `bytes` from `url`. */
export async function inflateSplit(info, bytes, url) {
  if (info.encoding === undefined || info.encoding === null) return bytes;
  if (info.encoding !== SUB_UP_DEFLATE) {
    throw new Error(`${info.file}: encoding '${info.encoding}' is not supported (expected '${SUB_UP_DEFLATE}'), at ${url}`);
  }
  if (typeof DecompressionStream !== 'function') {
    throw new Error(`${info.file}: this browser has no DecompressionStream to inflate the bundle (${url}); update it, or use a version-1 bundle`);
  }
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new Error(`${info.file}: not a valid deflate (zlib) stream (${e.message}), at ${url}`);
  }
}
