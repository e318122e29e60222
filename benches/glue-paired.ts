/**
 * Paired bootstrap of two adapters' test-half predictions from `reft search --glue` runs: the
 * difference of the task's primary metric on the same rows (as `--compare-default` reports for
 * the selected and default adapters of one run), here for any two recorded test scorings.
 *
 *   npx tsx benches/glue-paired.ts --glue stsb --limit 500 \
 *       runs/search-stsb-evalhalf/trials.jsonl:selected runs/search-stsb-default5/trials.jsonl:selected
 *
 * Each argument is TRIALS.jsonl:WHICH (`selected` or `default`); the first minus the second.
 * `--limit` and `--seed` must be the runs' own (they fix the test half's rows and labels).
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { pairedBootstrap } from '../src/glue/bootstrap.js'
import { loadGlueSplits } from '../src/glue/protocol.js'

const { values: a, positionals } = parseArgs({
  options: { glue: { type: 'string' }, limit: { type: 'string' }, seed: { type: 'string', default: '42' } },
  allowPositionals: true,
})
if (a.glue === undefined || positionals.length !== 2) throw new Error('usage: --glue TASK [--limit N] [--seed N] A.jsonl:which B.jsonl:which')
const seed = Number(a.seed)
const { task, test } = loadGlueSplits(a.glue, { seed, trainLimit: a.limit === undefined ? undefined : Number(a.limit) })
const predictions = positionals.map((p) => {
  const [file, which] = [p.slice(0, p.lastIndexOf(':')), p.slice(p.lastIndexOf(':') + 1)]
  const rec = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { type: string; which?: string; predictions?: number[]; n?: number })
    .find((r) => r.type === 'glue-test' && r.which === which)
  if (rec?.predictions === undefined) throw new Error(`${file} has no '${which}' test scoring`)
  if (rec.predictions.length !== test.length) throw new Error(`${file}: ${rec.predictions.length} predictions for ${test.length} test rows (check --limit / --seed)`)
  return rec.predictions
})
const p = pairedBootstrap(task, predictions[0]!, predictions[1]!, test.map((e) => e.label), { seed })
const pct = (x: number) => (x * 100).toFixed(1)
console.log(`${task.name} ${task.primaryMetric}: ${positionals[0]} − ${positionals[1]} = ${p.difference >= 0 ? '+' : ''}${pct(p.difference)} ` +
  `(paired bootstrap 95% CI ${p.ci95 === null ? 'undefined (the metric is mostly undefined on resamples)' : `${pct(p.ci95[0])} to ${pct(p.ci95[1])}`}; first higher in ${pct(p.aBetter)}% of ${p.resamples} resamples)`)
