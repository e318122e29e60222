/**
 * The WebAssembly backend (issue 7, first step): reft-core compiled to wasm32 with SIMD128 and
 * the native addon's contract over it. Not wired into the main API yet; see docs/WASM.md.
 */
export { loadWasmBackend, type WasmBackend, type WasmReftHandle } from './backend.js'
export { wasmBuildExists, wasmBindingsPath } from './bindings.js'
export type { FileRecord } from './node-files.js'
