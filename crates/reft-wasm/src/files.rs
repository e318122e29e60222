//! `WasmFiles`: in-memory files (name → bytes) crossing the boundary — the files of a model to
//! load, or of an adapter checkpoint saved or to load. Wraps reft-core's [`FileMap`].

use reft_core::FileMap;
use wasm_bindgen::prelude::*;

/// File name → bytes. Bytes are copied into WebAssembly memory by `add` and out by `get`.
#[wasm_bindgen]
#[derive(Default)]
pub struct WasmFiles {
    pub(crate) inner: FileMap,
}

#[wasm_bindgen]
impl WasmFiles {
    #[wasm_bindgen(constructor)]
    pub fn new() -> WasmFiles {
        WasmFiles::default()
    }

    /// Adds (or replaces) a file.
    pub fn add(&mut self, name: String, bytes: Vec<u8>) {
        self.inner.insert(name, bytes);
    }

    /// File names in order.
    pub fn names(&self) -> Vec<String> {
        self.inner.names().map(String::from).collect()
    }

    /// A copy of a file's bytes, or `undefined`.
    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.inner.get(name).map(|b| b.to_vec())
    }

    /// Removes a file and returns its bytes (moves them out without keeping a copy).
    pub fn take(&mut self, name: &str) -> Option<Vec<u8>> {
        self.inner.remove(name)
    }

    #[wasm_bindgen(getter)]
    pub fn size(&self) -> usize {
        self.inner.len()
    }
}

impl From<FileMap> for WasmFiles {
    fn from(inner: FileMap) -> Self {
        Self { inner }
    }
}
