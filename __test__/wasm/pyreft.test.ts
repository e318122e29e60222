/**
 * pyreft adapters through the WebAssembly build: a directory saved by pyreft
 * (`tests/fixtures/pyreft/saved`, LoReFT on layers 0 and 2 of a tiny Llama) loads from its files in
 * memory and from the directory (read in Node), and gives the native addon's logits; a folder
 * with neither format is refused with ERR_IO.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { NativeBatch, NativeModel } from '../../src/native-api.js'
import type { FileRecord } from '../../src/wasm/raw.js'
import { backends, maxAbsDiff, tempRoot, wasmBuilt, type Backends } from './helpers.js'

const fixtures = join(import.meta.dirname, '../../crates/reft-core/tests/fixtures/pyreft')

function readDir(dir: string): FileRecord {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]))
}

/** Two rows over the fixture's 128-token vocabulary; one position per row for each of the two interventions. */
function batch(): NativeBatch {
  const rows = [[1, 17, 42, 99, 5, 63, 8, 21], [1, 70, 3, 44, 12, 9, 0, 0]]
  const mask = rows.map((r) => r.map((_, i) => (i < (r === rows[1] ? 6 : 8) ? 1 : 0)))
  return {
    inputIds: new Uint32Array(rows.flat()),
    batchSize: 2,
    seqLen: 8,
    attentionMask: new Uint8Array(mask.flat()),
    positions: new Int32Array([3, 2, 3, 2]),
    numPositions: 1,
    labels: new Int32Array(rows.flatMap((r, b) => r.map((t, i) => (i >= 4 && mask[b]![i] ? t : -100)))),
  }
}

describe.skipIf(!wasmBuilt())('wasm pyreft adapters', () => {
  let b: Backends
  let nat: NativeModel
  let wasm: NativeModel
  const tmp = tempRoot()

  beforeAll(async () => {
    b = await backends()
    nat = await b.native.loadModel(join(fixtures, 'tiny-llama'))
    wasm = b.wasm.loadModelFromFiles(readDir(join(fixtures, 'tiny-llama')))
  })
  afterAll(() => {
    nat?.dispose()
    wasm?.dispose()
    tmp.cleanup()
  })

  for (const saved of ['loreft', 'loreft_oldkeys', 'nodireft']) {
    it(`${saved}: loads from files and from its directory with the native logits`, async () => {
      const dir = join(fixtures, 'saved', saved)
      const rn = await b.native.loadReft(nat, dir, false)
      const fromFiles = b.wasm.loadReftFromFiles(wasm, readDir(dir), false)
      const fromDir = await b.wasm.loadReft(wasm, dir, false)
      const want = (await rn.forward(batch(), true)).logits
      // The adapter moves the logits, so equal logits mean its parameters were read.
      const base = b.native.createReft(nat, [], 0)
      expect(maxAbsDiff((await base.forward({ ...batch(), positions: undefined, numPositions: 0 }, true)).logits, want)).toBeGreaterThan(1e-3)
      base.dispose()
      expect(maxAbsDiff((await fromFiles.forward(batch(), true)).logits, want)).toBeLessThan(1e-5)
      expect(maxAbsDiff((await fromDir.forward(batch(), true)).logits, want)).toBeLessThan(1e-5)
      for (const r of [rn, fromFiles, fromDir]) r.dispose()
    })
  }

  it('a folder with neither a reft checkpoint nor a pyreft adapter is ERR_IO', async () => {
    await expect(b.wasm.loadReft(wasm, tmp.root, false)).rejects.toMatchObject({ code: 'ERR_IO' })
  })
})
