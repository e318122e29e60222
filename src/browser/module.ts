/**
 * Loads the browser build of the core (`wasm/web/`, wasm-bindgen `--target web`, written by
 * `scripts/build-wasm.sh`) once, and wraps it as the in-memory WebAssembly backend. Bundlers
 * (Vite, esbuild, webpack) follow the literal import below and emit `reft_wasm_bg.wasm` as an
 * asset; a page without a bundler serves `wasm/web/` beside `dist/` (the same relative path).
 */
import { ReftError } from '../errors.js'
import { createCoreBackend, type WasmCoreBackend } from '../wasm/core.js'
import type { WasmBindings } from '../wasm/raw.js'

/**
 * Where the WebAssembly binary comes from, as wasm-bindgen's `init` takes it: its bytes, a URL to
 * fetch, a `Response`, or an already compiled `WebAssembly.Module` (the `object` case; that type
 * is not in the compile's libs).
 */
export type WasmInput = ArrayBuffer | ArrayBufferView | URL | string | Response | Promise<Response> | object

/** Options of {@link initWasm}. */
export interface InitWasmOptions {
  /** The `.wasm` bytes, a compiled module, or where to fetch it. @defaultValue `reft_wasm_bg.wasm` next to the module */
  wasm?: WasmInput
}

interface WebModule extends WasmBindings {
  default(input?: { module_or_path?: WasmInput }): Promise<unknown>
}

let ready: Promise<WasmCoreBackend> | undefined

async function instantiate(options: InitWasmOptions): Promise<WasmCoreBackend> {
  let mod: WebModule
  try {
    // @ts-ignore -- a build output (scripts/build-wasm.sh), typed by hand as WebModule; absent until built
    mod = (await import('../../wasm/web/reft_wasm.js')) as WebModule
  } catch (e) {
    throw new ReftError('ERR_BACKEND', `the reft WebAssembly module could not be imported (build it with scripts/build-wasm.sh): ${(e as Error).message}`, { cause: e })
  }
  try {
    await mod.default(options.wasm === undefined ? undefined : { module_or_path: options.wasm })
  } catch (e) {
    throw new ReftError('ERR_BACKEND', `the reft WebAssembly binary could not be instantiated: ${(e as Error).message}`, { cause: e })
  }
  return createCoreBackend(mod)
}

/**
 * Compiles and instantiates the WebAssembly module (once per page or worker; later calls return
 * the same backend and ignore their options). `loadModel` calls it with no options; call it first
 * to give the binary yourself. Rejects with ERR_BACKEND when the module is missing or invalid.
 */
export function initWasm(options: InitWasmOptions = {}): Promise<WasmCoreBackend> {
  ready ??= instantiate(options).catch((e: unknown) => {
    ready = undefined
    throw e
  })
  return ready
}
