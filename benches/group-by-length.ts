/**
 * What `groupByLength` saves on a real training set: the pad tokens of one epoch's batch plan
 * with and without grouping, and (with `--time`) the wall-clock time of one training epoch over
 * the same examples with each plan, back to back in one process on the same model, adapter
 * config and seed. Prints JSON lines and a Markdown table.
 *
 * usage: npx tsx benches/group-by-length.ts [--train math_1k] [--limit 160] [--batch-size 8]
 *          [--max-length 512] [--layers 15] [--positions l1] [--time]
 */
import { parseArgs } from 'node:util'
import { loadModel, loadTrainingSet, train, type InterventionConfig } from '../src/index.js'
import { planEpoch } from '../src/trainer.js'
import { paddingTokens } from '../src/length-groups.js'

const { values: a } = parseArgs({
  options: {
    train: { type: 'string', default: 'math_1k' }, limit: { type: 'string', default: '160' }, 'batch-size': { type: 'string', default: '8' },
    'max-length': { type: 'string', default: '512' }, layers: { type: 'string', default: '15' }, positions: { type: 'string', default: 'l1' },
    time: { type: 'boolean', default: false }, seed: { type: 'string', default: '42' },
  },
})
const batchSize = Number(a['batch-size'])
const seed = Number(a.seed)
const model = await loadModel()
const cfg: InterventionConfig = { kind: 'loreft', layers: a.layers === 'all' ? 'all' : a.layers!.split(',').map(Number), positions: a.positions!, rank: 4 }
const probe = model.withInterventions(cfg)
const { examples } = loadTrainingSet(a.train!, { limit: Number(a.limit), shuffleSeed: seed })
const items = probe.dataset(examples, { maxLength: Number(a['max-length']) })
probe.dispose()
const lengths = items.map((i) => i.inputIds.length)
const real = lengths.reduce((s, l) => s + l, 0)

const rows: Record<string, number | string>[] = []
for (const grouped of [false, true]) {
  const plan = planEpoch(items.length, batchSize, 1, seed, grouped ? lengths : undefined)
  const pad = paddingTokens(plan.flat(1), lengths)
  const row: Record<string, number | string> = { plan: grouped ? 'grouped by length' : 'shuffled (pyreft)', realTokens: real, padTokens: pad, padShare: pad / (pad + real) }
  if (a.time === true) {
    // The trainer runs this same plan (same seed, sizes and lengths) over the same examples.
    const reft = model.withInterventions(cfg, { seed })
    const t0 = performance.now()
    const h = await train(reft, items, { epochs: 1, batchSize, seed, lr: 1e-3, groupByLength: grouped })
    row.epochSeconds = (performance.now() - t0) / 1000
    row.steps = h.steps.length
    row.meanLoss = h.steps.reduce((n, st) => n + st.loss, 0) / h.steps.length
    reft.dispose()
  }
  rows.push(row)
  console.log(JSON.stringify(row))
}
console.log(`\n${a.train}, first ${items.length} examples (seeded shuffle ${seed}), batch ${batchSize}, max length ${a['max-length']}\n`)
const timed = a.time === true
console.log('| plan | pad tokens per epoch | pad share |' + (timed ? ' epoch (s) |' : ''))
console.log('|---|---|---|' + (timed ? '---|' : ''))
for (const r of rows) {
  console.log(`| ${r.plan} | ${r.padTokens} | ${(100 * Number(r.padShare)).toFixed(1)}% |` + (timed ? ` ${Number(r.epochSeconds).toFixed(1)} |` : ''))
}
