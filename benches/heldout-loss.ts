/**
 * Held-out loss of trained adapters on identical tokens: the mean per-token NLL of training-set
 * examples that none of the adapters trained on, under each adapter and under the base model,
 * with a paired sign test between every two. Adapters may be reft's own checkpoints or
 * pyreft-saved directories (`benches/pyreft_commonsense.py` writes OUT/pyreft_adapter), so both
 * libraries' adapters are scored by one implementation (forward parity with pyreft is exact:
 * docs/EXPERIMENTS.md, "Same basis, same trajectory").
 *
 *   npx tsx benches/heldout-loss.ts --train math_1k --shuffle 42 --skip 400 --count 100 --positions f3+l3 \
 *       --max-length 512 reft=runs/math-loreft/adapter pyreft=runs/sxs-math-loreft/pyreft_adapter
 *
 * The examples are `loadTrainingSet(train, { shuffleSeed })` rows skip .. skip+count: with the
 * training rows' own `--train-limit` as `--skip`, none was trained on. Items are built as
 * `scripts/experiment.ts` builds training items (all layers, tied positions, `--max-length`).
 * Writes `--out` (JSON: per adapter mean NLL and per-example NLLs) when given.
 */
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { itemLosses, type ItemLoss } from '../src/evaluation/response-loss.js'
import { openBaseForward } from '../src/evaluation/base-forward.js'
import { loadModel, loadReft, loadTrainingSet, signTestP } from '../src/index.js'

const { values: a, positionals } = parseArgs({
  options: {
    train: { type: 'string' }, shuffle: { type: 'string' }, skip: { type: 'string', default: '0' }, count: { type: 'string', default: '100' },
    positions: { type: 'string', default: 'f3+l3' }, 'max-length': { type: 'string', default: '512' }, out: { type: 'string' }, model: { type: 'string' },
  },
  allowPositionals: true,
})
if (a.train === undefined || positionals.length === 0) throw new Error('usage: --train SET [--shuffle N --skip N --count N] NAME=ADAPTER_DIR ...')
const model = await loadModel(a.model)
const { examples } = loadTrainingSet(a.train, { shuffleSeed: a.shuffle === undefined ? undefined : Number(a.shuffle) })
const skip = Number(a.skip)
const rows = examples.slice(skip, skip + Number(a.count))
// Items as experiment.ts builds them; rank and kind do not change the items.
const template = model.withInterventions({ kind: 'loreft', layers: 'all', positions: a.positions, rank: 4, tied: true }, { seed: 42 })
const items = template.dataset(rows, { maxLength: Number(a['max-length']) }).filter((it) => it.labels.some((l) => l !== -100))
template.dispose()
console.log(`${items.length} held-out items (${a.train} rows ${skip}–${skip + rows.length - 1}${a.shuffle === undefined ? '' : `, shuffle ${a.shuffle}`})`)

const results: Record<string, ItemLoss[]> = {}
const base = openBaseForward(model)
results.base = await itemLosses(base, items, { dropPositions: true })
base.dispose()
for (const p of positionals) {
  const [name, dir] = p.includes('=') ? [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] : [p, p]
  const reft = await loadReft(dir!, model)
  results[name!] = await itemLosses(reft, items)
  reft.dispose()
}
const mean = (ls: ItemLoss[]): number => ls.reduce((s, l) => s + l.nll * l.tokens, 0) / ls.reduce((s, l) => s + l.tokens, 0)
const names = Object.keys(results)
for (const n of names) console.log(`${n.padEnd(12)} mean NLL per token ${mean(results[n]!).toFixed(4)} over ${results[n]!.reduce((s, l) => s + l.tokens, 0)} tokens`)
for (let i = 0; i < names.length; i++) {
  for (let j = i + 1; j < names.length; j++) {
    const x = results[names[i]!]!, y = results[names[j]!]!
    const lower = x.filter((l, k) => l.nll < y[k]!.nll).length
    const higher = x.filter((l, k) => l.nll > y[k]!.nll).length
    console.log(`${names[i]} lower than ${names[j]} on ${lower} of ${lower + higher} examples (sign test p = ${signTestP(lower, lower + higher).toPrecision(3)})`)
  }
}
if (a.out !== undefined) {
  writeFileSync(a.out, JSON.stringify({ train: a.train, shuffle: a.shuffle, skip, count: rows.length, items: items.length, adapters: positionals,
    meanNll: Object.fromEntries(names.map((n) => [n, mean(results[n]!)])), perExample: results }, null, 1) + '\n')
}
