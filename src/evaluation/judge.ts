/**
 * A local pairwise judge in the style of AlpacaEval's log-probability annotators: the judge model
 * reads an instruction and two responses labelled A and B, and its verdict is read from its
 * next-token distribution (`log p("A")` vs `log p("B")`, each summed over the label's
 * single-token spellings with and without a leading space), not from free generation. One forward
 * pass per verdict; the caller asks twice with the responses swapped to cancel position bias.
 *
 * This is not AlpacaEval: AlpacaEval 1.0 uses GPT-4 as the annotator and text-davinci-003 as the
 * reference. A local judge as small as SmolLM2-135M is weak, so its verdicts are a smoke signal.
 */
import { renderChatPrompt } from '../datasets/instruction.js'
import { ReftError, invalidConfig } from '../errors.js'
import type { Model } from '../model.js'
import type { Tokenize } from '../datasets/supervised.js'
import { openBaseForward } from './base-forward.js'

/** The judge's system message (chat-template judges only). */
export const defaultJudgeSystemPrompt = 'You are a careful and impartial judge of answers written by AI assistants.'

/**
 * The judge's user message. `{instruction}`, `{response_a}` and `{response_b}` are filled in (in
 * one pass, so a response that contains a placeholder is left as written).
 */
export const defaultJudgeTemplate =
  'I am comparing two AI assistants. Below are an instruction and the two responses they gave. ' +
  'Decide which response a careful human would prefer: the one that follows the instruction more helpfully, ' +
  'accurately and completely. Do not let the order or the length of the responses decide.\n\n' +
  '## Instruction\n{instruction}\n\n## Response A\n{response_a}\n\n## Response B\n{response_b}\n\n' +
  '## Task\nWhich response is better? Answer with exactly one letter, A or B, and nothing else.'

/**
 * The start of the judge's answer, appended after the prompt (after the assistant header with a
 * chat template), so the next token is the verdict: SmolLM2-135M puts about half its probability
 * on "A"/"B" after it, against under a fifth with nothing there.
 */
export const defaultAnswerPrefix = 'Better response:'

/** Fills {@link defaultJudgeTemplate} (or `template`) with the instruction and the two responses. */
export function formatJudgePrompt(instruction: string, responseA: string, responseB: string, template = defaultJudgeTemplate): string {
  for (const key of ['{instruction}', '{response_a}', '{response_b}']) {
    if (!template.includes(key)) throw invalidConfig('judgeTemplate', `must contain ${key}`)
  }
  const values: Record<string, string> = { '{instruction}': instruction, '{response_a}': responseA, '{response_b}': responseB }
  return template.replace(/\{instruction\}|\{response_a\}|\{response_b\}/g, (k) => values[k]!)
}

/** Token ids that spell each label as one token. */
export interface JudgeLabelIds {
  a: number[]
  b: number[]
}

/** The single-token spellings of `A` / `B` (bare and with a leading space). ERR_UNSUPPORTED_MODEL when a label has none. */
export function judgeLabelIds(tokenizer: Tokenize, labels: readonly [string, string] = ['A', 'B']): JudgeLabelIds {
  const ids = (label: string): number[] => {
    const found = new Set<number>()
    for (const text of [label, ` ${label}`]) {
      const enc = tokenizer.encode(text, false)
      if (enc.length === 1) found.add(enc[0]!)
    }
    if (found.size === 0) throw new ReftError('ERR_UNSUPPORTED_MODEL', `the judge's tokenizer has no single token for ${JSON.stringify(label)}`)
    return [...found]
  }
  return { a: ids(labels[0]), b: ids(labels[1]) }
}

const logSumExp = (xs: readonly number[]): number => {
  const m = Math.max(...xs)
  if (m === -Infinity) return -Infinity
  let s = 0
  for (const x of xs) s += Math.exp(x - m)
  return m + Math.log(s)
}

/** Log-probabilities of the two labels under the softmax of one logits row. */
export function labelLogProbs(row: Float32Array | readonly number[], labels: JudgeLabelIds): { a: number; b: number } {
  let m = -Infinity
  for (let i = 0; i < row.length; i++) if (row[i]! > m) m = row[i]!
  let s = 0
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - m)
  const lse = m + Math.log(s)
  const lp = (ids: number[]): number => {
    for (const id of ids) if (id >= row.length) throw new ReftError('ERR_OUT_OF_RANGE', `label token ${id} outside the vocabulary (${row.length})`)
    return logSumExp(ids.map((id) => row[id]! - lse))
  }
  return { a: lp(labels.a), b: lp(labels.b) }
}

/** The judge's verdict on one ordered pair. */
export interface JudgeVerdict {
  /** log p(first label) for the next token. */
  logProbA: number
  /** log p(second label) for the next token. */
  logProbB: number
}

/** Anything that judges an ordered pair (a {@link createLogitJudge} judge, or a fake in tests). */
export interface PairJudge {
  judge(instruction: string, responseA: string, responseB: string, signal?: AbortSignal): Promise<JudgeVerdict>
}

/** Options of {@link createLogitJudge}. */
export interface LogitJudgeOptions {
  /** The user message, with `{instruction}`, `{response_a}`, `{response_b}`. @defaultValue {@link defaultJudgeTemplate} */
  template?: string
  /** @defaultValue {@link defaultJudgeSystemPrompt} */
  systemPrompt?: string
  /** Render with the judge's chat template. @defaultValue `true` when the model has one */
  chat?: boolean
  /** Text the judge's answer starts with; the verdict is the token after it. @defaultValue {@link defaultAnswerPrefix} */
  answerPrefix?: string
}

/** A judge backed by a loaded model; `dispose` frees its forward handle (not the model). */
export interface LogitJudge extends PairJudge {
  /** The exact text the judge reads for an ordered pair. */
  promptFor(instruction: string, responseA: string, responseB: string): string
  /** Label token ids in use. */
  readonly labels: JudgeLabelIds
  /** Whether the chat template is used. */
  readonly chat: boolean
  dispose(): void
}

/**
 * A judge reading `model`'s next-token log-probabilities. Prompts are tokenised without added
 * special tokens (the chat template's own markers are kept whole). Nothing stops a prompt longer
 * than the judge's context; keep `maxNewTokens` modest.
 */
export function createLogitJudge(model: Model, options: LogitJudgeOptions = {}): LogitJudge {
  const info = model.info()
  if ((info as { kind?: string }).kind === 'encoder') throw new ReftError('ERR_UNSUPPORTED_MODEL', 'the judge must be a causal language model, not an encoder')
  const hasTemplate = typeof info.chatTemplate === 'string' && info.chatTemplate !== ''
  const chat = options.chat ?? hasTemplate
  if (chat && !hasTemplate) throw new ReftError('ERR_UNSUPPORTED_MODEL', 'the judge model has no chat template')
  const template = options.template ?? defaultJudgeTemplate
  const system = options.systemPrompt ?? defaultJudgeSystemPrompt
  const answerPrefix = options.answerPrefix ?? defaultAnswerPrefix
  const labels = judgeLabelIds(model)
  const chatFormat = chat ? model.chatFormat(system) : undefined
  const promptFor = (instruction: string, a: string, b: string): string => {
    const user = formatJudgePrompt(instruction, a, b, template)
    if (chatFormat === undefined || chatFormat.kind !== 'chat') return `${system}\n\n${user}\n\n${answerPrefix}`
    return renderChatPrompt(user, { ...chatFormat, stripBos: false }) + answerPrefix
  }
  const forward = openBaseForward(model)
  const vocab = info.vocabSize
  return {
    labels,
    chat,
    promptFor,
    judge: async (instruction, a, b, signal) => {
      if (signal?.aborted === true) throw new ReftError('ERR_ABORTED', 'judging aborted')
      const ids = model.encode(promptFor(instruction, a, b), false)
      const n = ids.length
      const out = await forward.forward({ inputIds: ids, batchSize: 1, seqLen: n, attentionMask: new Uint8Array(n).fill(1) }, true)
      const v = out.dims[2] ?? vocab
      if (out.logits.length !== n * v) throw new ReftError('ERR_BACKEND', `judge logits have ${out.logits.length} values, expected ${n} × ${v}`)
      const lp = labelLogProbs(out.logits.subarray((n - 1) * v, n * v), labels)
      return { logProbA: lp.a, logProbB: lp.b }
    },
    dispose: () => forward.dispose(),
  }
}
