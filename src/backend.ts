/**
 * Which backend runs a model in Node: the native addon (the default) or the WebAssembly build of
 * the same core. `'auto'` takes the native addon and falls back to WebAssembly when no native
 * binary loads on this platform (with one warning on stderr); `'native'` and `'wasm'` insist.
 * `REFT_BACKEND` sets the default for a whole process (`auto`, `native` or `wasm`). `device: 'cuda'`
 * selects the CUDA build of the addon, a separate binary (src/native.ts `nativeCuda`).
 */
import { invalidConfig, ReftError, toReftError } from './errors.js'
import { native, nativeCuda } from './native.js'
import type { Backend, NativeModule } from './native-api.js'
import { wasmBuildExists } from './wasm/bindings.js'
import { wasmBackend } from './wasm/backend.js'

/** How {@link selectBackend} chooses. @defaultValue `$REFT_BACKEND`, else `'auto'` */
export type BackendChoice = 'auto' | 'native' | 'wasm'

/** A Node backend: the addon's module surface, tagged with its kind. */
export type NodeBackend = Omit<NativeModule, 'loadReft'> & Backend & Pick<NativeModule, 'loadReft'>

const choices: readonly BackendChoice[] = ['auto', 'native', 'wasm']
const tagged = new Map<NativeModule, NodeBackend>()
let warned = false

function nativeBackend(load: () => NativeModule = native): NodeBackend {
  const m = load()
  let nativeTagged = tagged.get(m)
  if (nativeTagged === undefined) {
    nativeTagged = {
      kind: 'native',
      loadModel: (path, options) => m.loadModel(path, options),
      createReft: (model, specs, seed, head) => m.createReft(model, specs, seed, head),
      loadReft: (model, dir, withOptimizer) => m.loadReft(model, dir, withOptimizer),
      defaultModelPath: () => m.defaultModelPath(),
      createTinyModel: (dir, seed) => m.createTinyModel(dir, seed),
      createTinyEncoder: (dir, seed, numLabels) => m.createTinyEncoder(dir, seed, numLabels),
      minilmPath: () => m.minilmPath(),
    }
    tagged.set(m, nativeTagged)
  }
  return nativeTagged
}

function defaultChoice(): BackendChoice {
  const env = process.env.REFT_BACKEND
  if (env === undefined || env === '') return 'auto'
  if (!(choices as readonly string[]).includes(env)) throw invalidConfig('REFT_BACKEND', `expected one of ${choices.join(', ')}, got ${JSON.stringify(env)}`)
  return env as BackendChoice
}

/**
 * The backend for `choice` and `device`; throws ERR_BACKEND when it cannot load (and, for
 * `'auto'`, neither can the other). `device: 'cuda'` takes the CUDA build of the addon (no
 * fallback: a CUDA run that silently ran on the CPU would be wrong in the way that matters).
 */
export function selectBackend(choice: BackendChoice = defaultChoice(), device: 'cpu' | 'cuda' = 'cpu'): NodeBackend {
  if (!choices.includes(choice)) throw invalidConfig('backend', `expected one of ${choices.join(', ')}, got ${JSON.stringify(choice)}`)
  if (device === 'cuda') {
    if (choice === 'wasm') throw invalidConfig('device', "'cuda' needs the native addon; the WebAssembly backend runs on the CPU only")
    return nativeBackend(nativeCuda)
  }
  if (choice === 'wasm') return wasmBackend()
  if (choice === 'native') return nativeBackend()
  try {
    return nativeBackend()
  } catch (e) {
    const err = toReftError(e)
    if (!wasmBuildExists()) {
      throw new ReftError('ERR_BACKEND', `${err.message}; no WebAssembly build to fall back to either (scripts/build-wasm.sh builds one)`, { cause: e })
    }
    if (!warned) {
      warned = true
      process.stderr.write(`reft: ${err.message}\nreft: using the WebAssembly backend instead (slower; set REFT_BACKEND=wasm to silence this)\n`)
    }
    return wasmBackend()
  }
}
