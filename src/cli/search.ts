/**
 * `reft search`: hyperparameter search with successive halving on a dev slice held out from the
 * training split, resumable from `<output>/trials.jsonl`, with reports and an optional test-split
 * comparison of the selected and default configurations. Ctrl-C stops between steps / batches
 * (ERR_ABORTED, exit status 130); finished runs stay in the trials file.
 */
import { readFile } from 'node:fs/promises'
import { isAbsolute, relative } from 'node:path'
import type { InstructionExample } from '../datasets/instruction.js'
import { ReftError, invalidConfig } from '../errors.js'
import { resolveTask } from '../evaluation/tasks.js'
import { trainingSets } from '../evaluation/training-sets.js'
import type { SearchData } from '../search/data.js'
import { devSplitDefaults } from '../search/data.js'
import { defaultEta, type HalvingOptions } from '../search/halving.js'
import type { SearchOptions } from '../search/options.js'
import { createSearchProgressReporter } from '../search/progress.js'
import { describeScore, formatTestTable } from '../search/report.js'
import { search } from '../search/search.js'
import { defaultSearchSpace, describeConfig, formatLayerSet, type SearchSpace } from '../search/space.js'
import { checkOneOf, describe } from '../validate.js'
import { type CliIo, int, num, openModel, parseFlags, type Parsed, str } from './common.js'
import { readExamples } from './data.js'

const s = { type: 'string' } as const
const b = { type: 'boolean' } as const

/** Flags of `reft search`. */
export const searchFlags = {
  model: s, train: s, data: s, limit: s, 'data-dir': s, 'dev-size': s, 'dev-shuffle': b, 'dev-metric': s,
  space: s, kind: s, layers: s, positions: s, rank: s, lr: s, epochs: s,
  sampling: s, trials: s, seed: s, eta: s, 'min-budget': s, 'no-halving': b,
  'batch-size': s, 'grad-accum': s, 'warmup-ratio': s, 'weight-decay': s, 'max-length': s, component: s, 'no-tied': b,
  'eval-batch-size': s, 'max-new-tokens': s, scoring: s,
  'eval-test': b, 'test-tasks': s, 'test-limit': s, 'compare-default': b, output: s,
}

const d = defaultSearchSpace
const listText = (xs: readonly unknown[]): string => xs.map((x) => (typeof x === 'string' || typeof x === 'number' ? String(x) : formatLayerSet(x as number[]))).join(',')

export const searchHelp = `usage: reft search (--train SET | --data FILE) [flags]

Searches intervention hyperparameters with successive halving. The last --dev-size examples of
the TRAIN split are held out as a dev slice (pyreft holds out GSM8K's last 300 the same way);
trials never train on it and are ranked on it. Each rung keeps the best 1/eta trials and retrains
them FROM SCRATCH with eta times the budget (a budget is a fraction of a trial's full run of
epochs x steps-per-epoch optimizer steps); the last rung trains at the full budget. Finished runs
go to OUTPUT/trials.jsonl, so rerunning the same command resumes; other settings are refused.

data
  --train SET            a training set of the evaluation harness (listed at the end)
  --data FILE            or your own JSON/JSONL {prompt|instruction, output} file (dev metric loss)
  --limit N              use the first N examples (before holding out the dev slice)
  --data-dir DIR         data root (default: $REFT_DATA_DIR, else ../shared/data)
  --dev-size N           dev slice = the last N training examples (default ${devSplitDefaults.devSize})
  --dev-shuffle          take them after a seeded shuffle instead of in file order
  --dev-metric M         accuracy (greedy generation, pyreft scoring; default for commonsense and
                         math sets) | loss (mean held-out loss; cheaper; the only one for --data)

search space (comma-separated candidates; defaults in brackets)
  --space FILE           JSON {"kind":[..],"layers":[..],"positions":[..],"rank":[..],"lr":[..],
                         "epochs":[..]}; the flags below override its keys
  --kind LIST            [${listText(d.kind)}]  (loreft direft direft_orth noreft consreft lobireft)
  --layers LIST          layer sets, indices joined by ';': [${listText(d.layers)}], e.g. "middle,all,0;2;4"
  --positions LIST       [${listText(d.positions)}]
  --rank LIST            [${listText(d.rank)}]
  --lr LIST              [${listText(d.lr)}]
  --epochs LIST          epochs of a full-budget run [${listText(d.epochs)}]
  --sampling S           random (default; seeded, without replacement) | grid (every point)
  --trials N             random mode: trials to draw (default 9)
  --seed N               sampling, dev shuffle, initialisation and batch order (default 42)
  --eta N                keep the top 1/eta per rung (default ${defaultEta})
  --min-budget F         first rung's budget, e.g. 1/9 or 0.25 (default eta^-floor(log_eta trials))
  --no-halving           train every trial at the full budget (plain grid/random search)

fixed training settings
  --batch-size N (4)  --grad-accum N (1)  --warmup-ratio R (0)  --weight-decay W (0)
  --max-length N      --component C (block_output)  --no-tied (untied prefix/suffix weights)

scoring and reports
  --eval-batch-size N    prompts per generate call on dev/test (default 4)
  --max-new-tokens N     (default 32 for commonsense, 256 for math)
  --scoring S            pyreft (default) | llm-adapters
  --eval-test            evaluate the selected configuration on the test split (the task named
                         like --train, or --test-tasks)
  --test-tasks LIST      test tasks for --eval-test (implies it)
  --test-limit N         first N examples of each test task
  --compare-default      also train reft train's defaults (loreft, middle layer, l1, rank 4,
                         lr 4e-3, 1 epoch) at the full budget and report their dev/test scores
  --output DIR           trials.jsonl, search.json, search.md, trials/, adapter/ (default reft-search)

training sets: ${trainingSets.map((t) => t.name).join(', ')}
`

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

/** Builds `search` options (without model and callbacks) from parsed flags. */
export async function searchOptionsFromFlags(p: Parsed): Promise<Omit<SearchOptions, 'model'>> {
  const trainSet = str(p, 'train')
  const dataFile = str(p, 'data')
  if ((trainSet === undefined) === (dataFile === undefined)) throw invalidConfig('--train', 'give one of --train SET or --data FILE')
  const limit = int(p, 'limit')
  const data: SearchData =
    trainSet !== undefined ? { trainingSet: trainSet, limit } : { examples: (await readExamples(dataFile!)) as InstructionExample[], name: dataFile!, limit }
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
  if (testTasks === undefined && p.values['eval-test'] === true) {
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
    devMetric: devMetric === undefined ? undefined : checkOneOf('--dev-metric', devMetric, ['accuracy', 'loss'] as const),
    train: defined({
      batchSize: int(p, 'batch-size'),
      gradientAccumulation: int(p, 'grad-accum'),
      warmupRatio: num(p, 'warmup-ratio'),
      weightDecay: num(p, 'weight-decay'),
      maxLength: int(p, 'max-length'),
      component: str(p, 'component') as NonNullable<SearchOptions['train']>['component'],
      tied: p.values['no-tied'] === true ? false : undefined,
    }),
    eval: defined({
      batchSize: int(p, 'eval-batch-size'),
      maxNewTokens: int(p, 'max-new-tokens'),
      scoring: str(p, 'scoring') === undefined ? undefined : checkOneOf('--scoring', str(p, 'scoring'), ['pyreft', 'llm-adapters'] as const),
    }),
    testTasks,
    testLimit: int(p, 'test-limit'),
    compareDefault: p.values['compare-default'] === true,
  }
}

/** Runs `reft search`. */
export async function searchCommand(args: string[], io: CliIo): Promise<void> {
  const p = parseFlags(args, searchFlags, false)
  const options = await searchOptionsFromFlags(p)
  const model = await openModel(str(p, 'model'), io)
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
    io.out(`adapter: ${rel(r.adapterDir)}\nreport: ${rel(r.report.markdown)}, ${rel(r.report.json)}; trials: ${rel(r.trialsFile)}\n`)
  } finally {
    progress.finish()
    process.off('SIGINT', onSigint)
    model.dispose()
  }
}
