/**
 * The commonsense and math tables of docs/EXPERIMENTS.md from the runs of benches/experiments.sh
 * (runs/<row>/result.json): accuracy with its Wilson 95% interval per task, trainable parameters
 * as a share of the model, and training time. Rows that have not run are listed as missing.
 *
 * usage: npx tsx benches/experiments-table.ts [runs]
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

interface Result {
  train: { kind: string; params?: number; paramsPercent?: number; trainSeconds?: number; steps?: number; firstLoss?: number; lastLoss?: number; trainExamples?: number }
  results: { task: string; n: number; accuracy: number; ci95: [number, number]; seconds: number }[]
}

const dir = process.argv[2] ?? 'runs'
const pct = (x: number) => (100 * x).toFixed(1)
const groups = [
  { title: 'Commonsense (first 200 test examples each)', rows: ['zeroshot-cs', 'cs-loreft', 'cs-direft'], tasks: ['boolq', 'ARC-Easy', 'ARC-Challenge', 'openbookqa'] },
  { title: 'Math (first 50 test examples each)', rows: ['zeroshot-math', 'math-loreft', 'math-direft'], tasks: ['gsm8k', 'SVAMP', 'mawps', 'AQuA'] },
]
for (const g of groups) {
  console.log(`\n### ${g.title}\n`)
  console.log(`| method | params (% of model) | ${g.tasks.join(' | ')} | train loss first → last | train s |`)
  console.log(`|---|---|${g.tasks.map(() => '---').join('|')}|---|---|`)
  for (const row of g.rows) {
    const file = join(dir, row, 'result.json')
    if (!existsSync(file)) {
      console.log(`| ${row} | not run | ${g.tasks.map(() => '—').join(' | ')} | — | — |`)
      continue
    }
    const r = JSON.parse(readFileSync(file, 'utf8')) as Result
    const t = r.train
    const method = t.kind.startsWith('none') ? 'zero-shot' : `${t.kind === 'loreft' ? 'LoReFT' : 'DiReFT'} r4, all layers, f3+l3`
    const params = t.params === undefined ? '0' : `${t.params.toLocaleString('en-US')} (${t.paramsPercent!.toFixed(3)}%)`
    const cells = g.tasks.map((task) => {
      const x = r.results.find((y) => y.task === task)
      return x === undefined ? '—' : `${pct(x.accuracy)} (${pct(x.ci95[0])}–${pct(x.ci95[1])})`
    })
    const loss = t.firstLoss === undefined ? '—' : `${t.firstLoss.toFixed(2)} → ${t.lastLoss!.toFixed(2)}`
    console.log(`| ${method} | ${params} | ${cells.join(' | ')} | ${loss} | ${t.trainSeconds === undefined ? '—' : Math.round(t.trainSeconds)} |`)
  }
}
