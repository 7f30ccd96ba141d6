//! The kernel table on a wgpu device: modules compiled from `skywatch::gpu::table`'s sources,
//! their bind-group layouts (group 0 from the table's bindings, group 1 the batch entry with a
//! dynamic offset), pipelines with the table's override constants, buffers and timing.

use skywatch::gpu::table::{BATCH_BYTES, BATCH_STRIDE, BatchEntry, Bind, GEMM, Limits, Module};
use std::collections::HashMap;
use std::time::Instant;
use wgpu::util::DeviceExt;

pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub name: String,
    pub limits: Limits,
    modules: HashMap<Module, (wgpu::ShaderModule, wgpu::BindGroupLayout, wgpu::PipelineLayout)>,
    batch_layout: wgpu::BindGroupLayout,
    /// Replaces gemm.wgsl (no tile header then): to time another GEMM kernel, such as the one
    /// before the tile table, on the same harness.
    gemm_source: Option<String>,
}

/// The adapters wgpu sees, as "name | backend | type".
pub fn adapters() -> Vec<(String, wgpu::Adapter)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let list = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    list.into_iter()
        .map(|a| {
            let i = a.get_info();
            (format!("{} | {:?} | {:?}", i.name, i.backend, i.device_type), a)
        })
        .collect()
}

fn layout_entry(binding: u32, ty: wgpu::BufferBindingType, dynamic: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: dynamic, min_binding_size: None },
        count: None,
    }
}

impl Gpu {
    /// A device on `adapter` with its own limits (as the browser trainer asks for them).
    pub fn new(name: String, adapter: wgpu::Adapter, gemm_source: Option<String>) -> Gpu {
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor { required_limits: limits.clone(), ..Default::default() };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).expect("a device on the adapter");
        let table_limits = Limits {
            workgroup_bytes: limits.max_compute_workgroup_storage_size,
            invocations: limits.max_compute_invocations_per_workgroup,
        };
        let batch_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("batch entry"),
            entries: &[layout_entry(0, wgpu::BufferBindingType::Uniform, true)],
        });
        let mut gpu =
            Gpu { device, queue, name, limits: table_limits, modules: HashMap::new(), batch_layout, gemm_source };
        for m in Module::all() {
            gpu.compile(m);
        }
        gpu
    }

    fn compile(&mut self, m: Module) {
        let code = match (m, &self.gemm_source) {
            (Module::Gemm(_), Some(src)) => {
                let mut parts: Vec<String> = m.sources().iter().skip(1).map(|(_, s)| s.to_string()).collect();
                *parts.last_mut().expect("gemm.wgsl") = src.clone();
                parts.join("\n")
            }
            _ => m.sources().iter().map(|(_, s)| s.as_ref()).collect::<Vec<_>>().join("\n"),
        };
        let d = &self.device;
        let module = d.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&format!("{m:?}")),
            source: wgpu::ShaderSource::Wgsl(code.into()),
        });
        let entries: Vec<_> = m
            .bindings()
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let ty = match b {
                    Bind::Uniform => wgpu::BufferBindingType::Uniform,
                    Bind::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Bind::Write => wgpu::BufferBindingType::Storage { read_only: false },
                };
                layout_entry(i as u32, ty, false)
            })
            .collect();
        let layout = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: None, entries: &entries });
        let pipeline_layout = d.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &[Some(&layout), Some(&self.batch_layout)],
            immediate_size: 0,
        });
        self.modules.insert(m, (module, layout, pipeline_layout));
    }

    /// The pipeline of `entry` in module `m` with `constants` (those the module does not declare,
    /// such as BIAS for a replaced gemm.wgsl, are dropped).
    pub fn pipeline(&self, m: Module, entry: &str, constants: &[(&str, f64)]) -> wgpu::ComputePipeline {
        let (module, _, layout) = &self.modules[&m];
        let constants: Vec<(&str, f64)> = match (&self.gemm_source, m) {
            // The constants of act.wgsl and batch.wgsl stay; those gemm.wgsl declares are kept
            // only if the replacement declares them too.
            (Some(src), Module::Gemm(_)) => constants
                .iter()
                .copied()
                .filter(|(n, _)| !GEMM.1.contains(&format!("override {n}")) || src.contains(&format!("override {n}")))
                .collect(),
            _ => constants.to_vec(),
        };
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(layout),
            module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() },
            cache: None,
        })
    }

    /// Group 0 of module `m`, each buffer bound whole in order.
    pub fn bind(&self, m: Module, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.modules[&m].1,
            entries: &entries,
        })
    }

    pub fn storage(&self, bytes: &[u8]) -> wgpu::Buffer {
        let contents = if bytes.is_empty() { &[0u8; 16][..] } else { bytes };
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        })
    }

    pub fn zeros(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    pub fn uniform(&self, bytes: &[u8]) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }

    /// A batch table holding `entries` and its group 1.
    pub fn batch_table(&self, entries: &[BatchEntry]) -> (wgpu::Buffer, wgpu::BindGroup) {
        let buffer = self.uniform(&BatchEntry::table_bytes(entries));
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.batch_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(BATCH_BYTES),
                }),
            }],
        });
        (buffer, group)
    }

    /// Seconds from submitting the pass `encode` records to the device finishing it.
    pub fn time(&self, encode: impl FnOnce(&mut wgpu::ComputePass)) -> f64 {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            encode(&mut pass);
        }
        let clock = Instant::now();
        self.queue.submit([encoder.finish()]);
        self.device.poll(wgpu::PollType::wait_indefinitely()).expect("the device finishes");
        clock.elapsed().as_secs_f64()
    }

    /// The f32s of `buffer`'s first `floats`.
    pub fn read(&self, buffer: &wgpu::Buffer, floats: usize) -> Vec<f32> {
        let bytes = (floats * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        staging.slice(..).map_async(wgpu::MapMode::Read, |r| r.expect("mapping a readback"));
        self.device.poll(wgpu::PollType::wait_indefinitely()).expect("the device finishes");
        let range = staging.slice(..).get_mapped_range().expect("a mapped readback");
        range.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect()
    }
}

/// Selects batch entry `i` of a table for the dispatches that follow.
pub fn select(pass: &mut wgpu::ComputePass, group: &wgpu::BindGroup, i: usize) {
    pass.set_bind_group(1, group, &[(i as u64 * BATCH_STRIDE) as u32]);
}
