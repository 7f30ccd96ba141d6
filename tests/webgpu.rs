#![cfg(target_arch = "wasm32")]
use wasm_bindgen_test::*;
wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[wasm_bindgen_test]
async fn probe() {
    let r = skywatch::gpu::probe().await;
    panic!("{r:?}");
}
