/**
 * Exports one commonsense/math recipe as token ids, so pyreft trains and generates on exactly the
 * tokens `reft` uses (benches/pyreft_commonsense.py), and scores pyreft's generations with our
 * scorer (pyreft's compute_metrics rules).
 *
 *   npx tsx benches/export-recipe.ts export --train ARC-Easy --train-limit 1000 --positions f3+l3 \
 *       --max-length 256 --eval ARC-Easy --eval-limit 200 --out runs/sxs
 *   npx tsx benches/export-recipe.ts score --out runs/sxs     # reads OUT/pyreft_generations.jsonl
 *
 * `export` writes OUT/train.jsonl ({input_ids, labels, locations}) and OUT/eval.jsonl
 * ({id, task, input_ids, locations, answer}); locations are `[intervention][position]` for the
 * model's layers (all layers, tied: one list per layer).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildPromptItems } from '../src/datasets/prompt-items.js'
import { loadModel, loadTask, loadTrainingSet, resolveTask, scoreGeneration, wilsonInterval, parsePositions } from '../src/index.js'

const [cmd, ...rest] = process.argv.slice(2)
const { values: a } = parseArgs({
  args: rest,
  options: {
    train: { type: 'string' }, 'train-limit': { type: 'string' }, positions: { type: 'string', default: 'f3+l3' },
    'max-length': { type: 'string', default: '256' }, eval: { type: 'string' }, 'eval-limit': { type: 'string' },
    out: { type: 'string' }, model: { type: 'string' },
  },
})
if (a.out === undefined) throw new Error('--out is required')
mkdirSync(a.out, { recursive: true })
const model = await loadModel(a.model)

if (cmd === 'export') {
  const layers = model.info().numLayers
  const reft = model.withInterventions({ kind: 'loreft', layers: 'all', positions: a.positions!, rank: 4, tied: true })
  const { examples } = loadTrainingSet(a.train!, { limit: a['train-limit'] === undefined ? undefined : Number(a['train-limit']) })
  const items = reft.dataset(examples, { maxLength: Number(a['max-length']) })
  writeFileSync(join(a.out, 'train.jsonl'), items.map((it) => JSON.stringify({ input_ids: Array.from(it.inputIds), labels: Array.from(it.labels), locations: it.locations })).join('\n') + '\n')
  const pos = parsePositions(a.positions!)
  const rows: string[] = []
  for (const task of (a.eval ?? '').split(',').filter((s) => s !== '')) {
    const exs = loadTask(task, { limit: a['eval-limit'] === undefined ? undefined : Number(a['eval-limit']) })
    const prompts = buildPromptItems(model, exs.map((e) => e.prompt), { mode: 'multiple_position', positions: pos, numInterventions: layers, shareWeights: true, addSpecialTokens: false })
    exs.forEach((e, i) => rows.push(JSON.stringify({ id: e.id, task: resolveTask(task).name, prompt: e.prompt, input_ids: Array.from(prompts[i]!.inputIds), locations: prompts[i]!.locations, answer: e.answer })))
  }
  writeFileSync(join(a.out, 'eval.jsonl'), rows.join('\n') + '\n')
  console.log(`wrote ${items.length} training items and ${rows.length} eval prompts to ${a.out}`)
} else if (cmd === 'score') {
  const lines = readFileSync(join(a.out, 'pyreft_generations.jsonl'), 'utf8').split('\n').filter((l) => l !== '')
  const byTask = new Map<string, boolean[]>()
  for (const l of lines) {
    const g = JSON.parse(l) as { task: string; prompt: string; new_ids: number[]; answer: string }
    const spec = resolveTask(g.task)
    // As evaluateTask: the prompt text plus the decoded new tokens.
    const s = scoreGeneration(spec.kind, g.prompt + model.decode(Uint32Array.from(g.new_ids)), g.answer, { dataset: spec.name })
    byTask.set(spec.name, [...(byTask.get(spec.name) ?? []), s.correct])
  }
  const out: Record<string, unknown> = {}
  for (const [task, c] of byTask) {
    const k = c.filter(Boolean).length
    out[task] = { n: c.length, accuracy: k / c.length, ci95: wilsonInterval(k, c.length) }
    console.log(`${task}: ${(100 * k / c.length).toFixed(1)}% (n=${c.length})`)
  }
  writeFileSync(join(a.out, 'pyreft_scores.json'), JSON.stringify(out, null, 1))
} else {
  throw new Error('usage: export-recipe.ts export|score --out DIR ...')
}
