/**
 * The instruction-following row of docs/EXPERIMENTS.md: a LoReFT adapter trained on UltraFeedback
 * rows 0..N (the paper's instruct shape: layers 3, 9, 18, 24, positions f5+l5 untied, rank 4)
 * on SmolLM2-135M-Instruct, saved to OUT. Prompts longer than the length limit are skipped
 * (as the README's snippet does), not truncated. Evaluate it afterwards with
 * `reft instruct-eval --adapter OUT ...` (held-out rows 900–999 are never trained on).
 *
 *   npx tsx benches/instruct-run.ts --rows 300 --max-length 512 --epochs 1 --lr 2e-3 --out runs/uf-loreft
 */
import { parseArgs } from 'node:util'
import { alpacaPrompt, loadModel, loadUltraFeedbackSplit, train } from '../src/index.js'

const { values: a } = parseArgs({
  options: {
    rows: { type: 'string', default: '300' },
    'max-length': { type: 'string', default: '512' },
    epochs: { type: 'string', default: '1' },
    lr: { type: 'string', default: '2e-3' },
    'grad-accum': { type: 'string', default: '4' },
    recompute: { type: 'boolean', default: false },
    out: { type: 'string', default: 'runs/uf-loreft' },
  },
})
const maxLength = Number(a['max-length'])
const model = await loadModel()
const reft = model.withInterventions({ kind: 'loreft', layers: [3, 9, 18, 24], positions: 'f5+l5', tied: false, rank: 4 })
const { train: rows } = loadUltraFeedbackSplit()
const examples = rows
  .slice(0, Number(a.rows))
  .map((r) => ({ prompt: r.instruction, output: r.output }))
  .filter((e) => model.encode(alpacaPrompt(e.prompt)).length < maxLength)
console.error(`training on ${examples.length} of the first ${a.rows} rows (prompts under ${maxLength} tokens)`)
const items = reft.dataset(examples, { format: { kind: 'alpaca' }, maxLength })
const t0 = Date.now()
const history = await train(reft, items, {
  epochs: Number(a.epochs),
  lr: Number(a.lr),
  batchSize: 1,
  gradientAccumulation: Number(a['grad-accum']),
  groupByLength: true,
  recompute: a.recompute,
  onProgress: (e) => {
    if (e.step % 5 === 0) console.error(`step ${e.step}/${e.totalSteps} loss ${e.loss.toFixed(4)}`)
  },
})
await reft.save(a.out!)
const seconds = (Date.now() - t0) / 1000
const losses = history.steps.map((s) => s.loss)
const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / Math.max(1, xs.length)
console.log(JSON.stringify({
  out: a.out, examples: examples.length, steps: history.steps.length, seconds,
  firstTenLoss: mean(losses.slice(0, 10)), lastTenLoss: mean(losses.slice(-10)),
  trainable: reft.trainableParameters(),
}))
