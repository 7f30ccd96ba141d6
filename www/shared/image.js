// Picture files for "bird or airplane?": what their header says (format, size, animation), and
// their decoding into RGBA by the browser, with limits that keep a mistaken choice (a video, a
// 100-megapixel scan) from being read or decoded at all. Used by the page and the widget.

import { megabytes } from './format.js';

/** Largest picture file `decodeImage` takes (bytes): far above any photo, and it keeps a
 *  mistaken choice (a video, a disk image) from being read at all. */
export const MAX_PICTURE_BYTES = 50e6;
/** Largest picture `decodeImage` takes (pixels, when the file's header tells its size): the
 *  browser decodes the whole image before it can scale it, 4 bytes a pixel (400 MB here).
 *  `createImageBitmap`'s resizeWidth/resizeHeight do not help: Chromium still decodes the full
 *  image first (measured: a 10000x10000 PNG peaked higher with them than without). */
export const MAX_PICTURE_PIXELS = 100e6;

const FORMAT_NAMES = { png: 'PNG', apng: 'PNG', gif: 'GIF', jpeg: 'JPEG', webp: 'WebP', bmp: 'BMP', svg: 'SVG' };

/** What the first bytes of a picture file say: `{format, width, height, animated}` (format
 *  null when unknown; width and height 0 when the header does not give them). Reads PNG (and
 *  APNG), GIF, JPEG, WebP and BMP headers, and recognizes SVG text. Never throws. */
export function sniffImage(bytes) {
  const info = { format: null, width: 0, height: 0, animated: false };
  const b = bytes;
  const n = b.length;
  const u16be = (i) => (b[i] << 8) | b[i + 1];
  const u32be = (i) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  const u16le = (i) => b[i] | (b[i + 1] << 8);
  const u24le = (i) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16);
  const ascii = (i, len) => String.fromCharCode(...b.subarray(i, i + len));
  try {
    if (n >= 24 && u32be(0) === 0x89504e47 && u32be(4) === 0x0d0a1a0a) {
      info.format = 'png';
      if (ascii(12, 4) === 'IHDR') { info.width = u32be(16); info.height = u32be(20); }
      // APNG: an acTL chunk before the first IDAT.
      for (let i = 8; i + 8 <= n;) {
        const type = ascii(i + 4, 4);
        if (type === 'acTL') { info.animated = true; info.format = 'apng'; break; }
        if (type === 'IDAT') break;
        i += 12 + u32be(i);
      }
    } else if (n >= 10 && /^GIF8[79]a$/.test(ascii(0, 6))) {
      info.format = 'gif';
      info.width = u16le(6);
      info.height = u16le(8);
      info.animated = gifFrames(b) > 1;
    } else if (n >= 4 && b[0] === 0xff && b[1] === 0xd8) {
      info.format = 'jpeg';
      // The first start-of-frame marker holds the size (C4, C8 and CC are other tables).
      for (let i = 2; i + 9 < n;) {
        if (b[i] !== 0xff) break;
        const m = b[i + 1];
        if (m === 0xff) { i++; continue; }
        if (m >= 0xc0 && m <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(m)) { info.height = u16be(i + 5); info.width = u16be(i + 7); break; }
        i += 2 + u16be(i + 2);
      }
    } else if (n >= 30 && ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') {
      info.format = 'webp';
      const chunk = ascii(12, 4);
      if (chunk === 'VP8X') {
        info.animated = (b[20] & 0x02) !== 0;
        info.width = u24le(24) + 1;
        info.height = u24le(27) + 1;
      } else if (chunk === 'VP8 ') {
        info.width = u16le(26) & 0x3fff;
        info.height = u16le(28) & 0x3fff;
      } else if (chunk === 'VP8L') {
        const bits = (b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24)) >>> 0;
        info.width = (bits & 0x3fff) + 1;
        info.height = ((bits >>> 14) & 0x3fff) + 1;
      }
    } else if (n >= 26 && b[0] === 0x42 && b[1] === 0x4d) {
      info.format = 'bmp';
      const dv = new DataView(b.buffer, b.byteOffset, n);
      info.width = Math.abs(dv.getInt32(18, true));
      info.height = Math.abs(dv.getInt32(22, true));
    } else {
      const text = new TextDecoder().decode(b.subarray(0, 4096)).replace(/^\uFEFF/, '').trimStart();
      if (/^(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]/i.test(text)) info.format = 'svg';
    }
  } catch {
    // A header cut short: whatever was read so far.
  }
  return info;
}

/** Frames of a GIF (counting up to 2), walking its blocks. */
function gifFrames(b) {
  let i = 13;
  if (b[10] & 0x80) i += 3 * 2 ** ((b[10] & 7) + 1); // global colour table
  let frames = 0;
  const skipSubBlocks = () => { while (i < b.length && b[i] !== 0) i += b[i] + 1; i++; };
  while (i < b.length && frames < 2) {
    const block = b[i];
    if (block === 0x2c) { // image descriptor
      frames++;
      const flags = b[i + 9];
      i += 10;
      if (flags & 0x80) i += 3 * 2 ** ((flags & 7) + 1); // local colour table
      i++; // LZW minimum code size
      skipSubBlocks();
    } else if (block === 0x21) { // extension: label, then sub-blocks
      i += 2;
      skipSubBlocks();
    } else {
      break; // trailer (0x3b) or damage
    }
  }
  return frames;
}

/** Decodes a picture file (any format the browser knows, SVG included) into RGBA: its centre
 *  square (all the model looks at), scaled down to at most `maxSide` pixels a side. Refuses, with
 *  a message naming the file, what is empty, over MAX_PICTURE_BYTES or MAX_PICTURE_PIXELS, or not
 *  a picture. `note` says when only part of the file is used (the first frame of an animation). */
export async function decodeImage(blob, maxSide = 256) {
  const name = blob.name || 'the picture';
  if (blob.size === 0) throw new Error(`${name} is empty (0 bytes), not a picture`);
  if (blob.size > MAX_PICTURE_BYTES) {
    throw new Error(`${name} is ${megabytes(blob.size)}: pictures of up to ${megabytes(MAX_PICTURE_BYTES)} can be classified`);
  }
  // A GIF's frames can be anywhere in it: read it whole (it is at most MAX_PICTURE_BYTES).
  let head = new Uint8Array(await blob.slice(0, 1 << 16).arrayBuffer());
  if (/^GIF8/.test(String.fromCharCode(...head.subarray(0, 4))) && blob.size > head.length) head = new Uint8Array(await blob.arrayBuffer());
  const info = sniffImage(head);
  const kind = FORMAT_NAMES[info.format];
  if (info.width * info.height > MAX_PICTURE_PIXELS) {
    throw new Error(`${name} is ${info.width} × ${info.height} pixels (${Math.round(info.width * info.height / 1e6)} megapixels): `
      + `pictures of up to ${MAX_PICTURE_PIXELS / 1e6} megapixels can be classified; scale it down first`);
  }
  let source;
  let width;
  let height;
  try {
    if (info.format === 'svg' || blob.type === 'image/svg+xml') {
      // createImageBitmap does not take SVG: draw it through an <img> (which runs no script in it).
      source = await svgImage(blob);
      width = source.naturalWidth || maxSide;
      height = source.naturalHeight || maxSide;
    } else {
      source = await createImageBitmap(blob);
      ({ width, height } = source);
    }
  } catch {
    throw new Error(kind
      ? `${name} looks like a ${kind} file but could not be decoded: it may be damaged or cut short`
      : `${name} is not a picture this browser can read (try a PNG, JPEG, GIF or WebP file)`);
  }
  const side = Math.min(width, height);
  const out = Math.max(1, Math.min(maxSide, Math.round(side)));
  const canvas = new OffscreenCanvas(out, out);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, (width - side) / 2, (height - side) / 2, side, side, 0, 0, out, out);
  source.close?.();
  let data;
  try {
    ({ data } = ctx.getImageData(0, 0, out, out));
  } catch {
    throw new Error(`${name} cannot be read back after drawing (an SVG with embedded HTML?): try a PNG or JPEG`);
  }
  const note = info.animated ? `an animated ${kind}: its first frame is classified` : '';
  return { rgba: data.buffer, width: out, height: out, note };
}

/** An SVG file as a decoded <img>, from a blob: URL (allowed by the page's img-src). */
async function svgImage(blob) {
  const url = URL.createObjectURL(blob.type === 'image/svg+xml' ? blob : new Blob([blob], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } finally {
    URL.revokeObjectURL(url);
  }
}
