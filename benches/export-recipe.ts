/**
 * Exports one commonsense/math recipe as token ids, so pyreft trains and generates on exactly the
 * tokens `reft` uses (benches/pyreft_commonsense.py), and scores pyreft's generations with our
 * scorer (pyreft's compute_metrics rules).
 *
 *   npx tsx benches/export-recipe.ts export --train ARC-Easy --train-limit 1000 --positions f3+l3 \
 *       --max-length 256 --eval ARC-Easy --eval-limit 200 --out runs/sxs
 *   npx tsx benches/export-recipe.ts score --out runs/sxs     # reads OUT/pyreft_generations.jsonl
 *   npx tsx benches/export-recipe.ts score --out runs/sxs --reft DIR/generations.jsonl   # and reft's, side by side
 *   # the four-task recipe (docs/EXPERIMENTS.md, row cs-loreft of benches/experiments.sh):
 *   npx tsx benches/export-recipe.ts export --train commonsense --train-limit 1000 --train-shuffle 42 \
 *       --positions f3+l3 --max-length 256 --eval boolq,ARC-Easy,ARC-Challenge,openbookqa --eval-limit 200 --out runs/sxs-4task
 *
 * `export` writes OUT/train.jsonl ({input_ids, labels, locations}) and OUT/eval.jsonl
 * ({id, task, input_ids, locations, answer}); locations are `[intervention][position]` for the
 * model's layers (all layers, tied: one list per layer). It then rebuilds the training items as
 * scripts/experiment.ts does and checks the written rows against them, token for token.
 * `score` writes OUT/pyreft_scores.json: per task n, accuracy, Wilson 95% interval and how often
 * each prediction and each gold answer occurs (as experiment.ts records them). With `--reft FILE`
 * (the generations.jsonl of `reft eval --output`), it also writes the same for reft to
 * OUT/reft_scores.json and prints the two side by side.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildPromptItems } from '../src/datasets/prompt-items.js'
import { loadModel, loadTask, loadTrainingSet, resolveTask, scoreGeneration, signTestP, wilsonInterval, parsePositions } from '../src/index.js'

const [cmd, ...rest] = process.argv.slice(2)
const { values: a } = parseArgs({
  args: rest,
  options: {
    train: { type: 'string' }, 'train-limit': { type: 'string' }, 'train-shuffle': { type: 'string' }, positions: { type: 'string', default: 'f3+l3' },
    'max-length': { type: 'string', default: '256' }, eval: { type: 'string' }, 'eval-limit': { type: 'string' },
    out: { type: 'string' }, model: { type: 'string' }, reft: { type: 'string' },
  },
})
if (a.out === undefined) throw new Error('--out is required')
mkdirSync(a.out, { recursive: true })
const model = await loadModel(a.model)

if (cmd === 'export') {
  const layers = model.info().numLayers
  // The options scripts/experiment.ts passes (its defaults: seed 42, tied; rank and kind do not
  // change the items).
  const reft = model.withInterventions({ kind: 'loreft', layers: 'all', positions: a.positions!, rank: 4, tied: true }, { seed: 42 })
  const { examples } = loadTrainingSet(a.train!, {
    limit: a['train-limit'] === undefined ? undefined : Number(a['train-limit']),
    shuffleSeed: a['train-shuffle'] === undefined ? undefined : Number(a['train-shuffle']),
  })
  const items = reft.dataset(examples, { maxLength: Number(a['max-length']) })
  const trainFile = join(a.out, 'train.jsonl')
  writeFileSync(trainFile, items.map((it) => JSON.stringify({ input_ids: Array.from(it.inputIds), labels: Array.from(it.labels), locations: it.locations })).join('\n') + '\n')
  checkTrainFile(trainFile, model, a, layers)
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
  const byTask = new Map<string, { id: number; correct: boolean; prediction: string; gold: string; text: string }[]>()
  for (const l of lines) {
    const g = JSON.parse(l) as { id: number; task: string; prompt: string; new_ids: number[]; answer: string }
    const spec = resolveTask(g.task)
    // As evaluateTask: the prompt text plus the decoded new tokens.
    const s = scoreGeneration(spec.kind, g.prompt + model.decode(Uint32Array.from(g.new_ids)), g.answer, { dataset: spec.name })
    byTask.set(spec.name, [...(byTask.get(spec.name) ?? []), { id: g.id, correct: s.correct, prediction: String(s.prediction), gold: g.answer, text: model.decode(Uint32Array.from(g.new_ids)) }])
  }
  const out: Record<string, unknown> = {}
  for (const [task, rs] of byTask) {
    const k = rs.filter((r) => r.correct).length
    const ci95 = wilsonInterval(k, rs.length)
    const predictions = tally(rs.map((r) => r.prediction))
    out[task] = { n: rs.length, correct: k, accuracy: k / rs.length, ci95, predictions, gold: tally(rs.map((r) => r.gold)) }
    const shown = Object.entries(predictions).map(([p, c]) => `${p === '' ? '(none)' : p} ×${c}`).join(', ')
    console.log(`${task}: ${(100 * k / rs.length).toFixed(1)}% (n=${rs.length}, 95% CI ${(100 * ci95[0]).toFixed(1)}–${(100 * ci95[1]).toFixed(1)}); predicted ${shown}`)
  }
  writeFileSync(join(a.out, 'pyreft_scores.json'), JSON.stringify(out, null, 1))
  if (a.reft !== undefined) {
    const reftByTask = new Map<string, { id: number; correct: boolean; prediction: string; gold: string; generation?: string }[]>()
    for (const l of readFileSync(a.reft, 'utf8').split('\n').filter((x) => x !== '')) {
      const r = JSON.parse(l) as { id: number; task: string; correct: boolean; prediction: string; gold: string; generation?: string }
      reftByTask.set(r.task, [...(reftByTask.get(r.task) ?? []), r])
    }
    const reftOut: Record<string, unknown> = {}
    const pct = (x: number) => (100 * x).toFixed(1)
    console.log('| task | reft | pyreft | reft predicted | pyreft predicted |\n|---|---|---|---|---|')
    for (const [task, rs] of reftByTask) {
      const k = rs.filter((r) => r.correct).length
      const ci95 = wilsonInterval(k, rs.length)
      const predictions = tally(rs.map((r) => r.prediction))
      reftOut[task] = { n: rs.length, correct: k, accuracy: k / rs.length, ci95, predictions, gold: tally(rs.map((r) => r.gold)) }
      const p = out[task] as { n: number; accuracy: number; ci95: [number, number]; predictions: Record<string, number> } | undefined
      const shown = (t: Record<string, number>) => Object.entries(t).map(([x, c]) => `${x === '' ? '(none)' : x} ×${c}`).join(', ')
      console.log(`| ${task} | ${pct(k / rs.length)} (${pct(ci95[0])}–${pct(ci95[1])}) | ${p === undefined ? '—' : `${pct(p.accuracy)} (${pct(p.ci95[0])}–${pct(p.ci95[1])})`} | ${shown(predictions)} | ${p === undefined ? '—' : shown(p.predictions)} |`)
    }
    // Paired: the same questions, by id. Exact McNemar = a sign test on the discordant pairs.
    const pooled = { both: 0, reftOnly: 0, pyreftOnly: 0, n: 0, sameText: 0 }
    // Same text: reft's generation equals pyreft's decoded new tokens (special tokens such as EOS
    // dropped on both sides) — meaningful when both sides ran the same adapter.
    const mcnemar = (label: string, c: typeof pooled) =>
      console.log(`${label}: both right ${c.both}, reft only ${c.reftOnly}, pyreft only ${c.pyreftOnly} of ${c.n} (exact McNemar p = ${signTestP(c.reftOnly, c.reftOnly + c.pyreftOnly).toPrecision(2)}); same text ${c.sameText} of ${c.n}`)
    for (const [task, rs] of reftByTask) {
      const py = new Map(byTask.get(task)?.map((r) => [r.id, r]))
      const c = { both: 0, reftOnly: 0, pyreftOnly: 0, n: 0, sameText: 0 }
      for (const r of rs) {
        const q = py.get(r.id)
        if (q === undefined) continue
        const p = q.correct
        c.n++
        if (r.generation !== undefined && r.generation.trim() === q.text.replace(/<\|[^|]*\|>/g, '').trim()) c.sameText++
        if (r.correct && p) c.both++
        else if (r.correct) c.reftOnly++
        else if (p) c.pyreftOnly++
      }
      for (const k of ['both', 'reftOnly', 'pyreftOnly', 'n', 'sameText'] as const) pooled[k] += c[k]
      ;(reftOut[task] as Record<string, unknown>).paired = c
      mcnemar(task, c)
    }
    mcnemar('all tasks', pooled)
    writeFileSync(join(a.out, 'reft_scores.json'), JSON.stringify(reftOut, null, 1))
  }
} else {
  throw new Error('usage: export-recipe.ts export|score --out DIR ...')
}

/** How often each value occurs, most frequent first (the top 8, as scripts/experiment.ts records). */
function tally(xs: string[]): Record<string, number> {
  return Object.fromEntries([...new Set(xs)].map((x) => [x, xs.filter((y) => y === x).length] as const).sort((p, q) => q[1] - p[1]).slice(0, 8))
}

/**
 * Reads the written training file back and compares it, row by row and token by token, with the
 * items scripts/experiment.ts builds from the same flags (its `loadTrainingSet` options, its
 * intervention config with seed 42, `reft.dataset` with its max length). Throws on any difference.
 */
function checkTrainFile(file: string, model: Awaited<ReturnType<typeof loadModel>>, args: typeof a, layers: number): void {
  const num = (v: string | undefined) => v === undefined ? undefined : Number(v)
  const reft = model.withInterventions({ kind: 'loreft', layers: 'all', positions: args.positions!, rank: 4, tied: true }, { seed: 42 })
  const { examples } = loadTrainingSet(args.train!, { limit: num(args['train-limit']), shuffleSeed: num(args['train-shuffle']) })
  const expected = reft.dataset(examples, { maxLength: Number(args['max-length']) })
  const rows = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { input_ids: number[]; labels: number[]; locations: number[][] })
  if (rows.length !== expected.length) throw new Error(`${file}: ${rows.length} rows, experiment.ts builds ${expected.length}`)
  const same = (x: ArrayLike<number>, y: ArrayLike<number>) => x.length === y.length && Array.from(x).every((v, i) => v === y[i])
  rows.forEach((r, i) => {
    const e = expected[i]!
    if (!same(r.input_ids, e.inputIds) || !same(r.labels, e.labels) || r.locations.length !== layers
      || !r.locations.every((l, k) => same(l, e.locations[k]!))) throw new Error(`${file}: row ${i} differs from experiment.ts's item ${i}`)
  })
  // The text of the first rows is the shuffled examples' prompt followed by their target.
  for (let i = 0; i < Math.min(3, rows.length); i++) {
    const text = model.decode(Uint32Array.from(rows[i]!.input_ids))
    if (!text.includes(examples[i]!.output.trim())) throw new Error(`${file}: row ${i} does not decode to example ${i}'s target`)
    console.log(`row ${i} (${rows[i]!.input_ids.length} tokens, ${rows[i]!.labels.filter((t) => t !== -100).length} labelled): …${JSON.stringify(text.slice(-90))}`)
  }
  console.log(`checked: ${rows.length} rows identical to the items scripts/experiment.ts builds for --train ${args.train}`
    + ` --train-limit ${args['train-limit'] ?? '(all)'} --train-shuffle ${args['train-shuffle'] ?? '(none)'} --max-length ${args['max-length']}`)
}
