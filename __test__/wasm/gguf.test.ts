/**
 * The embedded default model (SmolLM2-135M-Instruct, Q4_1 GGUF, fetched by `npm run
 * fetch-model`) loaded from bytes in the WebAssembly build: the tokenizer rebuilt from GGUF
 * metadata and the dequantized weights give the native addon's tokens and logits. Skipped when
 * the model or the build is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { native } from '../../src/native.js'
import type { NativeModel } from '../../src/native-api.js'
import { backends, maxAbsDiff, wasmBuilt, type Backends } from './helpers.js'

const gguf = native().defaultModelPath()
const present = existsSync(gguf)
if (!present) console.warn(`[wasm] skipping the GGUF suite: ${gguf} is missing (npm run fetch-model)`)

describe.skipIf(!wasmBuilt() || !present)('wasm vs native (SmolLM2-135M GGUF)', () => {
  let b: Backends
  let nat: NativeModel
  let wasm: NativeModel

  beforeAll(async () => {
    b = await backends()
    expect(b.wasm.defaultModelPath()).toBe(gguf)
    nat = await b.native.loadModel(gguf)
    wasm = await b.wasm.loadModel(gguf)
  })
  afterAll(() => {
    nat?.dispose()
    wasm?.dispose()
  })

  it('tokenizes and runs a LoReFT forward pass like the native build', async () => {
    expect(wasm.info()).toEqual(nat.info())
    const text = '<|im_start|>user\nWhat is 12 + 30? Answer: 42, naïvely.<|im_end|>\n'
    const ids = nat.encode(text, false)
    expect([...wasm.encode(text, false)]).toEqual([...ids])
    expect(wasm.decode(ids, false)).toBe(text)
    const specs = [{ kind: 'loreft', layer: 15, component: 'block_output', rank: 4 }]
    const rn = b.native.createReft(nat, specs, 1)
    const rw = b.wasm.createReft(wasm, specs, 1)
    const batch = { inputIds: ids, batchSize: 1, seqLen: ids.length, positions: new Int32Array([ids.length - 1]), numPositions: 1, labels: new Int32Array(ids) }
    const [on, ow] = [await rn.forward(batch, true), await rw.forward(batch, true)]
    // 30 layers of f32 sums in a different order (SIMD128 vs AVX kernels): looser than the tiny model.
    expect(maxAbsDiff(ow.logits, on.logits)).toBeLessThan(5e-4)
    expect(Math.abs(ow.loss! - on.loss!)).toBeLessThan(1e-4)
    rn.dispose()
    rw.dispose()
  })
})
