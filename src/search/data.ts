/**
 * The data of a search: a training portion and a dev slice held out from the TRAIN split, as
 * pyreft holds out GSM8K's last 300 training examples for its hyperparameter search. The dev
 * slice is the last `devSize` examples, taken from the file order (after `limit`), or, with
 * `devShuffle`, from a `shuffledIndices(n, seed)` permutation of it. Trials never train on it;
 * the test splits are never looked at until the search has chosen.
 */
import type { InstructionExample } from '../datasets/instruction.js'
import { ReftError, invalidConfig } from '../errors.js'
import { readDataFile, type DataDirOptions } from '../evaluation/data-dir.js'
import { toTaskRecords, type EvalExample, type TaskSpec } from '../evaluation/tasks.js'
import { promptFor, trainingExample, type TaskRecord } from '../evaluation/templates.js'
import { loadTrainingSet, resolveTrainingSet, type TrainingSetSpec } from '../evaluation/training-sets.js'
import { shuffledIndices } from '../random.js'
import { checkInteger } from '../validate.js'

/** Where the search's examples come from. */
export type SearchData =
  /** A training set of the evaluation harness (`'ARC-Easy'`, `'math_1k'`, …), read from the data directory. */
  | ({ trainingSet: string; limit?: number } & DataDirOptions)
  /** Your own prompt/output pairs (dev metric `'loss'` only: there is no gold answer to score). */
  | { examples: readonly InstructionExample[]; name?: string; limit?: number }

/** Options of {@link splitSearchData}. */
export interface DevSplitOptions {
  /** Examples held out at the end for selection. @defaultValue `100` */
  devSize?: number
  /** Shuffle (seeded) before taking the last `devSize`. @defaultValue `false` (the file's last examples) */
  devShuffle?: boolean
  /** @defaultValue `42` */
  seed?: number
}

/** Defaults of {@link DevSplitOptions}. */
export const devSplitDefaults = { devSize: 100, devShuffle: false, seed: 42 } as const

/** A split ready for training and scoring. */
export interface SearchSplit {
  /** Training set name, or the `name` of custom examples (`'custom'`). */
  name: string
  /** The task family, when examples carry gold answers (commonsense / math training sets). */
  task: TaskSpec | undefined
  /** Examples trials train on. */
  train: InstructionExample[]
  /** The dev slice as training-format examples (for the dev loss). */
  dev: InstructionExample[]
  /** The dev slice as evaluation examples (for the dev accuracy); empty without gold answers. */
  devEval: EvalExample[]
}

function loadRecords(spec: TrainingSetSpec, options: DataDirOptions): { examples: InstructionExample[]; records: TaskRecord[] | undefined } {
  // Instruction sets have no gold answers: take them exactly as the harness renders them.
  if (spec.kind === 'instruct') return { examples: loadTrainingSet(spec.name, { dataDir: options.dataDir }).examples, records: undefined }
  const kind = spec.kind
  const records: TaskRecord[] = []
  for (const file of spec.files) {
    const rows = readDataFile(file, `put the file named in shared/data/README.md there (training set ${spec.name})`, options)
    records.push(...toTaskRecords(rows, file))
  }
  return { examples: records.map((r) => trainingExample(kind, r)), records }
}

/** The permutation of `0 … n−1` the dev slice is cut from. */
export function devOrder(n: number, shuffle: boolean, seed: number): number[] {
  return shuffle ? shuffledIndices(n, seed) : Array.from({ length: n }, (_, i) => i)
}

/**
 * Loads the data and cuts the dev slice. `limit` keeps the first N examples of the source before
 * anything else. ERR_OUT_OF_RANGE when fewer than `devSize + 1` examples remain.
 */
export function splitSearchData(data: SearchData, options: DevSplitOptions = {}): SearchSplit {
  const devSize = checkInteger('devSize', options.devSize ?? devSplitDefaults.devSize, { min: 1 })
  const seed = checkInteger('seed', options.seed ?? devSplitDefaults.seed)
  let name: string
  let examples: InstructionExample[]
  let records: TaskRecord[] | undefined
  let task: TaskSpec | undefined
  if ('trainingSet' in data) {
    const spec = resolveTrainingSet(data.trainingSet)
    ;({ examples, records } = loadRecords(spec, data))
    name = spec.name
    if (spec.kind !== 'instruct') task = { name: spec.name, kind: spec.kind, file: spec.files.join(','), aliases: [], description: `${spec.description}, dev slice` }
  } else {
    if (!Array.isArray(data.examples)) throw invalidConfig('data.examples', 'expected an array of {prompt, output}')
    examples = [...data.examples]
    name = data.name ?? 'custom'
  }
  if (data.limit !== undefined) {
    const limit = checkInteger('limit', data.limit, { min: 1 })
    examples = examples.slice(0, limit)
    records = records?.slice(0, limit)
  }
  if (examples.length <= devSize) {
    throw new ReftError('ERR_OUT_OF_RANGE', `devSize: ${name} has ${examples.length} examples; holding out ${devSize} leaves none to train on`, { field: 'devSize' })
  }
  const order = devOrder(examples.length, options.devShuffle ?? devSplitDefaults.devShuffle, seed)
  const trainIdx = order.slice(0, order.length - devSize)
  const devIdx = order.slice(order.length - devSize)
  const devEval: EvalExample[] =
    records === undefined || task === undefined
      ? []
      : devIdx.map((i, id) => ({ ...records![i]!, id, prompt: promptFor(task!.kind, records![i]!.instruction) }))
  return {
    name,
    task,
    train: trainIdx.map((i) => examples[i]!),
    dev: devIdx.map((i) => examples[i]!),
    devEval,
  }
}
