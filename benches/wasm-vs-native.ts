/**
 * WebAssembly (SIMD128, one thread) vs the native addon in the same Node process: a no-grad
 * forward with loss, one LoReFT training step (forward + backward + clip + AdamW) and greedy
 * decoding with the KV cache (batch 1, an 8-token prompt, no stop token), median of timed
 * repetitions after warm-ups, on the tiny random Llama and, when it is cached, on
 * SmolLM2-135M-Instruct (the layer-15 case of BENCHMARKS.md). Both backends run the same batch
 * from the same initial adapter. Prints JSON lines, then a Markdown table.
 *
 * Usage: `scripts/build-wasm.sh && npm run build:native && npx tsx benches/wasm-vs-native.ts`
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { native } from '../src/native.js'
import type { NativeBatch, NativeInterventionSpec, NativeModule } from '../src/native-api.js'
import { loadWasmBackend } from '../src/wasm/index.js'

interface Case {
  name: string
  path: string
  spec: NativeInterventionSpec
  batchSize: number
  seqLen: number
  vocab: number
  reps: number
  newTokens: number
}

interface Row {
  case: string
  backend: 'native' | 'wasm'
  forward_ms: number
  train_step_ms: number
  decode_tokens_per_s: number
}

/** Deterministic ids, labels on the second half of each row, the intervention at its middle. */
function batchFor(c: Case): NativeBatch {
  const n = c.batchSize * c.seqLen
  const ids = Uint32Array.from({ length: n }, (_, i) => (i * 7919 + 13) % c.vocab)
  const labels = Int32Array.from(ids, (x, i) => (i % c.seqLen >= c.seqLen / 2 ? x : -100))
  const positions = Int32Array.from({ length: c.batchSize }, () => c.seqLen / 2 - 1)
  return { inputIds: ids, batchSize: c.batchSize, seqLen: c.seqLen, labels, positions, numPositions: 1 }
}

async function medianMs(reps: number, warmup: number, f: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < warmup; i++) await f()
  const times: number[] = []
  for (let i = 0; i < reps; i++) {
    const t = performance.now()
    await f()
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]!
}

async function run(api: NativeModule, backend: Row['backend'], c: Case): Promise<Row> {
  const model = await api.loadModel(c.path)
  const reft = api.createReft(model, [c.spec], 1)
  const batch = batchFor(c)
  const forward_ms = await medianMs(c.reps, 2, () => reft.forward(batch, false))
  const train_step_ms = await medianMs(c.reps, 2, () => reft.trainStep([batch], { lr: 1e-3 }))
  const prompt: NativeBatch = { inputIds: batch.inputIds.slice(0, 8), batchSize: 1, seqLen: 8, positions: Int32Array.of(7), numPositions: 1 }
  let generated = 0
  const decode_ms = await medianMs(Math.min(c.reps, 5), 1, async () => {
    const out = await reft.generate(prompt, { maxNewTokens: c.newTokens, greedy: true, stopTokenIds: [] })
    generated = out[0]!.length
  })
  if (generated !== c.newTokens) throw new Error(`${backend}: generated ${generated} tokens, expected ${c.newTokens}`)
  reft.dispose()
  model.dispose()
  return { case: c.name, backend, forward_ms, train_step_ms, decode_tokens_per_s: (1000 * generated) / decode_ms }
}

const tmp = mkdtempSync(join(tmpdir(), 'reft-bench-'))
const wasm = await loadWasmBackend()
const nat = native()
nat.createTinyModel(join(tmp, 'tiny'), 0)
const cases: Case[] = [
  { name: 'tiny Llama (hidden 32, 2 layers), 4×32 tokens, LoReFT r4 at layer 1', path: join(tmp, 'tiny'), spec: { kind: 'loreft', layer: 1, component: 'block_output', rank: 4 }, batchSize: 4, seqLen: 32, vocab: 259, reps: 50, newTokens: 64 },
]
const smollm2 = nat.defaultModelPath()
if (existsSync(smollm2)) {
  cases.push({ name: 'SmolLM2-135M (f32 from Q4_1 GGUF), 4×64 tokens, LoReFT r4 at layer 15', path: smollm2, spec: { kind: 'loreft', layer: 15, component: 'block_output', rank: 4 }, batchSize: 4, seqLen: 64, vocab: 49152, reps: 5, newTokens: 32 })
}
const rows: Row[] = []
for (const c of cases) {
  for (const [api, name] of [[nat, 'native'], [wasm, 'wasm']] as const) {
    const row = await run(api, name, c)
    rows.push(row)
    console.log(JSON.stringify(row))
  }
}
rmSync(tmp, { recursive: true, force: true })
console.log('\n| case | measure | native (ms) | wasm (ms) | wasm / native |\n|---|---|---|---|---|')
for (const c of cases) {
  const [n, w] = [rows.find((r) => r.case === c.name && r.backend === 'native')!, rows.find((r) => r.case === c.name && r.backend === 'wasm')!]
  for (const [label, key] of [['forward + loss, no grad', 'forward_ms'], ['train step', 'train_step_ms']] as const) {
    console.log(`| ${c.name} | ${label} | ${n[key].toFixed(2)} | ${w[key].toFixed(2)} | ${(w[key] / n[key]).toFixed(1)}× |`)
  }
  const [nd, wd] = [n.decode_tokens_per_s, w.decode_tokens_per_s]
  // Time per token, so the last column reads like the others: wasm time / native time.
  console.log(`| ${c.name} | greedy decode, batch 1 | ${nd.toFixed(1)} tok/s | ${wd.toFixed(1)} tok/s | ${(nd / wd).toFixed(1)}× |`)
}
