/**
 * Writes the row indices `reft glue train` uses (seeded train subset, test half of the
 * validation split) so benches/pyreft_glue.py trains and scores on exactly the same rows.
 *
 *   npx tsx benches/glue-indices.ts rte --train-limit 500 --seed 42 --out runs/glue/rte
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { loadGlueSplits } from '../src/index.js'

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'train-limit': { type: 'string' }, seed: { type: 'string', default: '42' }, out: { type: 'string' } },
})
const task = positionals[0]
if (task === undefined || a.out === undefined) throw new Error('usage: glue-indices.ts TASK --out DIR [--train-limit N] [--seed N]')
const s = loadGlueSplits(task, { seed: Number(a.seed), trainLimit: a['train-limit'] === undefined ? undefined : Number(a['train-limit']) })
mkdirSync(a.out, { recursive: true })
writeFileSync(join(a.out, 'train_idx.json'), JSON.stringify(s.train.map((e) => e.idx)))
writeFileSync(join(a.out, 'test_idx.json'), JSON.stringify(s.test.map((e) => e.idx)))
console.log(`${s.task.name}: ${s.train.length} train, ${s.eval.length} eval, ${s.test.length} test rows`)
