/**
 * `reft search`: hyperparameter search with successive halving on a dev slice held out from the
 * training split (generation on a decoder, or GLUE classification on an encoder with `--glue`,
 * which can rank on the validation split's eval half instead: `--dev-source eval-half`),
 * resumable from `<output>/trials.jsonl`, with reports and an optional test-split comparison of
 * the selected and default configurations. Ctrl-C stops between steps / batches
 * (ERR_ABORTED, exit status 130); finished runs stay in the trials file.
 */
import { readFile } from 'node:fs/promises'
import { isAbsolute, relative } from 'node:path'
import type { InstructionExample } from '../datasets/instruction.js'
import { ReftError, invalidConfig } from '../errors.js'
import { resolveTask } from '../evaluation/tasks.js'
import { glueTaskNames, resolveGlueTask } from '../glue/tasks.js'
import type { Model } from '../model.js'
import type { SearchData } from '../search/data.js'
import { glueDevSources, type GlueDevSource, type GlueSearchData } from '../search/glue-data.js'
import type { HalvingOptions } from '../search/halving.js'
import type { SearchOptions } from '../search/options.js'
import { createSearchProgressReporter } from '../search/progress.js'
import { describeScore, formatComparison, formatTestTable } from '../search/report.js'
import { search } from '../search/search.js'
import { describeConfig, type SearchSpace } from '../search/space.js'
import { checkOneOf, describe } from '../validate.js'
import { type CliIo, int, num, openModel, parseFlags, type Parsed, str } from './common.js'
import { readExamples } from './data.js'
import { openEncoder } from './glue-train.js'
export { searchHelp } from './search-help.js'

const s = { type: 'string' } as const
const b = { type: 'boolean' } as const

/** Flags of `reft search`. */
export const searchFlags = {
  model: s, train: s, data: s, glue: s, limit: s, 'data-dir': s, 'dev-size': s, 'dev-shuffle': b, 'dev-metric': s, 'dev-source': s,
  space: s, kind: s, layers: s, positions: s, rank: s, lr: s, epochs: s,
  sampling: s, trials: s, seed: s, eta: s, 'min-budget': s, 'no-halving': b,
  'batch-size': s, 'grad-accum': s, 'warmup-ratio': s, 'weight-decay': s, 'max-length': s, component: s, 'no-tied': b, dropout: s,
  'eval-batch-size': s, 'max-new-tokens': s, scoring: s,
  'eval-test': b, 'test-tasks': s, 'test-limit': s, 'compare-default': b, output: s,
}

function csv(p: Parsed, name: string): string[] | undefined {
  const v = str(p, name)
  if (v === undefined) return undefined
  const parts = v.split(',').map((x) => x.trim())
  if (parts.some((x) => x === '')) throw invalidConfig(`--${name}`, `empty entry in ${JSON.stringify(v)}`)
  return parts
}

function csvNumbers(p: Parsed, name: string): number[] | undefined {
  return csv(p, name)?.map((x) => {
    const n = Number(x)
    if (!Number.isFinite(n)) throw invalidConfig(`--${name}`, `expected numbers, got ${JSON.stringify(x)}`)
    return n
  })
}

/** `--min-budget 1/9` or `0.25`. */
export function parseFraction(text: string, field: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)\s*$/.exec(text)
  const n = m === null ? Number(text) : Number(m[1]) / Number(m[2])
  if (text.trim() === '' || !Number.isFinite(n)) throw invalidConfig(field, `expected a fraction such as 1/9 or 0.25, got ${JSON.stringify(text)}`)
  return n
}

async function readSpaceFile(file: string): Promise<SearchSpace> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    throw new ReftError('ERR_IO', `cannot read ${file}: ${(e as Error).message}`, { cause: e })
  }
  try {
    const json: unknown = JSON.parse(text)
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`expected an object, got ${describe(json)}`)
    return json as SearchSpace
  } catch (e) {
    throw new ReftError('ERR_INVALID_CONFIG', `${file}: ${(e as Error).message}`, { cause: e, field: 'space' })
  }
}

const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>

/** Flags that only generation searches (--train / --data) take. */
const generationOnly = ['max-new-tokens', 'scoring', 'test-tasks'] as const

/** The `--glue` task's data, refusing flags that do not apply to it. */
function glueData(p: Parsed, task: string): GlueSearchData {
  if (str(p, 'train') !== undefined || str(p, 'data') !== undefined) throw invalidConfig('--glue', 'give one of --train SET, --data FILE or --glue TASK')
  let name: string
  try {
    name = resolveGlueTask(task).name
  } catch {
    throw invalidConfig('--glue', `unknown GLUE task ${JSON.stringify(task)}; choose from ${glueTaskNames.join(', ')}`)
  }
  const flag = generationOnly.find((f) => p.values[f] !== undefined)
  if (flag !== undefined) throw invalidConfig(`--${flag}`, `applies to --train / --data searches; a --glue search is tested on ${name}'s test half (--eval-test)`)
  return { glue: name, limit: int(p, 'limit') }
}

/** `--dev-source` (GLUE only), refusing the dev-slice flags that the eval half does not take. */
function glueDevSource(p: Parsed, glueTask: string | undefined): GlueDevSource | undefined {
  const v = str(p, 'dev-source')
  if (v === undefined) return undefined
  if (glueTask === undefined) throw invalidConfig('--dev-source', 'applies to --glue searches only')
  const source = checkOneOf('--dev-source', v, glueDevSources)
  if (source === 'eval-half') {
    const why = "the eval half of the validation split is the dev set; its size is fixed by pyreft's protocol"
    if (str(p, 'dev-size') !== undefined) throw invalidConfig('--dev-size', `not with --dev-source eval-half: ${why}`)
    if (p.values['dev-shuffle'] === true) throw invalidConfig('--dev-shuffle', `not with --dev-source eval-half: ${why}`)
  }
  return source
}

/** Builds `search` options (without model and callbacks) from parsed flags. */
export async function searchOptionsFromFlags(p: Parsed): Promise<Omit<SearchOptions, 'model'>> {
  const trainSet = str(p, 'train')
  const dataFile = str(p, 'data')
  const glueTask = str(p, 'glue')
  if (glueTask === undefined && (trainSet === undefined) === (dataFile === undefined)) throw invalidConfig('--train', 'give one of --train SET, --data FILE or --glue TASK')
  if (glueTask === undefined && str(p, 'dropout') !== undefined) throw invalidConfig('--dropout', 'applies to --glue searches only')
  const devSource = glueDevSource(p, glueTask)
  const limit = int(p, 'limit')
  const data: SearchData | GlueSearchData =
    glueTask !== undefined
      ? glueData(p, glueTask)
      : trainSet !== undefined
        ? { trainingSet: trainSet, limit }
        : { examples: (await readExamples(dataFile!)) as InstructionExample[], name: dataFile!, limit }
  const fileSpace = str(p, 'space') === undefined ? {} : await readSpaceFile(str(p, 'space')!)
  const space: SearchSpace = {
    ...fileSpace,
    ...defined({
      kind: csv(p, 'kind') as SearchSpace['kind'],
      layers: csv(p, 'layers'),
      positions: csv(p, 'positions'),
      rank: csvNumbers(p, 'rank'),
      lr: csvNumbers(p, 'lr'),
      epochs: csvNumbers(p, 'epochs'),
    }),
  }
  const minBudget = str(p, 'min-budget')
  if (p.values['no-halving'] === true && (minBudget !== undefined || str(p, 'eta') !== undefined)) throw invalidConfig('--no-halving', 'drop --eta / --min-budget')
  const halving: HalvingOptions | false = p.values['no-halving'] === true ? false : defined({ eta: int(p, 'eta'), minBudget: minBudget === undefined ? undefined : parseFraction(minBudget, '--min-budget') })
  let testTasks = csv(p, 'test-tasks')
  if (testTasks === undefined && p.values['eval-test'] === true && glueTask === undefined) {
    if (trainSet === undefined) throw invalidConfig('--eval-test', 'name the test tasks with --test-tasks')
    try {
      testTasks = [resolveTask(trainSet).name]
    } catch {
      throw invalidConfig('--eval-test', `training set ${trainSet} has no test task of the same name; name them with --test-tasks`)
    }
  }
  const devMetric = str(p, 'dev-metric')
  return {
    data,
    dataDir: str(p, 'data-dir'),
    outputDir: str(p, 'output') ?? 'reft-search',
    space,
    sampling: str(p, 'sampling') === undefined ? undefined : checkOneOf('--sampling', str(p, 'sampling'), ['grid', 'random'] as const),
    trials: int(p, 'trials'),
    seed: int(p, 'seed'),
    halving,
    devSize: int(p, 'dev-size'),
    devShuffle: p.values['dev-shuffle'] === true,
    ...(devSource === undefined ? {} : { devSource }),
    devMetric: devMetric === undefined ? undefined : checkOneOf('--dev-metric', devMetric, ['accuracy', 'loss', 'matthews_correlation', 'pearson'] as const),
    train: defined({
      batchSize: int(p, 'batch-size'),
      gradientAccumulation: int(p, 'grad-accum'),
      warmupRatio: num(p, 'warmup-ratio'),
      weightDecay: num(p, 'weight-decay'),
      maxLength: int(p, 'max-length'),
      component: str(p, 'component') as NonNullable<SearchOptions['train']>['component'],
      tied: p.values['no-tied'] === true ? false : undefined,
      dropout: num(p, 'dropout'),
    }),
    eval: defined({
      batchSize: int(p, 'eval-batch-size'),
      maxNewTokens: int(p, 'max-new-tokens'),
      scoring: str(p, 'scoring') === undefined ? undefined : checkOneOf('--scoring', str(p, 'scoring'), ['pyreft', 'llm-adapters'] as const),
    }),
    testTasks,
    ...(glueTask === undefined ? {} : { evalTest: p.values['eval-test'] === true }),
    testLimit: int(p, 'test-limit'),
    compareDefault: p.values['compare-default'] === true,
  }
}

/** Runs `reft search`. */
export async function searchCommand(args: string[], io: CliIo): Promise<void> {
  const p = parseFlags(args, searchFlags, false)
  const options = await searchOptionsFromFlags(p)
  // A GLUE search defaults to MiniLM and refuses a decoder before anything is written.
  const model: Model = 'glue' in options.data ? (await openEncoder(str(p, 'model'), io, 'reft search --glue')).model : await openModel(str(p, 'model'), io)
  const controller = new AbortController()
  const onSigint = (): void => {
    io.err('\ninterrupted: stopping (finished runs stay in the trials file; rerun the command to resume)\n')
    controller.abort()
  }
  process.once('SIGINT', onSigint)
  const progress = createSearchProgressReporter({ stream: { write: (t) => io.err(t), isTTY: process.stderr.isTTY } })
  try {
    const r = await search({ ...options, model, signal: controller.signal, onProgress: progress.update })
    progress.finish()
    const rel = (path: string): string => {
      const r = relative(process.cwd(), path)
      return r === '' ? '.' : r.startsWith('..') || isAbsolute(r) ? path : r
    }
    io.out(`selected: ${describeConfig(r.selected.config)} (trial ${r.selected.id}; ${describeScore(r.selected, r.devMetric)})\n`)
    if (r.default !== undefined) io.out(`default:  ${describeConfig(r.default.config)} (${describeScore(r.default, r.devMetric)})\n`)
    if (r.test.length > 0) io.out(`\n${formatTestTable(r.test)}\n`)
    for (const c of r.comparison) io.out(`selected vs default: ${formatComparison(c)}\n\n`)
    io.out(`adapter: ${rel(r.adapterDir)}\nreport: ${rel(r.report.markdown)}, ${rel(r.report.json)}; trials: ${rel(r.trialsFile)}\n`)
  } finally {
    progress.finish()
    process.off('SIGINT', onSigint)
    model.dispose()
  }
}
