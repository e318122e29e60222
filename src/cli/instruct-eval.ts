/**
 * `reft instruct-eval`: the local stand-in for Alpaca-Eval. Held-out UltraFeedback response loss
 * (adapter vs base) and a pairwise comparison against the base model judged by a local model's
 * "A"/"B" log-probabilities in both orders. Progress on stderr, the Markdown report on stdout,
 * `report.json` / `report.md` with `--output`. Ctrl-C stops between steps (exit status 130).
 */
import { resolve } from 'node:path'
import { invalidConfig } from '../errors.js'
import { loadAlpacaEvalPrompts, loadUltraFeedbackSplit, parsePromptSource } from '../evaluation/instruct-data.js'
import { formatInstructReport, writeInstructReport } from '../evaluation/instruct-report.js'
import { evaluateInstructionFollowing, instructFormats, type InstructProgress } from '../evaluation/instruct.js'
import { createLogitJudge, type LogitJudge } from '../evaluation/judge.js'
import { loadReft } from '../load-reft.js'
import { loadModel } from '../load-model.js'
import type { Model } from '../model.js'
import { createStatusLine, progressBar } from '../progress.js'
import { checkOneOf } from '../validate.js'
import { type CliIo, int, openModel, parseFlags, str } from './common.js'

const s = { type: 'string' } as const
const b = { type: 'boolean' } as const

/** Flags of `reft instruct-eval`. */
export const instructEvalFlags = {
  model: s, adapter: s, judge: s, 'held-out': s, limit: s, prompts: s, format: s, 'max-new-tokens': s, 'max-length': s,
  'batch-size': s, 'data-dir': s, output: s, 'no-loss': b, 'no-judge': b,
}

export const instructEvalHelp = `usage: reft instruct-eval --adapter DIR [--model PATH] [--judge PATH] [flags]

Instruction following without Alpaca-Eval (whose GPT-4 judge cannot be called here):

1. Held-out response loss: mean NLL per token and perplexity of the reference responses of the
   last --held-out rows of UltraFeedback-1k (train on the others: reft train --limit 900), under
   the adapter and under the base model without interventions.
2. Pairwise comparison: adapter and base model answer the same prompts greedily; a judge model
   reads each pair in both orders and its next-token log-probabilities of "A" vs "B" decide.
   A win needs both orders to agree; disagreements are ties. Win rate with a Wilson 95% interval.
   The default judge is the base model; a 135M judge is weak, and the report says so.

  --adapter DIR          the adapter to evaluate (required)
  --model PATH           base model (default: SmolLM2-135M-Instruct)
  --judge PATH           judge model (default: the base model itself)
  --held-out N           rows held out at the end of ultrafeedback_1k.jsonl (default 100)
  --limit N              score the first N held-out rows and compare on N prompts (default: all held-out; 100 prompts)
  --prompts SRC          comparison prompts: alpaca_eval (AlpacaEval 1.0, default) | held_out
  --format F             the adapter's training format: alpaca (default) | no_header | chat | raw
                         (as reft train --format / --chat; use the one the adapter was trained with)
  --max-new-tokens N     answer budget in the comparison (default 128)
  --max-length N         prompt + reference tokens for the loss (default 768)
  --batch-size B         prompts per generate call (default 4)
  --no-loss              skip the response loss
  --no-judge             skip the pairwise comparison
  --data-dir DIR         data root (default: $REFT_DATA_DIR, else ../shared/data)
  --output DIR           write report.json and report.md there
`

function progressPrinter(io: CliIo): { update: (e: InstructProgress) => void; finish: () => void } {
  const tty = process.stderr.isTTY === true
  const status = createStatusLine({ write: (t) => io.err(t) })
  let phase = ''
  const line = (e: InstructProgress): string =>
    e.phase === 'loss'
      ? `response loss (${e.model}) ${e.done}/${e.total}`
      : `pairwise ${e.done}/${e.total} | adapter wins ${e.wins}, base wins ${e.losses}, ties ${e.ties}`
  return {
    update: (e) => {
      const key = e.phase === 'loss' ? `loss-${e.model}` : 'pairwise'
      if (tty) {
        if (key !== phase) status.close()
        status.write(`${progressBar(e.total === 0 ? 1 : e.done / e.total, 20)} ${line(e)}`)
      } else if (e.done === e.total || e.done % 10 === 0 || key !== phase) io.err(`instruct-eval ${line(e)}\n`)
      phase = key
    },
    finish: () => status.close(),
  }
}

/** Runs `reft instruct-eval`. */
export async function instructEvalCommand(args: string[], io: CliIo): Promise<void> {
  const p = parseFlags(args, instructEvalFlags, false)
  const adapterDir = str(p, 'adapter')
  if (adapterDir === undefined) throw invalidConfig('--adapter', 'name the adapter to evaluate (see reft instruct-eval --help)')
  const format = checkOneOf('--format', str(p, 'format') ?? 'alpaca', instructFormats)
  const promptsArg = str(p, 'prompts')
  const noLoss = p.values['no-loss'] === true
  const noJudge = p.values['no-judge'] === true
  if (noLoss && noJudge) throw invalidConfig('--no-loss', 'with --no-judge too there is nothing to measure')
  const output = str(p, 'output')
  const judgePath = str(p, 'judge')
  const modelArg = str(p, 'model')
  // Read the data first, so a missing file fails before a model is loaded.
  const dataDir = str(p, 'data-dir')
  loadUltraFeedbackSplit({ dataDir, heldOut: int(p, 'held-out') })
  if (!noJudge && (promptsArg === undefined || parsePromptSource(promptsArg) === 'alpaca_eval')) loadAlpacaEvalPrompts({ dataDir, limit: 1 })

  const model = await openModel(modelArg, io)
  let judgeModel: Model | undefined
  let judge: LogitJudge | undefined
  const controller = new AbortController()
  const onSigint = (): void => controller.abort()
  process.once('SIGINT', onSigint)
  const progress = progressPrinter(io)
  try {
    const reft = await loadReft(adapterDir, model)
    try {
      if (!noJudge) {
        judgeModel = judgePath === undefined ? model : await loadModel(judgePath)
        judge = createLogitJudge(judgeModel)
      }
      const result = await evaluateInstructionFollowing(reft, {
        heldOut: int(p, 'held-out'),
        limit: int(p, 'limit'),
        prompts: promptsArg === undefined ? undefined : parsePromptSource(promptsArg),
        format,
        maxNewTokens: int(p, 'max-new-tokens'),
        maxLength: int(p, 'max-length'),
        batchSize: int(p, 'batch-size'),
        dataDir,
        judge,
        loss: !noLoss,
        onProgress: progress.update,
        signal: controller.signal,
      })
      progress.finish()
      const meta = {
        model: modelArg ?? model.path,
        adapter: resolve(adapterDir),
        judge: judge === undefined ? null : (judgePath ?? `${modelArg ?? model.path}, the base model`),
        judgeIsBase: judge !== undefined && judgePath === undefined,
        judgeParameters: judgeModel?.info().numParameters,
        date: new Date(),
        settings: {
          format, heldOut: int(p, 'held-out') ?? 100, limit: int(p, 'limit') ?? null, prompts: promptsArg ?? 'alpaca_eval',
          maxNewTokens: int(p, 'max-new-tokens') ?? 128, maxLength: int(p, 'max-length') ?? 768, greedy: true,
          judgeChatTemplate: judge?.chat ?? null, dataDir: dataDir ?? null,
        },
      }
      io.out(formatInstructReport(result, meta))
      if (output !== undefined) {
        const files = writeInstructReport(result, output, meta)
        io.out(`wrote ${files.json} and ${files.markdown}\n`)
      }
    } finally {
      reft.dispose()
    }
  } finally {
    progress.finish()
    process.off('SIGINT', onSigint)
    judge?.dispose()
    if (judgeModel !== undefined && judgeModel !== model) judgeModel.dispose()
    model.dispose()
  }
}
