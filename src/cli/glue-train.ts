/**
 * `reft glue train`: the paper's GLUE protocol on an encoder. Train on the task's train split with
 * a recipe (the paper's RoBERTa-base LoReFT or DiReFT setting, or a head-only baseline), evaluate on
 * the validation split's eval half after every epoch and keep the best epoch (pyreft's
 * `load_best_model_at_end` on the task's primary metric), then report that adapter on the held-out
 * test half. Writes the adapter, `glue.json` (what `reft glue eval` needs), `report.json` and
 * `loss.svg` into the output directory.
 */
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { encoderMaxLength } from '../classifier.js'
import type { InterventionConfig } from '../config.js'
import { parsePositions } from '../config.js'
import { ReftError, invalidConfig } from '../errors.js'
import { ensureMiniLM } from '../fetch-model.js'
import { evaluateGlue, isBetterGlueScore, type GlueEvaluation } from '../glue/evaluate.js'
import { loadGlueSplits } from '../glue/protocol.js'
import { glueRecipe, glueRecipeCommon, glueRecipeIntervention, type GlueRecipe } from '../glue/recipes.js'
import { loadReft } from '../load-reft.js'
import { loadModel } from '../load-model.js'
import { writeLossCurve } from '../plot.js'
import { createProgressReporter } from '../progress.js'
import type { ReftModel } from '../reft-model.js'
import { train } from '../trainer.js'
import { checkOneOf } from '../validate.js'
import { type CliIo, int, num, parseFlags, str, type Parsed } from './common.js'
import { parseLayers } from './train-config.js'

const s = { type: 'string' } as const
const b = { type: 'boolean' } as const

/** Flags of `reft glue train`. */
export const glueTrainFlags = {
  model: s, recipe: s, 'data-dir': s, 'train-limit': s, 'dev-limit': s, epochs: s, lr: s, 'batch-size': s, 'eval-batch-size': s,
  rank: s, positions: s, layers: s, dropout: s, 'warmup-ratio': s, 'weight-decay': s, 'max-length': s, 'train-dense': b, seed: s, output: s,
}

/** What `reft glue eval` reads back from an adapter directory. */
export interface GlueRunInfo {
  task: string
  recipe: string
  model: string
  seed: number
  maxLength: number
  devLimit: number | null
}

/** File beside the adapter holding {@link GlueRunInfo}. */
export const glueRunFile = 'glue.json'

const recipes = ['loreft', 'direft', 'head-only'] as const

/** Loads `--model` (default: MiniLM, fetched with pip when missing); `what` names the command in the decoder error. */
export async function openEncoder(path: string | undefined, io: CliIo, what = 'reft glue'): Promise<{ model: Awaited<ReturnType<typeof loadModel>>; path: string }> {
  const resolved = path === undefined || path === 'minilm' ? await ensureMiniLM((line) => io.err(`${line}\n`)) : path
  const model = await loadModel(resolved)
  if (model.info().kind !== 'encoder') {
    model.dispose()
    throw new ReftError('ERR_UNSUPPORTED_MODEL', `${what} needs an encoder (BERT, RoBERTa, XLM-R); ${resolved} is a decoder`)
  }
  return { model, path: resolved }
}

/** A short summary of metrics: `accuracy 0.8123, f1 0.8571`. */
export function formatMetrics(e: GlueEvaluation): string {
  return Object.entries(e.metrics).map(([k, v]) => `${k} ${(v as number).toFixed(4)}`).join(', ')
}

const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)

function interventionFor(recipe: GlueRecipe, method: (typeof recipes)[number], p: Parsed): InterventionConfig | null {
  if (method === 'head-only') return null
  const base = glueRecipeIntervention(recipe)
  const layers = str(p, 'layers')
  const positions = str(p, 'positions')
  return {
    ...base,
    ...(layers === undefined ? {} : { layers: parseLayers(layers) }),
    ...(positions === undefined ? {} : { positions: parsePositions(positions) }),
    rank: int(p, 'rank') ?? base.rank,
    dropout: num(p, 'dropout') ?? base.dropout ?? 0,
  }
}

/** Moves the files of `from` into `to` (replacing same-named ones) and removes `from`. */
async function moveInto(from: string, to: string): Promise<void> {
  for (const f of await readdir(from)) await rename(join(from, f), join(to, f))
  await rm(from, { recursive: true, force: true })
}

/** Runs `reft glue train TASK`. */
export async function glueTrainCommand(task: string, args: string[], io: CliIo): Promise<void> {
  const started = performance.now()
  const p = parseFlags(args, glueTrainFlags, false)
  const method = checkOneOf('--recipe', str(p, 'recipe') ?? 'loreft', recipes)
  const recipe = glueRecipe(task, method === 'head-only' ? 'loreft' : method)
  const seed = int(p, 'seed') ?? 42
  const devLimit = int(p, 'dev-limit')
  const data = loadGlueSplits(task, { dataDir: str(p, 'data-dir'), seed, trainLimit: int(p, 'train-limit'), devLimit })
  const spec = data.task
  const output = str(p, 'output') ?? `reft-glue-${spec.name}`
  const st = await stat(output).catch(() => undefined)
  if (st !== undefined && !st.isDirectory()) throw new ReftError('ERR_IO', `--output ${output} exists and is not a directory`)
  const config = interventionFor(recipe, method, p)
  const opts = {
    epochs: int(p, 'epochs') ?? recipe.epochs,
    batchSize: int(p, 'batch-size') ?? recipe.batchSize,
    lr: num(p, 'lr') ?? recipe.learningRate,
    warmupRatio: num(p, 'warmup-ratio') ?? recipe.warmupRatio,
    weightDecay: num(p, 'weight-decay') ?? recipe.weightDecay,
    evalBatchSize: int(p, 'eval-batch-size') ?? 32,
  }
  if (data.eval.length === 0 || data.test.length === 0) throw invalidConfig('--dev-limit', `the validation split needs at least 2 rows for its eval and test halves, got ${data.eval.length + data.test.length}`)

  const { model, path: modelPath } = await openEncoder(str(p, 'model'), io)
  const bestDir = join(output, '.best-epoch')
  let reft: ReftModel | undefined
  let best: ReftModel | undefined
  const controller = new AbortController()
  const onSigint = (): void => {
    io.err('\ninterrupted: stopping after the current step (no adapter is saved)\n')
    controller.abort()
  }
  process.once('SIGINT', onSigint)
  try {
    const info = model.info()
    const trainDense = p.values['train-dense'] === true ? { trainDense: true } : {}
    reft = model.withInterventions(config, { seed, head: { numLabels: spec.numLabels, ...trainDense } })
    const maxLength = int(p, 'max-length') ?? Math.min(glueRecipeCommon.maxLength, encoderMaxLength(info))
    const items = reft.classificationDataset(data.train, { maxLength })
    const c = reft.config
    const params = reft.trainableParameters()
    io.err(
      `${spec.name}: ${method} on ${info.architecture} (${c.numInterventions} interventions, rank ${c.rank}) | ` +
        `train ${data.train.length}, eval ${data.eval.length}, test ${data.test.length} | ${opts.epochs} epochs, batch ${opts.batchSize}, lr ${opts.lr}\n`,
    )
    await mkdir(output, { recursive: true })
    const epochs: { epoch: number; step: number; trainLoss: number; eval: GlueEvaluation['metrics'] }[] = []
    let bestScore: number | undefined
    let bestEpoch = -1
    const progress = createProgressReporter()
    const trainStarted = performance.now()
    let evalMs = 0
    const history = await train(reft, items, {
      ...opts,
      seed,
      signal: controller.signal,
      onProgress: progress.update,
      onEpochEnd: async ({ epoch, step, history: h }) => {
        const r = await evaluateGlue(reft!, spec, data.eval, { batchSize: opts.evalBatchSize, maxLength, signal: controller.signal })
        evalMs += r.elapsedMs
        const losses = h.steps.slice(epochs.at(-1)?.step ?? 0).map((x) => x.loss)
        epochs.push({ epoch: epoch + 1, step, trainLoss: losses.reduce((a, x) => a + x, 0) / losses.length, eval: r.metrics })
        const better = isBetterGlueScore(r.primary, bestScore)
        if (better) {
          bestScore = r.primary
          bestEpoch = epoch + 1
          await reft!.save(bestDir)
        }
        progress.finish()
        io.err(`epoch ${epoch + 1}/${opts.epochs}: train loss ${epochs.at(-1)!.trainLoss.toFixed(4)} | eval ${formatMetrics(r)}${better ? ' (best)' : ''}\n`)
      },
    })
    progress.finish()
    const trainSeconds = (performance.now() - trainStarted - evalMs) / 1000

    // Report the kept epoch as saved: reload it from disk, so the numbers are the adapter's.
    best = await loadReft(bestDir, model)
    const evalResult = await evaluateGlue(best, spec, data.eval, { batchSize: opts.evalBatchSize, maxLength })
    const testResult = await evaluateGlue(best, spec, data.test, { batchSize: opts.evalBatchSize, maxLength })
    await moveInto(bestDir, output)
    const run: GlueRunInfo = { task: spec.name, recipe: method, model: modelPath, seed, maxLength, devLimit: devLimit ?? null }
    await writeFile(join(output, glueRunFile), JSON.stringify(run, null, 2) + '\n')
    await writeLossCurve(join(output, 'loss.svg'), history)
    const report = {
      command: ['reft', 'glue', 'train', task, ...args].map(quote).join(' '),
      date: new Date().toISOString(),
      ...run,
      modelInfo: { architecture: info.architecture, numLayers: info.numLayers, hiddenSize: info.hiddenSize, numParameters: info.numParameters },
      intervention: config === null ? null : c,
      head: reft.head(),
      train: { ...opts, maxLength, steps: history.steps.length, examples: data.train.length },
      sizes: { train: data.train.length, eval: data.eval.length, test: data.test.length },
      params: { interventionParams: params.interventionParams, headParams: params.headParams, modelParams: params.modelParams, interventionPercent: params.percent },
      epochs,
      bestEpoch,
      eval: evalResult.metrics,
      test: testResult.metrics,
      primaryMetric: spec.primaryMetric,
      paperScore: method === 'head-only' ? null : recipe.paperScore,
      seconds: { train: trainSeconds, eval: evalMs / 1000 + (evalResult.elapsedMs + testResult.elapsedMs) / 1000, total: (performance.now() - started) / 1000 },
    }
    await writeFile(join(output, 'report.json'), JSON.stringify(report, null, 2) + '\n')
    const pct = params.percent.toPrecision(3)
    io.out(`params: ${params.interventionParams.toLocaleString('en-US')} intervention (${pct}% of ${params.modelParams.toLocaleString('en-US')}) + ${params.headParams.toLocaleString('en-US')} head\n`)
    io.out(`best epoch ${bestEpoch}: eval (${data.eval.length}) ${formatMetrics(evalResult)}\n`)
    io.out(`test (${data.test.length}): ${formatMetrics(testResult)}\n`)
    io.out(`saved adapter and report.json to ${output} in ${report.seconds.total.toFixed(1)} s\n`)
  } finally {
    process.off('SIGINT', onSigint)
    await rm(bestDir, { recursive: true, force: true })
    best?.dispose()
    reft?.dispose()
    model.dispose()
  }
}
