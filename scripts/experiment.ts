/**
 * One row of docs/EXPERIMENTS.md: train an intervention on a training set (or none: zero-shot)
 * and evaluate it on tasks, on the embedded default model unless `--model` says otherwise.
 *
 * usage: npx tsx scripts/experiment.ts --eval ARC-Easy,ARC-Challenge --eval-limit 200 \
 *          [--train ARC-Easy --train-limit 1000 [--train-shuffle SEED] --kind loreft --layers all --positions f3+l3 \
 *           --rank 4 --tied --epochs 1 --lr 9e-4 --batch-size 8 [--grad-accum 1] [--group-by-length] --warmup-ratio 0.1 --max-length 256] \
 *          [--model PATH] [--seed 42] [--init ADAPTER_DIR] [--out runs/NAME]
 * Writes OUT/result.json (and OUT/adapter/ when trained); prints a Markdown row.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { evaluateTask, loadModel, loadReft, loadTrainingSet, train, type InterventionConfig } from '../src/index.js'

const { values: a } = parseArgs({
  options: {
    model: { type: 'string' }, train: { type: 'string' }, 'train-limit': { type: 'string' },
    eval: { type: 'string' }, 'eval-limit': { type: 'string' }, kind: { type: 'string', default: 'none' }, 'train-shuffle': { type: 'string' },
    layers: { type: 'string', default: 'all' }, positions: { type: 'string', default: 'f3+l3' },
    rank: { type: 'string', default: '4' }, tied: { type: 'boolean', default: true }, epochs: { type: 'string', default: '1' },
    lr: { type: 'string', default: '9e-4' }, 'batch-size': { type: 'string', default: '8' }, 'grad-accum': { type: 'string', default: '1' }, 'group-by-length': { type: 'boolean', default: false }, 'warmup-ratio': { type: 'string', default: '0' },
    'max-length': { type: 'string', default: '256' }, seed: { type: 'string', default: '42' }, out: { type: 'string' }, init: { type: 'string' },
    'eval-batch-size': { type: 'string', default: '8' },
  },
})
const num = (k: keyof typeof a) => Number(a[k] as string)
const model = await loadModel(a.model)
const info = model.info()
const t0 = Date.now()
let target: Parameters<typeof evaluateTask>[0] = model
let trainInfo: Record<string, unknown> = { kind: 'none (zero-shot)' }
if (a.kind !== 'none') {
  if (a.train === undefined) throw new Error('--train is required with --kind')
  const layers = a.layers === 'all' ? 'all' : a.layers!.split(',').map(Number)
  const cfg = { kind: a.kind, layers, positions: a.positions!, rank: num('rank'), tied: a.tied } as InterventionConfig
  // --init DIR starts from a saved adapter (reft's or pyreft's, e.g. pyreft's own initialisation)
  // instead of a fresh one; the flags must describe it.
  const reft = a.init === undefined ? model.withInterventions(cfg, { seed: num('seed') }) : await loadReft(a.init, model, { positions: a.positions!, tied: a.tied })
  const { examples } = loadTrainingSet(a.train, {
    limit: a['train-limit'] === undefined ? undefined : num('train-limit'),
    shuffleSeed: a['train-shuffle'] === undefined ? undefined : num('train-shuffle'),
  })
  const items = reft.dataset(examples, { maxLength: num('max-length') })
  const history = await train(reft, items, {
    epochs: num('epochs'), batchSize: num('batch-size'), gradientAccumulation: num('grad-accum'), groupByLength: a['group-by-length'], lr: num('lr'), warmupRatio: num('warmup-ratio'), seed: num('seed'),
    onProgress: (e) => { if (e.step % 10 === 0 || e.step === e.totalSteps) console.error(`step ${e.step}/${e.totalSteps} loss ${e.loss.toFixed(4)}`) },
  })
  const p = reft.trainableParameters()
  trainInfo = { ...cfg, init: a.init, train: a.train, trainShuffle: a['train-shuffle'], trainExamples: items.length, epochs: num('epochs'), lr: num('lr'), batchSize: num('batch-size'), gradientAccumulation: num('grad-accum'), groupByLength: a['group-by-length'],
    steps: history.steps.length, firstLoss: history.steps[0]?.loss, lastLoss: history.steps.at(-1)?.loss,
    trainSeconds: (Date.now() - t0) / 1000, params: p.interventionParams, paramsPercent: p.percent }
  if (a.out !== undefined) await reft.save(join(a.out, 'adapter'))
  target = reft
}
const results = []
for (const task of (a.eval ?? '').split(',').filter((s) => s !== '')) {
  const t1 = Date.now()
  const r = await evaluateTask(target, task, { limit: a['eval-limit'] === undefined ? undefined : num('eval-limit'), batchSize: num('eval-batch-size') })
  // How often each prediction and each gold answer occurs: shows an adapter that answers one label.
  const tally = (xs: string[]) => Object.fromEntries([...new Set(xs)].map((x) => [x, xs.filter((y) => y === x).length]).sort((p, q) => Number(q[1]) - Number(p[1])).slice(0, 8))
  results.push({
    task: r.task, n: r.n, accuracy: r.accuracy, ci95: r.ci95, seconds: (Date.now() - t1) / 1000,
    predictions: tally(r.examples.map((e) => e.prediction)), gold: tally(r.examples.map((e) => e.gold)),
  })
  if (a.out !== undefined) {
    mkdirSync(a.out, { recursive: true })
    writeFileSync(join(a.out, `generations-${r.task}.jsonl`), r.examples.map((e) => JSON.stringify(e)).join('\n') + '\n')
  }
  console.error(`${r.task}: ${(100 * r.accuracy).toFixed(1)}% (n=${r.n}, 95% CI ${(100 * r.ci95[0]).toFixed(1)}–${(100 * r.ci95[1]).toFixed(1)})`)
}
const out = { model: a.model ?? 'SmolLM2-135M-Instruct (Q4_1 GGUF, f32)', modelParams: info.numParameters, train: trainInfo, results, argv: process.argv.slice(2).join(' ') }
if (a.out !== undefined) {
  mkdirSync(a.out, { recursive: true })
  writeFileSync(join(a.out, 'result.json'), JSON.stringify(out, null, 1))
}
console.log(JSON.stringify(out))
for (const r of results) console.log(`| ${a.kind} | ${r.task} | ${r.n} | ${(100 * r.accuracy).toFixed(1)} | ${(100 * r.ci95[0]).toFixed(1)}–${(100 * r.ci95[1]).toFixed(1)} |`)
