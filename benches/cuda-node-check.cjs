// The Node addon's CUDA build against its CPU build, on the GPU machine (which has no npm
// install): both .node files are required directly, no package code. Tiny random Llama from the
// CPU addon; LoReFT on both layers; compares logits and loss of a forward, the losses of 5 AdamW
// steps, greedy generation, a bf16 forward (against f32 within bf16 tolerance), and the error for
// a bad device. Prints one JSON object; exits 1 when a check fails.
//   CPU_ADDON=native/reft.linux-x64-gnu.node CUDA_ADDON=native/reft.linux-x64-gnu.cuda.node node benches/cuda-node-check.cjs
'use strict'
const { mkdtempSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join, resolve } = require('node:path')

async function main() {
  const cpu = require(resolve(process.env.CPU_ADDON))
  const cuda = require(resolve(process.env.CUDA_ADDON))
  const dir = join(mkdtempSync(join(tmpdir(), 'reft-cuda-node-')), 'tiny')
  cpu.createTinyModel(dir, 0)
  const specs = [0, 1].map((layer) => ({ kind: 'loreft', layer, component: 'block_output', rank: 4 }))
  const B = 4, T = 24
  const ids = Uint32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % 259)
  const labels = Int32Array.from(ids, (x, i) => (i % T >= T / 2 ? x : -100))
  const positions = Int32Array.from({ length: 2 * B }, () => T / 2 - 1)
  const batch = { inputIds: ids, batchSize: B, seqLen: T, labels, positions, numPositions: 1 }
  const out = { checks: {} }
  const check = (name, ok, detail) => { out.checks[name] = { ok, ...detail } }

  const mc = await cpu.loadModel(dir)
  // DEVICE=cpu dry-runs this script with two CPU builds (where no GPU is lent).
  const device = process.env.DEVICE ?? 'cuda'
  const mg = await cuda.loadModel(dir, { device })
  const rc = cpu.createReft(mc, specs, 1)
  const rg = cuda.createReft(mg, specs, 1)
  const fc = await rc.forward(batch, true)
  const fg = await rg.forward(batch, true)
  let maxDiff = 0
  for (let i = 0; i < fc.logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(fc.logits[i] - fg.logits[i]))
  check('forward_f32', maxDiff < 1e-4 && Math.abs(fc.loss - fg.loss) < 1e-5, { maxAbsLogitDiff: maxDiff, lossCpu: fc.loss, lossCuda: fg.loss })

  const lc = [], lg = []
  for (let s = 0; s < 5; s++) {
    lc.push((await rc.trainStep([batch], { lr: 1e-2 })).loss)
    lg.push((await rg.trainStep([batch], { lr: 1e-2 })).loss)
  }
  const stepDiff = Math.max(...lc.map((l, i) => Math.abs(l - lg[i])))
  check('train_5_steps', stepDiff < 1e-4, { lossesCpu: lc, lossesCuda: lg, maxDiff: stepDiff })

  const prompt = { inputIds: ids.slice(0, 8), batchSize: 1, seqLen: 8, positions: Int32Array.of(7, 7), numPositions: 1 }
  const opts = { maxNewTokens: 12, greedy: true, stopTokenIds: [] }
  const gc = Array.from((await rc.generate(prompt, opts))[0])
  const gg = Array.from((await rg.generate(prompt, opts))[0])
  check('generate_greedy', JSON.stringify(gc) === JSON.stringify(gg), { cpu: gc, cuda: gg })

  const mb = await cuda.loadModel(dir, { device, dtype: 'bf16' })
  const rb = cuda.createReft(mb, specs, 1)
  const fb = await rb.forward(batch, true)
  const fresh = await cpu.createReft(mc, specs, 1).forward(batch, true)
  let bfDiff = 0, scale = 0
  for (let i = 0; i < fresh.logits.length; i++) {
    bfDiff = Math.max(bfDiff, Math.abs(fresh.logits[i] - fb.logits[i]))
    scale = Math.max(scale, Math.abs(fresh.logits[i]))
  }
  // bf16 keeps 8 bits of mantissa: a relative error of a few 2^-8 through 2 layers is expected.
  check('forward_bf16', bfDiff <= 0.05 * Math.max(1, scale), { maxAbsLogitDiff: bfDiff, logitScale: scale, lossF32: fresh.loss, lossBf16: fb.loss })

  let badDevice = 'no error'
  try { await cpu.loadModel(dir, { device: 'cuda' }) } catch (e) { badDevice = `${e.code}: ${e.message}` }
  check('cpu_addon_refuses_cuda', badDevice.includes('ERR_BACKEND'), { error: badDevice })

  out.ok = Object.values(out.checks).every((c) => c.ok)
  console.log(JSON.stringify(out, null, 1))
  process.exit(out.ok ? 0 : 1)
}
main().catch((e) => { console.error(e); process.exit(1) })
