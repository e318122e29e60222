/**
 * Answer extraction and scoring, ported line by line from stanfordnlp/pyreft
 * `examples/loreft/compute_metrics.py` (HEAD dafd0995, 2025-02-06):
 *
 * - `extract_output(pred, trigger)` (l. 84-93): `start = pred.find(trigger)`; not found → `''`;
 *   else `pred[start+len(trigger):].lstrip()`. `pred` is the whole decoded sequence (prompt +
 *   generation, `batch_decode(..., skip_special_tokens=True)`, l. 220).
 * - commonsense (l. 231-235): correct iff `generation.strip() == answer.strip()`: an exact match,
 *   so a model that keeps talking after the label (no EOS) is wrong.
 * - math (l. 236-246): gold not `is_float` (AQuA) → `extract_answer_letter`: the first match of
 *   `r'A|B|C|D|E'` in the stripped output, `''` when none (l. 62-81); else `extract_answer_number`:
 *   remove `,`, `re.findall(r'-?\d+\.?\d*')`, last match as float, `inf` when none (l. 44-59);
 *   correct iff `abs(float(answer) - generation) <= 0.001`.
 *
 * Deviations: Python's `\d` and `str.strip` are Unicode-aware; here `\d` is ASCII and `trim`
 * uses JavaScript's whitespace set (the data holds ASCII digits, so scores agree on it).
 */
import { commonsenseTrigger, mathTrigger, type TaskKind } from './templates.js'

/** pyreft `extract_output`: text after the first `trigger`, left-stripped; `''` when absent. */
export function extractOutput(text: string, trigger: string): string {
  if (trigger === '') return text
  const start = text.indexOf(trigger)
  if (start < 0) return ''
  return text.slice(start + trigger.length).trimStart()
}

/** pyreft `extract_answer_number`: the last number after removing commas, or `Infinity`. */
export function extractAnswerNumber(sentence: string): number {
  const matches = sentence.replace(/,/g, '').match(/-?\d+\.?\d*/g)
  if (matches === null || matches.length === 0) return Infinity
  return Number(matches[matches.length - 1])
}

/** pyreft `extract_answer_letter`: the first `A`–`E` anywhere in the text, or `''`. */
export function extractAnswerLetter(sentence: string): string {
  const m = /[A-E]/.exec(sentence.trim())
  return m === null ? '' : m[0]
}

/** Python's `float(s)`: the number, or `undefined` where Python raises ValueError. */
export function pyFloat(s: string): number | undefined {
  const t = s.trim().replace(/(?<=\d)_(?=\d)/g, '')
  if (/^[+-]?(inf|infinity)$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity
  if (/^[+-]?nan$/i.test(t)) return NaN
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)) return undefined
  return Number(t)
}

/** pyreft `is_float`: Python's `float(s)` succeeds. Decides AQuA-style letter answers. */
export function isFloat(s: string): boolean {
  return pyFloat(s) !== undefined
}

/**
 * LLM-Adapters `commomsense_evaluate.py` `extract_answer`: the first label of the dataset's
 * vocabulary found anywhere in the text (a lenient alternative to pyreft's exact match).
 */
export const commonsenseLabelPatterns: Readonly<Record<string, RegExp>> = {
  boolq: /true|false/,
  piqa: /solution1|solution2/,
  social_i_qa: /answer1|answer2|answer3|answer4|answer5/,
  'ARC-Challenge': /answer1|answer2|answer3|answer4|answer5/,
  'ARC-Easy': /answer1|answer2|answer3|answer4|answer5/,
  openbookqa: /answer1|answer2|answer3|answer4|answer5/,
  hellaswag: /ending1|ending2|ending3|ending4/,
  hellaswag_dev: /ending1|ending2|ending3|ending4/,
  winogrande: /option1|option2/,
}

/** How commonsense generations are scored. */
export type CommonsenseScoring = 'pyreft' | 'llm-adapters'

/** One scored generation. */
export interface Score {
  /** What was compared with the gold answer (a string, or the extracted number). */
  prediction: string | number
  correct: boolean
}

/**
 * pyreft's commonsense rule: `extract_output(prompt + generation, "the correct answer is ")`,
 * stripped, equal to `answer.strip()`. With `'llm-adapters'`, the first label of `dataset`'s
 * vocabulary in the text after the trigger (or in the whole generation when the trigger is absent).
 */
export function scoreCommonsense(fullText: string, answer: string, scoring: CommonsenseScoring = 'pyreft', dataset?: string): Score {
  const out = extractOutput(fullText, commonsenseTrigger)
  if (scoring === 'pyreft') {
    const prediction = out.trim()
    return { prediction, correct: prediction === answer.trim() }
  }
  const pattern = (dataset === undefined ? undefined : commonsenseLabelPatterns[dataset]) ?? /\S+/
  const m = pattern.exec(out === '' ? fullText : out)
  const prediction = m === null ? '' : m[0]
  return { prediction, correct: prediction === answer.trim() }
}

/** pyreft's math rule on `prompt + generation` (trigger `"### Response:"`). */
export function scoreMath(fullText: string, answer: string): Score {
  const out = extractOutput(fullText, mathTrigger)
  const gold = answer.trim()
  if (!isFloat(gold)) {
    const prediction = extractAnswerLetter(out)
    return { prediction, correct: prediction.trim() === gold }
  }
  const prediction = extractAnswerNumber(out)
  return { prediction, correct: Math.abs(pyFloat(gold)! - prediction) <= 0.001 }
}

/** Scores one generation of a task family; `fullText` is prompt + generated text. */
export function scoreGeneration(kind: TaskKind, fullText: string, answer: string, options: { scoring?: CommonsenseScoring; dataset?: string } = {}): Score {
  return kind === 'commonsense' ? scoreCommonsense(fullText, answer, options.scoring, options.dataset) : scoreMath(fullText, answer)
}
