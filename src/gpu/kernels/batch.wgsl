// The batch a dispatch works on, shared by every kernel (prepended to each module).
//
// One entry per batch in a table written once per epoch (training) or once per run (evaluation),
// 256 bytes apart, selected with a dynamic offset: so many batches go into one compute pass with
// no buffer write between them.
//
//   start      first position of the batch in the index buffer (the epoch's order, or 0..n)
//   rows       rows of this batch (the last batch of an epoch may be short)
//   slot       where the batch's summed loss and correct count go in the statistics buffer
//   first      1 on the optimizer's first step (SGD momentum: buf = g)
//   step_size  Adam: lr / (1 - beta1^t), computed on the CPU exactly as src/optim.rs does
//   bc2_sqrt   Adam: sqrt(1 - beta2^t)
struct Batch {
    start: u32,
    rows: u32,
    slot: u32,
    first: u32,
    step_size: f32,
    bc2_sqrt: f32,
}

@group(1) @binding(0) var<uniform> batch: Batch;
