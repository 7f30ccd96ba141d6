// Pictures for the end-to-end tests, made here (never taken from the data): a small PNG encoder
// and test pictures whose pixels the tests know, so that what a page computes from a picture can
// be checked against the reference (reference.mjs) on exactly the same pixels.

import { crc32, deflateSync } from 'node:zlib';

/** A PNG of `width` x `height`: 1-bit grayscale by default (a 10000x10000 one is 22 kB), with
 *  `row(bytes, y)` filling each row's bytes. No colour profile, gamma or sRGB chunk: browsers
 *  decode it to exactly these values. */
export function png(width, height, { colorType = 0, bitDepth = 1, row } = {}) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  const channels = { 0: 1, 2: 3, 6: 4 }[colorType];
  const stride = Math.ceil((width * channels * bitDepth) / 8);
  const raw = Buffer.alloc((stride + 1) * height); // filter byte 0 (none) on every row
  if (row) for (let y = 0; y < height; y++) row(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** A square RGB picture of `size` pixels: a sky gradient with a white airplane-like shape,
 *  shifted by `variant`. Returns {png, rgba} (rgba: the decoded pixels, alpha 255). Square and
 *  at most 256 pixels a side, so that the page's decoder (client.js decodeImage: the centre
 *  square, scaled to at most 256) hands these very pixels to the model. */
export function skyPicture(size = 96, variant = 0) {
  const rgb = Buffer.alloc(size * size * 3);
  const cx = size / 2 + 5 * variant;
  const cy = size / 2 - 3 * variant;
  const s = size / 96;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = (x - cx) / s;
      const dy = (y - cy) / s;
      const fuselage = (dx / 36) ** 2 + (dy / 6) ** 2 <= 1;
      const wing = dx >= -6 && dx <= 16 && Math.abs(dy) <= 30 && dx - 0.4 * Math.abs(dy) >= -6 && dx - 0.4 * Math.abs(dy) <= 4;
      const tail = dx >= -38 && dx <= -28 && dy >= -14 && dy <= 0;
      const i = 3 * (y * size + x);
      if (fuselage || wing || tail) rgb.set([244, 244, 244], i);
      else rgb.set([47 + Math.round((138 * y) / size), 111 + Math.round((109 * y) / size), 192 + Math.round((53 * y) / size)], i);
    }
  }
  const rgba = Buffer.alloc(size * size * 4);
  for (let p = 0; p < size * size; p++) {
    rgba.set(rgb.subarray(3 * p, 3 * p + 3), 4 * p);
    rgba[4 * p + 3] = 255;
  }
  const encoded = png(size, size, { colorType: 2, bitDepth: 8, row: (r, y) => rgb.copy(r, 0, 3 * size * y, 3 * size * (y + 1)) });
  return { png: encoded, rgba, width: size, height: size };
}
