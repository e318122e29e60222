/**
 * reft's side of benches/pyreft-trajectory.sh: loads pyreft's initial adapter (OUT/init, written by
 * benches/pyreft_trajectory.py) and takes the same AdamW steps (lr, clip 1.0, no weight decay, no
 * schedule) on the same micro-batches: the first training rows of OUT/train.jsonl in file order.
 * Prints one JSON line per step (mean micro-batch loss, gradient norm before clipping, wall-clock
 * seconds), then the loss of each of the next 8 rows.
 *
 *   npx tsx benches/trajectory-steps.ts --out runs/trajectory --steps 3 --accum 2 --micro 2
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { collateTraining } from '../src/datasets/collate.js'
import { loadModel, loadReft } from '../src/index.js'

const { values: a } = parseArgs({
  options: { out: { type: 'string' }, steps: { type: 'string', default: '3' }, accum: { type: 'string', default: '2' }, micro: { type: 'string', default: '2' }, lr: { type: 'string', default: '3e-3' } },
})
if (a.out === undefined) throw new Error('--out is required')
const [steps, accum, micro, lr] = [Number(a.steps), Number(a.accum), Number(a.micro), Number(a.lr)]
type Row = { input_ids: number[]; labels: number[]; locations: number[][] }
const train = readFileSync(`${a.out}/train.jsonl`, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Row)
const item = (r: Row) => ({ inputIds: Uint32Array.from(r.input_ids), labels: Int32Array.from(r.labels), locations: r.locations })
const model = await loadModel()
const reft = await loadReft(`${a.out}/init`, model)
let k = 0
reft.setTraining(true)
for (let s = 0; s < steps; s++) {
  const batches = []
  for (let i = 0; i < accum; i++, k += micro) batches.push(collateTraining(train.slice(k, k + micro).map(item)))
  const t0 = performance.now()
  const st = await reft.trainStep(batches, { lr, weightDecay: 0, maxGradNorm: 1.0 })
  console.log(JSON.stringify({ step: s + 1, loss: st.loss, gradNorm: st.gradNorm, seconds: (performance.now() - t0) / 1000 }))
}
reft.setTraining(false)
for (const r of train.slice(k, k + 8)) console.log(JSON.stringify({ eval: (await reft.forward(collateTraining([item(r)]), false)).loss }))
reft.dispose()
