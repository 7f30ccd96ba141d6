// Gather and normalise a batch straight from the uint8 bundle on the GPU; with data augmentation
// (entry point `augment`), flip and shift each image while gathering it.
//
// The split's records (3073 bytes each: the label, then 1024 R, 1024 G, 1024 B) are uploaded
// once as u32 words; byte o is (records[o / 4] >> 8 (o mod 4)) & 255 (little-endian). For batch
// row r of image i = index[start + r]:
//
//   x[r, p]   = lut[c][byte(3073 i + 1 + p)],  c = p / 1024, p in 0..3072
//   labels[r] = byte(3073 i)
//
// where lut[c][v] = (v / 255 - mean[c]) / std[c] is the CPU's table (data::Normalizer), so the
// inputs equal the CPU's bit for bit. Grid: x = 12 workgroups of 256 pixels, y = rows (strided
// past 65535).
//
// `augment` (module GatherAugment, which binds `draws` too) gathers the same rows, flipped then
// shifted as src/data/augment.rs does on the normalised tensor. The draw of the image at position
// q = start + r of the epoch's order is one word, draws[q] = flip | (dx + 128) << 8 | (dy + 128) << 16
// (table::pack_draw), uploaded once per epoch for all its positions. For pixel p = (c, y, x)
// (p = 1024 c + 32 y + x) and (sy, sx) = (y - dy, x - dx):
//
//   x[r, p] = lut[c][byte(3073 i + 1 + 1024 c + 32 sy + fx)]   if 0 <= sy, sx < 32,
//             0                                               otherwise (zeros shifted in),
//   fx = 31 - sx if flip else sx
//
// a copy of the table's values (no arithmetic), so it equals the CPU's augmentation bit for bit.
// With no flip and (dx, dy) = (0, 0) it is `main`'s x[r, p].

@group(0) @binding(0) var<storage, read> records: array<u32>;
@group(0) @binding(1) var<storage, read> lut: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> labels: array<u32>;
// Used by `augment` only (module GatherAugment's sixth binding).
@group(0) @binding(5) var<storage, read> draws: array<u32>;

fn byte_at(o: u32) -> u32 {
    return (records[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let p = wg.x * 256u + li;
    for (var r = wg.y; r < batch.rows; r += nwg.y) {
        let base = index[batch.start + r] * 3073u;
        x[r * 3072u + p] = lut[(p >> 10u) * 256u + byte_at(base + 1u + p)];
        if p == 0u {
            labels[r] = byte_at(base);
        }
    }
}

@compute @workgroup_size(256)
fn augment(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let p = wg.x * 256u + li;
    let c = p >> 10u;
    let py = i32((p >> 5u) & 31u);
    let px = i32(p & 31u);
    for (var r = wg.y; r < batch.rows; r += nwg.y) {
        let q = batch.start + r;
        let base = index[q] * 3073u;
        let d = draws[q];
        let sy = py - (i32((d >> 16u) & 0xffu) - 128);
        let sx = px - (i32((d >> 8u) & 0xffu) - 128);
        var v = 0.0;
        if sy >= 0 && sy < 32 && sx >= 0 && sx < 32 {
            let fx = select(sx, 31 - sx, (d & 1u) == 1u);
            v = lut[c * 256u + byte_at(base + 1u + c * 1024u + u32(sy) * 32u + u32(fx))];
        }
        x[r * 3072u + p] = v;
        if p == 0u {
            labels[r] = byte_at(base);
        }
    }
}
