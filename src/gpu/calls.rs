//! The kernels bound to their buffers ([`Kernels`](super::kernels::Kernels) makes them): each
//! encodes its dispatches into a compute pass, as often as needed, with no buffer write.

use super::table::WG;
use web_sys::{GpuBindGroup, GpuBuffer, GpuComputePassEncoder, GpuComputePipeline};

/// A GEMM bound to its buffers.
pub struct GemmCall {
    pub(super) main: GpuComputePipeline,
    /// The split-K reduction and its grid.
    pub(super) reduce: Option<(GpuComputePipeline, (u32, u32))>,
    pub(super) group: GpuBindGroup,
    pub(super) grid: (u32, u32, u32),
    pub(super) _uniform: GpuBuffer,
}

impl GemmCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.main);
        pass.set_bind_group(0, Some(&self.group));
        let (x, y, z) = self.grid;
        pass.dispatch_workgroups_with_workgroup_count_y_and_workgroup_count_z(x, y, z);
        if let Some((reduce, (x, y))) = &self.reduce {
            pass.set_pipeline(reduce);
            pass.dispatch_workgroups_with_workgroup_count_y(*x, *y);
        }
    }

    /// Dispatches per encode (1, or 2 with a split-K reduction).
    pub fn dispatches(&self) -> usize {
        1 + self.reduce.is_some() as usize
    }
}

pub struct GatherCall {
    pub(super) pipeline: GpuComputePipeline,
    pub(super) group: GpuBindGroup,
    pub(super) rows: u32,
}

impl GatherCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, Some(&self.group));
        pass.dispatch_workgroups_with_workgroup_count_y(crate::data::PIXELS as u32 / WG, self.rows);
    }
}

pub struct LossCall {
    pub(super) pipeline: GpuComputePipeline,
    pub(super) group: GpuBindGroup,
}

impl LossCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, Some(&self.group));
        pass.dispatch_workgroups(1);
    }
}

pub struct BiasCall {
    pub(super) pipeline: GpuComputePipeline,
    pub(super) group: GpuBindGroup,
    pub(super) groups: u32,
    pub(super) _uniform: GpuBuffer,
}

impl BiasCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, Some(&self.group));
        pass.dispatch_workgroups(self.groups);
    }
}

pub struct OptimCall {
    pub(super) pipeline: GpuComputePipeline,
    pub(super) group: GpuBindGroup,
    pub(super) grid: (u32, u32),
    pub(super) _uniform: GpuBuffer,
}

impl OptimCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, Some(&self.group));
        pass.dispatch_workgroups_with_workgroup_count_y(self.grid.0, self.grid.1);
    }
}

pub struct ActivationCall {
    pub(super) pipeline: GpuComputePipeline,
    pub(super) group: GpuBindGroup,
    pub(super) grid: (u32, u32),
    pub(super) _uniform: GpuBuffer,
}

impl ActivationCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, Some(&self.group));
        pass.dispatch_workgroups_with_workgroup_count_y(self.grid.0, self.grid.1);
    }
}

/// One of the convolution kernels (im2col, col2im, pooling forward or backward) bound to its
/// buffers: one thread per output value.
pub struct ConvCall {
    pub(super) pipeline: GpuComputePipeline,
    pub(super) group: GpuBindGroup,
    pub(super) grid: (u32, u32),
    pub(super) _uniform: GpuBuffer,
}

impl ConvCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, Some(&self.group));
        pass.dispatch_workgroups_with_workgroup_count_y(self.grid.0, self.grid.1);
    }
}
