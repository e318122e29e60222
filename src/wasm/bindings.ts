/**
 * The Node loader of the wasm-bindgen output (`wasm/node/reft_wasm.js`, written by
 * `scripts/build-wasm.sh`; the browser entry loads `wasm/web/` itself), typed by hand as {@link WasmBindings}: the exports of
 * crates/reft-wasm that `backend.ts` uses (see raw.ts).
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { ReftError } from '../errors.js'

export type { Freeable, RawFiles, RawBatch, RawForwardOutput, RawStepStats, RawGenerated, RawEncodedPair, RawModel, RawReft, WasmBindings } from './raw.js'
import type { WasmBindings } from './raw.js'

/** Where the Node build of the module is expected (`wasm/node/` at the package root). */
export function wasmBindingsPath(): string {
  return fileURLToPath(new URL('../../wasm/node/reft_wasm.js', import.meta.url))
}

/** Whether `scripts/build-wasm.sh` has produced the Node build. */
export function wasmBuildExists(): boolean {
  return existsSync(wasmBindingsPath())
}

let cached: WasmBindings | undefined

/** Loads (once) and returns the wasm-bindgen module; instantiation compiles the WebAssembly. */
export function wasmBindings(): WasmBindings {
  if (cached !== undefined) return cached
  const path = wasmBindingsPath()
  if (!existsSync(path)) {
    throw new ReftError('ERR_BACKEND', `the reft WebAssembly build is missing (${path}); build it with \`scripts/build-wasm.sh\``)
  }
  try {
    cached = createRequire(import.meta.url)(path) as WasmBindings
  } catch (e) {
    throw new ReftError('ERR_BACKEND', `the reft WebAssembly build could not be loaded: ${(e as Error).message}`, { cause: e })
  }
  return cached
}
