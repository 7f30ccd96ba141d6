//! The WebGPU adapter and device: acquisition, limits, error scopes, device loss, buffers and
//! readback. Every fallible WebGPU step comes back as [`Error::Gpu`] with a message meant for the
//! user ("no WebGPU adapter", "the GPU device was lost (…)", "out of GPU memory while …").
//!
//! WebGPU reports most errors asynchronously: validation, out-of-memory and internal errors go to
//! error scopes (`pushErrorScope` … `popErrorScope`), a shader's compile errors to its
//! compilation info, and a lost device to the `device.lost` promise. [`Gpu::scoped`] wraps a
//! step in the three scopes; a listener records the loss, after which every call fails with it.

use crate::error::{Error, Result};
use js_sys::{Object, Reflect};
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    GpuAdapter, GpuBuffer, GpuBufferDescriptor, GpuCompilationMessageType, GpuDevice, GpuDeviceDescriptor,
    GpuErrorFilter, GpuPowerPreference, GpuQueue, GpuRequestAdapterOptions, GpuShaderModule, GpuShaderModuleDescriptor,
    gpu_buffer_usage, gpu_map_mode,
};

/// What the browser offers: whether there is a WebGPU adapter, whether it is a software
/// (fallback) one, and its description. `reason` says why WebGPU is not usable, when it is not.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AdapterReport {
    /// An adapter was found.
    pub available: bool,
    /// The adapter is a fallback (software, e.g. SwiftShader): correct but slower than the CPU path.
    pub fallback: bool,
    pub vendor: String,
    pub architecture: String,
    pub device: String,
    /// The adapter's own description (often empty: browsers hide it).
    pub adapter_description: String,
    /// One line for the user, e.g. "nvidia ampere (NVIDIA GeForce RTX 3060)" or
    /// "google swiftshader (software)".
    pub description: String,
    /// Why WebGPU should not be used, when it should not: "no WebGPU adapter", "the WebGPU adapter
    /// is software (fallback)", "this browser has no WebGPU (navigator.gpu is missing)".
    pub reason: Option<String>,
}

/// Messages of the errors a user can meet, named once.
pub(crate) const NO_ADAPTER: &str = "no WebGPU adapter";
pub(crate) const NO_WEBGPU: &str = "this browser has no WebGPU (navigator.gpu is missing)";
pub(crate) const FALLBACK: &str = "the WebGPU adapter is software (fallback)";

/// `navigator.gpu` of the window or worker this runs in, if the browser has WebGPU.
fn navigator_gpu() -> Option<web_sys::Gpu> {
    let global = js_sys::global();
    let navigator = Reflect::get(&global, &"navigator".into()).ok()?;
    let gpu = Reflect::get(&navigator, &"gpu".into()).ok()?;
    if gpu.is_undefined() || gpu.is_null() { None } else { Some(gpu.unchecked_into()) }
}

/// The message of a JS exception or rejection (`Error.message`, or the value as text).
pub(crate) fn js_message(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

async fn request_adapter() -> Result<GpuAdapter> {
    let gpu = navigator_gpu().ok_or_else(|| Error::Gpu(NO_WEBGPU.into()))?;
    let options = GpuRequestAdapterOptions::new();
    options.set_power_preference(GpuPowerPreference::HighPerformance);
    let adapter = gpu
        .request_adapter_with_options(&options)
        .await
        .map_err(|e| Error::Gpu(format!("{NO_ADAPTER} ({})", js_message(&e))))?;
    adapter.into_option().ok_or_else(|| Error::Gpu(NO_ADAPTER.into()))
}

fn report_of(adapter: &GpuAdapter) -> AdapterReport {
    let info = adapter.info();
    let (vendor, architecture, device, desc) = (info.vendor(), info.architecture(), info.device(), info.description());
    let fallback = info.is_fallback_adapter();
    let mut description = [vendor.as_str(), architecture.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let detail = if desc.is_empty() { device.clone() } else { desc.clone() };
    if !detail.is_empty() {
        description = if description.is_empty() { detail } else { format!("{description} ({detail})") };
    }
    if description.is_empty() {
        description = "unnamed WebGPU adapter".into();
    }
    if fallback {
        description.push_str(" (software)");
    }
    AdapterReport {
        available: true,
        fallback,
        vendor,
        architecture,
        device,
        adapter_description: desc,
        description,
        reason: fallback.then(|| FALLBACK.to_string()),
    }
}

/// Looks for a WebGPU adapter without keeping it (a dedicated worker has `WorkerNavigator.gpu`,
/// the page `Navigator.gpu`). Never fails: a missing adapter is a report with a `reason`.
pub async fn probe() -> AdapterReport {
    match request_adapter().await {
        Ok(adapter) => report_of(&adapter),
        Err(e) => AdapterReport { reason: Some(e.to_string()), ..AdapterReport::default() },
    }
}

/// Device limits this backend checks its buffers against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_storage_binding: u64,
    pub max_buffer: u64,
    /// What the GEMM's tile must fit (the kernel table chooses by it).
    pub tiles: super::table::Limits,
}

struct Inner {
    device: GpuDevice,
    queue: GpuQueue,
    report: AdapterReport,
    limits: Limits,
    /// Set by the `device.lost` listener (or [`Gpu::lose`]): the message every later call returns.
    lost: Rc<RefCell<Option<String>>>,
}

impl Drop for Inner {
    /// Frees the GPU memory at once rather than when the garbage collector gets to the device.
    fn drop(&mut self) {
        self.device.destroy();
    }
}

/// A WebGPU device (one per adapter), shared by the buffers and kernels made on it.
#[derive(Clone)]
pub struct Gpu(Rc<Inner>);

impl Gpu {
    /// Requests the adapter (high-performance preference) and a device with the adapter's own
    /// buffer limits (the spec's defaults allow only 128 MiB per storage binding). A software
    /// adapter is accepted: the caller decides with [`AdapterReport::fallback`].
    pub async fn request() -> Result<Gpu> {
        let adapter = request_adapter().await?;
        let report = report_of(&adapter);
        let limits = adapter.limits();
        let read = |name: &str| Reflect::get(&limits, &name.into()).ok().and_then(|v| v.as_f64());
        let required = Object::new();
        for name in [
            "maxStorageBufferBindingSize",
            "maxBufferSize",
            "maxComputeWorkgroupStorageSize",
            "maxStorageBuffersPerShaderStage",
            "maxComputeInvocationsPerWorkgroup",
        ] {
            if let Some(v) = read(name) {
                Reflect::set(&required, &name.into(), &v.into()).expect("setting a property of a new object");
            }
        }
        let descriptor = GpuDeviceDescriptor::new();
        descriptor.set_required_limits(required.unchecked_ref());
        let device: GpuDevice = adapter
            .request_device_with_descriptor(&descriptor)
            .await
            .map_err(|e| Error::Gpu(format!("the WebGPU device could not be created ({})", js_message(&e))))?;
        let dev_limits = device.limits();
        let read = |name: &str| Reflect::get(&dev_limits, &name.into()).ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let limits = Limits {
            max_storage_binding: read("maxStorageBufferBindingSize") as u64,
            max_buffer: read("maxBufferSize") as u64,
            tiles: super::table::Limits {
                workgroup_bytes: read("maxComputeWorkgroupStorageSize") as u32,
                invocations: read("maxComputeInvocationsPerWorkgroup") as u32,
            },
        };
        let lost = Rc::new(RefCell::new(None));
        let listener = Rc::clone(&lost);
        let lost_promise = device.lost();
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(info) = lost_promise.await {
                let message = info.message();
                let reason = if message.is_empty() { format!("{:?}", info.reason()).to_lowercase() } else { message };
                listener.borrow_mut().get_or_insert(format!("the GPU device was lost ({reason})"));
            }
        });
        let queue = device.queue();
        Ok(Gpu(Rc::new(Inner { device, queue, report, limits, lost })))
    }

    pub fn report(&self) -> &AdapterReport {
        &self.0.report
    }

    pub(crate) fn device(&self) -> &GpuDevice {
        &self.0.device
    }

    pub(crate) fn queue(&self) -> &GpuQueue {
        &self.0.queue
    }

    pub(crate) fn limits(&self) -> Limits {
        self.0.limits
    }

    /// Fails with the loss message once the device is lost.
    pub fn check(&self) -> Result<()> {
        match &*self.0.lost.borrow() {
            Some(message) => Err(Error::Gpu(message.clone())),
            None => Ok(()),
        }
    }

    /// Destroys the device, as a driver reset would: for tests of the recovery path. Every later
    /// call fails with "the GPU device was lost (…)".
    pub fn lose(&self, why: &str) {
        self.0.lost.borrow_mut().get_or_insert(format!("the GPU device was lost ({why})"));
        self.0.device.destroy();
    }

    /// The loss message if the device was lost meanwhile (a failed map is the usual first sign),
    /// else `err`.
    pub(crate) fn lost_or(&self, err: Error) -> Error {
        self.check().err().unwrap_or(err)
    }

    /// Runs `f` (which records WebGPU work) inside out-of-memory, validation and internal error
    /// scopes, and turns what they caught into an error naming `what`.
    pub(crate) async fn scoped<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.check()?;
        let d = &self.0.device;
        d.push_error_scope(GpuErrorFilter::OutOfMemory);
        d.push_error_scope(GpuErrorFilter::Validation);
        d.push_error_scope(GpuErrorFilter::Internal);
        let result = f();
        let mut caught = None;
        for filter in ["internal", "validation", "out-of-memory"] {
            let popped = d.pop_error_scope().await.map_err(|e| self.lost_or(Error::Gpu(js_message(&e))))?;
            if let (Some(err), None) = (popped.into_option(), &caught) {
                let message = err.message();
                caught = Some(match filter {
                    "out-of-memory" => format!("out of GPU memory while {what}"),
                    "validation" => format!("WebGPU validation error while {what}: {message}"),
                    _ => format!("internal GPU error while {what}: {message}"),
                });
            }
        }
        self.check()?;
        match caught {
            Some(message) => Err(Error::Gpu(message)),
            None => result,
        }
    }

    /// A buffer of `bytes` (rounded up to 4, at least 4) with `usage` (`gpu_buffer_usage` bits).
    /// Record inside [`Gpu::scoped`], where running out of memory is caught.
    pub(crate) fn buffer(&self, label: &str, bytes: u64, usage: u32) -> Result<GpuBuffer> {
        let size = bytes.max(4).next_multiple_of(4);
        let storage = usage & gpu_buffer_usage::STORAGE != 0;
        let limit = if storage {
            self.0.limits.max_storage_binding.min(self.0.limits.max_buffer)
        } else {
            self.0.limits.max_buffer
        };
        if size > limit {
            return Err(Error::Gpu(format!(
                "{label}: {:.1} MB, more than this GPU's largest {}buffer ({:.1} MB); a smaller batch size or model needs less",
                size as f64 / 1e6,
                if storage { "storage " } else { "" },
                limit as f64 / 1e6
            )));
        }
        let descriptor = GpuBufferDescriptor::new_with_f64(size as f64, usage);
        descriptor.set_label(label);
        self.0.device.create_buffer(&descriptor).map_err(|e| {
            self.lost_or(Error::Gpu(format!("out of GPU memory while allocating {label} ({})", js_message(&e))))
        })
    }

    /// A storage buffer holding `data` (padded to a multiple of 4 bytes).
    pub(crate) fn storage_with(&self, label: &str, data: &[u8]) -> Result<GpuBuffer> {
        let usage = gpu_buffer_usage::STORAGE | gpu_buffer_usage::COPY_DST | gpu_buffer_usage::COPY_SRC;
        let buf = self.buffer(label, data.len() as u64, usage)?;
        self.write(&buf, 0, data)?;
        Ok(buf)
    }

    /// Writes `data` at `offset`; a length that is not a multiple of 4 is padded with zeros.
    pub(crate) fn write(&self, buf: &GpuBuffer, offset: u64, data: &[u8]) -> Result<()> {
        let r = if data.len().is_multiple_of(4) {
            self.0.queue.write_buffer_with_f64_and_u8_slice(buf, offset as f64, data)
        } else {
            let mut padded = data.to_vec();
            padded.resize(data.len().next_multiple_of(4), 0);
            self.0.queue.write_buffer_with_f64_and_u8_slice(buf, offset as f64, &padded)
        };
        r.map_err(|e| self.lost_or(Error::Gpu(format!("writing to the GPU failed ({})", js_message(&e)))))
    }

    /// Maps `bytes` of a `MAP_READ` buffer (after the work that fills it was submitted) and
    /// copies them out.
    pub(crate) async fn read(&self, buf: &GpuBuffer, bytes: u64) -> Result<Vec<u8>> {
        self.check()?;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        buf.map_async_with_u32_and_f64(gpu_map_mode::READ, 0, bytes as f64).await.map_err(|e| {
            self.lost_or(Error::Gpu(format!("reading results back from the GPU failed ({})", js_message(&e))))
        })?;
        let range: js_sys::ArrayBuffer = buf.get_mapped_range_with_u32_and_f64(0, bytes as f64).map_err(|e| {
            self.lost_or(Error::Gpu(format!("reading results back from the GPU failed ({})", js_message(&e))))
        })?;
        let out = js_sys::Uint8Array::new(&range).to_vec();
        buf.unmap();
        Ok(out)
    }

    /// Compiles WGSL made of `parts` (file name, source), joined by newlines. A compile error
    /// names the file, line and column of its part: "a WebGPU shader failed to compile:
    /// gemm.wgsl:12:5: …".
    pub async fn module(&self, parts: &[(&str, &str)]) -> Result<GpuShaderModule> {
        self.check()?;
        let code = parts.iter().map(|(_, src)| *src).collect::<Vec<_>>().join("\n");
        let d = &self.0.device;
        d.push_error_scope(GpuErrorFilter::Validation);
        let module = d.create_shader_module(&GpuShaderModuleDescriptor::new(&code));
        let info = module.get_compilation_info().await.map_err(|e| self.lost_or(Error::Gpu(js_message(&e))))?;
        let scope = d.pop_error_scope().await.map_err(|e| self.lost_or(Error::Gpu(js_message(&e))))?;
        for message in info.messages().iter() {
            if message.type_() != GpuCompilationMessageType::Error {
                continue;
            }
            let (file, line) = locate(parts, message.line_num() as usize);
            return Err(Error::Gpu(format!(
                "a WebGPU shader failed to compile: {file}:{line}:{}: {}",
                message.line_pos() as usize,
                message.message()
            )));
        }
        if let Some(err) = scope.into_option() {
            return Err(Error::Gpu(format!("a WebGPU shader failed to compile: {}", err.message())));
        }
        Ok(module)
    }
}

/// The part and the line within it of line `line` (from 1) of `parts` joined by newlines.
pub(crate) fn locate<'a>(parts: &[(&'a str, &str)], line: usize) -> (&'a str, usize) {
    let mut first = 1;
    for (name, src) in parts {
        // A part of n newline-terminated lines spans n lines, plus the joining newline.
        let lines = src.matches('\n').count() + 1;
        if line < first + lines {
            return (name, line + 1 - first);
        }
        first += lines;
    }
    (parts.last().map_or("?", |p| p.0), line)
}
