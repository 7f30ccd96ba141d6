//! Seconds on a monotonic clock, natively and in the browser, for epoch times and benchmarks.
//!
//! Natively this is `std::time::Instant`. In wasm32-unknown-unknown `Instant::now()` panics (the
//! target has no clock of its own), so there the clock is the page's Performance API through
//! web-sys: `performance.now()`, in milliseconds since the global scope started, with
//! microsecond resolution on a cross-origin isolated page and 0.1 ms otherwise (`Date.now()` has
//! only 1 ms). It is reached from the global scope, which is a `Window` on a page and a
//! `WorkerGlobalScope` in the training Worker and the rayon pool's workers.

/// A running timer.
pub struct Stopwatch(f64);

impl Stopwatch {
    pub fn start() -> Self {
        Stopwatch(now_seconds())
    }

    /// Seconds since [`Stopwatch::start`].
    pub fn seconds(&self) -> f64 {
        now_seconds() - self.0
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn now_seconds() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_secs_f64()
}

#[cfg(target_arch = "wasm32")]
fn now_seconds() -> f64 {
    use wasm_bindgen::JsCast;
    use web_sys::{Performance, Window, WorkerGlobalScope};
    thread_local! {
        // Looked up once per thread (each worker has its own global scope).
        static PERFORMANCE: Option<Performance> = {
            let global = js_sys::global();
            match global.dyn_ref::<WorkerGlobalScope>() {
                Some(worker) => worker.performance(),
                None => global.dyn_ref::<Window>().and_then(Window::performance),
            }
        };
    }
    // Without a Performance API (no browser global scope) time does not advance: epochs then
    // report 0 s rather than failing.
    PERFORMANCE.with(|p| p.as_ref().map_or(0.0, |p| p.now() / 1000.0))
}
