/**
 * Prints the GLUE tables of docs/EXPERIMENTS.md from the reports `benches/glue-experiments.sh`
 * wrote: one row per task and recipe (test-half metrics of the best epoch), and the pyreft
 * side-by-side rows.   npx tsx benches/glue-table.ts [runs/glue]
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2] ?? 'runs/glue'
const tasks = ['rte', 'mrpc', 'cola', 'stsb', 'sst2']
const recipes = ['head-only', 'loreft', 'direft']
const pct = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '—' : (100 * x).toFixed(1))
const fmt = (m: Record<string, number>) =>
  Object.entries(m).map(([k, v]) => `${k.replace('matthews_correlation', 'MCC').replace('spearmanr', 'spearman')} ${pct(v)}`).join(', ')
type Report = { test: Record<string, number>; eval: Record<string, number>; sizes: { train: number; eval: number; test: number }; bestEpoch: number; epochs: unknown[]; params: { interventionParams: number; headParams: number; interventionPercent: number }; seconds: { train: number; total: number }; train: { steps: number } }
const read = (p: string) => (existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Report) : undefined)
console.log('| task (test n) | recipe | test metrics | best epoch | params (intervention % / head) | train s |')
console.log('|---|---|---|---|---|---|')
for (const t of tasks) {
  for (const r of recipes) {
    const rep = read(join(dir, `${t}-${r}`, 'report.json'))
    if (rep === undefined) continue
    const p = rep.params
    console.log(`| ${t} (${rep.sizes.test}) | ${r} | ${fmt(rep.test)} | ${rep.bestEpoch}/${rep.epochs.length} | ${p.interventionParams.toLocaleString('en-US')} (${p.interventionPercent.toPrecision(2)}%) / ${p.headParams} | ${rep.seconds.train.toFixed(0)} |`)
  }
}
console.log('\n| task | library | test-half metrics | all-dev metrics | train s | steps |')
console.log('|---|---|---|---|---|---|')
for (const t of tasks) {
  const py = existsSync(join(dir, `${t}-pyreft-loreft.json`)) ? JSON.parse(readFileSync(join(dir, `${t}-pyreft-loreft.json`), 'utf8')) : undefined
  const ours = read(join(dir, `${t}-loreft`, 'report.json'))
  if (py === undefined || ours === undefined) continue
  const strip = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'n'))
  console.log(`| ${t} | reft (best epoch ${ours.bestEpoch}/${ours.epochs.length}) | ${fmt(ours.test)} | — | ${ours.seconds.train.toFixed(0)} | ${ours.train.steps} |`)
  console.log(`| ${t} | pyreft (last epoch) | ${fmt(strip(py.dev_test_half))} | ${fmt(strip(py.dev_all))} | ${py.train_seconds.toFixed(0)} | ${py.steps} |`)
}
