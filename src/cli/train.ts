/**
 * `reft train`: read a run config and/or flags, build the dataset, train with a progress bar,
 * save the adapter and `loss.svg` into the output directory. Ctrl-C aborts through an
 * AbortSignal; nothing is saved then (checkpoints are written atomically, so none is partial).
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { InterventionConfig } from '../config.js'
import { ReftError, invalidConfig } from '../errors.js'
import { loadReft } from '../load-reft.js'
import type { Model } from '../model.js'
import { writeLossCurve } from '../plot.js'
import { createProgressReporter } from '../progress.js'
import type { ReftModel } from '../reft-model.js'
import { train } from '../trainer.js'
import { type CliIo, openModel, parseFlags, placementFlags, placementHelp, str } from './common.js'
import { readExamples } from './data.js'
import { mergeRunConfig, readConfigFile, type RunConfig } from './train-config.js'

const s = { type: 'string' } as const
const b = { type: 'boolean' } as const

/** Flags of `reft train`. */
export const trainFlags = {
  config: s, model: s, data: s, kind: s, layers: s, component: s, positions: s, rank: s, tied: b, 'no-tied': b, dropout: s,
  epochs: s, 'batch-size': s, 'grad-accum': s, lr: s, 'warmup-ratio': s, 'weight-decay': s, 'max-length': s,
  chat: b, format: s, limit: s, seed: s, output: s, 'checkpoint-every': s, resume: s, 'group-by-length': b, recompute: b,
  ...placementFlags,
}

export const trainHelp = `usage: reft train [--config run.json] [flags]

Trains interventions on a JSON array / JSONL file of {prompt|instruction, output[, input]} records
and saves the adapter (plus loss.svg) to --output. Flags override the config file.

  --config FILE          run config: {"model","device","dtype","data","output","chat","format","limit",
                         "maxLength","seed","resume","intervention":{...},"train":{...}}
  --model PATH           HF directory, .gguf file or hf:org/name (default: SmolLM2-135M-Instruct)
${placementHelp}  --data FILE            training examples (required)
  --kind KIND            loreft | direft | direft_orth | noreft | consreft | lobireft (default loreft)
  --layers L             15, 3,9 or all (default: the middle layer)
  --component C          block_output | block_input | attention_output | mlp_output
  --positions P          f<n>+l<m>, f<n> or l<m> (default l1)
  --rank R               low-rank dimension (default 4)
  --tied / --no-tied     share weights between prefix and suffix positions (default tied)
  --dropout P            dropout on the edit during training (default 0)
  --epochs N             (default 1)          --batch-size N     (default 4)
  --grad-accum N         (default 1)          --lr LR            (default 4e-3)
  --warmup-ratio R       (default 0)          --weight-decay W   (default 0)
  --max-length N         truncate examples to N tokens
  --group-by-length      batch examples of similar length together (less padding; off as in pyreft)
  --recompute            recompute layer activations in the backward: far less memory, slower steps (1.4× measured)
  --chat                 format prompts with the model's chat template
  --format F             raw | alpaca | no_header (default raw)
  --limit N              use the first N examples
  --seed N               initialisation and shuffle seed (default 42)
  --output DIR           adapter directory (default reft-adapter)
  --checkpoint-every N   write DIR/checkpoint-<step>/ every N steps
  --resume CKPT          continue from a checkpoint (its interventions; same data and train flags)
`

async function checkOutput(dir: string): Promise<void> {
  const st = await stat(dir).catch(() => undefined)
  if (st !== undefined && !st.isDirectory()) throw new ReftError('ERR_IO', `--output ${dir} exists and is not a directory`)
}

/**
 * Saves into `dir` without replacing it: `save` swaps a whole directory into place, which would
 * delete checkpoints (or anything else) already in `dir`, so save beside them and move the files.
 */
async function saveAdapter(reft: ReftModel, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  const tmp = join(dir, `.adapter-tmp-${process.pid}`)
  try {
    await reft.save(tmp)
    await rm(join(dir, 'optimizer.safetensors'), { force: true })
    for (const f of await readdir(tmp)) await rename(join(tmp, f), join(dir, f))
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

function createReft(model: Model, cfg: RunConfig): Promise<ReftModel> | ReftModel {
  if (cfg.resume !== undefined) return loadReft(cfg.resume, model, { withOptimizer: true })
  const layers = cfg.intervention.layers ?? [Math.floor(model.info().numLayers / 2)]
  return model.withInterventions({ ...cfg.intervention, layers } as InterventionConfig, { seed: cfg.seed })
}

/** Runs `reft train`. */
export async function trainCommand(args: string[], io: CliIo): Promise<void> {
  const p = parseFlags(args, trainFlags, false)
  const configFile = str(p, 'config')
  const cfg = mergeRunConfig(configFile === undefined ? {} : await readConfigFile(configFile), p)
  if (cfg.data === undefined) throw invalidConfig('--data', 'a training file is required (--data FILE or "data" in the config)')
  const examples = await readExamples(cfg.data, cfg.limit)
  await checkOutput(cfg.output)
  const model = await openModel(cfg.model, io, { device: cfg.device, dtype: cfg.dtype })
  let reft: ReftModel | undefined
  try {
    reft = await createReft(model, cfg)
    const info = model.info()
    const format = cfg.chat ? model.chatFormat() : { kind: cfg.format }
    const items = reft.dataset(examples, { format, maxLength: cfg.maxLength })
    const c = reft.config
    io.err(`training ${c.kind} rank ${c.rank} on layers ${c.layers.join(',')} (${c.numInterventions} interventions) with ${items.length} examples\n`)

    const controller = new AbortController()
    const onSigint = (): void => {
      io.err('\ninterrupted: stopping after the current step (no adapter is saved)\n')
      controller.abort()
    }
    process.once('SIGINT', onSigint)
    const progress = createProgressReporter()
    const checkpoints = cfg.train.checkpointEvery === undefined ? {} : { outputDir: cfg.output }
    let history
    try {
      history = await train(reft, items, {
        ...cfg.train,
        ...checkpoints,
        seed: cfg.train.seed ?? cfg.seed,
        padId: info.padTokenId ?? 0,
        resumeFrom: cfg.resume,
        signal: controller.signal,
        onProgress: progress.update,
      })
    } finally {
      progress.finish()
      process.off('SIGINT', onSigint)
    }

    await saveAdapter(reft, cfg.output)
    await writeLossCurve(join(cfg.output, 'loss.svg'), history)
    const pc = reft.trainableParameters()
    const first = history.steps[0]
    const last = history.steps.at(-1)
    if (first !== undefined && last !== undefined) io.out(`loss ${first.loss.toFixed(4)} -> ${last.loss.toFixed(4)} over ${last.step} steps\n`)
    io.out(`trainable intervention params: ${pc.interventionParams.toLocaleString('en-US')} || model params: ${pc.modelParams.toLocaleString('en-US')} || trainable%: ${pc.percent.toPrecision(4)}\n`)
    io.out(`saved adapter to ${cfg.output} (loss curve: ${join(cfg.output, 'loss.svg')})\n`)
  } finally {
    reft?.dispose()
    model.dispose()
  }
}
