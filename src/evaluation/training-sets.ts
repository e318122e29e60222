/**
 * Training data for the paper's recipes, as `InstructionExample`s with pyreft's prompts already
 * rendered (pass them to `ReftModel.dataset` with the default raw format; it appends EOS).
 *
 * The paper's sets (commonsense_170k, math_10k, UltraFeedback) are too large for the shared data;
 * these are the substitutes its README lists: the commonsense train splits that exist, the
 * `commonsense` union of them, `math_data` / `math_1k` for arithmetic, and 1k instruction samples.
 */
import { alpacaPrompt, type InstructionExample } from '../datasets/instruction.js'
import { invalidConfig } from '../errors.js'
import { shuffledIndices } from '../random.js'
import { checkInteger } from '../validate.js'
import { readDataFile, stringField, type DataDirOptions } from './data-dir.js'
import { trainingExample, type TaskKind } from './templates.js'
import { toTaskRecords } from './tasks.js'

/** One training set. */
export interface TrainingSetSpec {
  name: string
  /** `commonsense` / `math` use the task templates; `instruct` uses the Alpaca template (with input when non-empty). */
  kind: TaskKind | 'instruct'
  /** Paths under the data directory (several for a union). */
  files: readonly string[]
  aliases: readonly string[]
  description: string
}

const csTrain = ['boolq', 'ARC-Easy', 'ARC-Challenge', 'openbookqa'].map((n) => `commonsense/${n}/train.json`)

/** Every training set. */
export const trainingSets: readonly TrainingSetSpec[] = [
  { name: 'boolq', kind: 'commonsense', files: [csTrain[0]!], aliases: [], description: 'BoolQ train (9,427)' },
  { name: 'ARC-Easy', kind: 'commonsense', files: [csTrain[1]!], aliases: ['arc_e', 'arc-e', 'arc_easy'], description: 'ARC-Easy train (2,251)' },
  { name: 'ARC-Challenge', kind: 'commonsense', files: [csTrain[2]!], aliases: ['arc_c', 'arc-c', 'arc_challenge'], description: 'ARC-Challenge train (1,119)' },
  { name: 'openbookqa', kind: 'commonsense', files: [csTrain[3]!], aliases: ['obqa'], description: 'OpenBookQA train (4,957)' },
  {
    name: 'commonsense', kind: 'commonsense', files: csTrain, aliases: [],
    description: 'union of the four train splits above (17,754; the commonsense_170k substitute)',
  },
  { name: 'math_data', kind: 'math', files: ['math/train/math_data.json'], aliases: [], description: "LLM-Adapters math_data.json (3,260; GSM-style CoT)" },
  { name: 'math_1k', kind: 'math', files: ['math/train/math_1k.jsonl'], aliases: [], description: "ReFT authors' math_1k dev set (919; math_10k style)" },
  { name: 'ultrafeedback_1k', kind: 'instruct', files: ['instruct/ultrafeedback_1k.jsonl'], aliases: ['ultrafeedback'], description: 'UltraFeedback sample (1,000)' },
  { name: 'alpaca_data_1k', kind: 'instruct', files: ['instruct/alpaca_data_1k.json'], aliases: ['alpaca'], description: 'Stanford Alpaca sample (1,000)' },
]

const byName = new Map<string, TrainingSetSpec>()
for (const t of trainingSets) for (const n of [t.name, ...t.aliases]) byName.set(n.toLowerCase(), t)

/** The training set called `name` (or an alias, any case); unknown names are ERR_INVALID_CONFIG. */
export function resolveTrainingSet(name: string): TrainingSetSpec {
  const t = byName.get(name.trim().toLowerCase())
  if (t === undefined) throw invalidConfig('trainingSet', `unknown training set ${JSON.stringify(name)}; choose from ${trainingSets.map((x) => x.name).join(', ')}`)
  return t
}

/** Options of {@link loadTrainingSet}. */
export interface LoadTrainingSetOptions extends DataDirOptions {
  /**
   * Shuffle the concatenated files with this seed before `limit` and `holdOut`, so a limited
   * union (`commonsense`) mixes its sources. @defaultValue no shuffle (file order)
   */
  shuffleSeed?: number
  /** Keep only the first `limit` examples (after concatenating the files). @defaultValue all */
  limit?: number
  /**
   * Hold out the last `holdOut` examples (pyreft takes GSM8K's last 300 as its dev split); they
   * come back in `heldOut`. @defaultValue `0`
   */
  holdOut?: number
}

/** Training examples, and the held-out tail when `holdOut` is set. */
export interface TrainingSet {
  spec: TrainingSetSpec
  examples: InstructionExample[]
  heldOut: InstructionExample[]
}

function instructExamples(rows: readonly Record<string, unknown>[], where: string): InstructionExample[] {
  return rows.map((r, i) => {
    const at = `${where} record ${i}`
    const input = typeof r.input === 'string' ? r.input : ''
    return { prompt: alpacaPrompt(stringField(r, 'instruction', at), input), output: stringField(r, 'output', at) }
  })
}

/**
 * Loads a training set with pyreft's templates: commonsense target `"the correct answer is " +
 * answer`, math target = the `output` rationale, instruct = Alpaca (`prompt_input` when `input`
 * is non-empty). Missing files are ERR_IO naming the path.
 */
export function loadTrainingSet(name: string, options: LoadTrainingSetOptions = {}): TrainingSet {
  const spec = resolveTrainingSet(name)
  let all: InstructionExample[] = []
  for (const file of spec.files) {
    const rows = readDataFile(file, `put the file named in shared/data/README.md there (training set ${spec.name})`, options)
    if (spec.kind === 'instruct') all = all.concat(instructExamples(rows, file))
    else {
      const kind = spec.kind
      all = all.concat(toTaskRecords(rows, file).map((r) => trainingExample(kind, r)))
    }
  }
  if (options.shuffleSeed !== undefined) {
    const order = shuffledIndices(all.length, checkInteger('shuffleSeed', options.shuffleSeed, { min: 0 }))
    all = order.map((i) => all[i]!)
  }
  if (options.limit !== undefined) all = all.slice(0, checkInteger('limit', options.limit, { min: 0 }))
  const holdOut = checkInteger('holdOut', options.holdOut ?? 0, { min: 0, max: all.length })
  return { spec, examples: all.slice(0, all.length - holdOut), heldOut: all.slice(all.length - holdOut) }
}
