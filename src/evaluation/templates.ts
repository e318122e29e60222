/**
 * The prompt templates, targets and triggers of pyreft's paper scripts
 * (stanfordnlp/pyreft `examples/loreft/task_config.py`, `templates.py`, `dataset.py`):
 *
 * - commonsense: `task_prompt_template = "%s\n"`, `trigger_tokens = "the correct answer is "`;
 *   training input `base_prompt + trigger_tokens + answer + eos` (dataset.py lines 125-127).
 * - math: `task_prompt_template = alpaca_prompt_no_input_template`, `trigger_tokens = "### Response:"`;
 *   training input `base_prompt + output + eos` (dataset.py lines 128-130).
 *
 * EOS is appended by `ReftModel.dataset` (it knows the token id), so targets here have none.
 */
import { alpacaPrompt, type InstructionExample } from '../datasets/instruction.js'

/** The two generative task families of the paper's commonsense / arithmetic tables. */
export type TaskKind = 'commonsense' | 'math'

/** pyreft `trigger_tokens` of the commonsense task. */
export const commonsenseTrigger = 'the correct answer is '
/** pyreft `trigger_tokens` of the math task. */
export const mathTrigger = '### Response:'

/** The trigger that marks where the answer starts in the decoded text. */
export function triggerFor(kind: TaskKind): string {
  return kind === 'commonsense' ? commonsenseTrigger : mathTrigger
}

/** Commonsense prompt: `instruction + "\n"`. */
export function commonsensePrompt(instruction: string): string {
  return `${instruction}\n`
}

/** Commonsense target (without EOS): `"the correct answer is " + answer`. */
export function commonsenseTarget(answer: string): string {
  return commonsenseTrigger + answer
}

/** Math prompt: the Alpaca no-input template around `instruction`. */
export function mathPrompt(instruction: string): string {
  return alpacaPrompt(instruction)
}

/** The prompt of a task family. */
export function promptFor(kind: TaskKind, instruction: string): string {
  return kind === 'commonsense' ? commonsensePrompt(instruction) : mathPrompt(instruction)
}

/** The fields of an LLM-Adapters record used here. */
export interface TaskRecord {
  instruction: string
  /** The gold label (`true`, `answer3`, `A`, `576.0`, …). */
  answer: string
  /** commonsense: `"the correct answer is <answer>"`; math: a chain-of-thought rationale. */
  output: string
}

/**
 * A training example with the prompt already rendered (use the default `{ kind: 'raw' }` format
 * with `ReftModel.dataset`, which appends EOS): commonsense target = trigger + answer, math
 * target = the record's `output` rationale.
 */
export function trainingExample(kind: TaskKind, record: TaskRecord): InstructionExample {
  return kind === 'commonsense'
    ? { prompt: commonsensePrompt(record.instruction), output: commonsenseTarget(record.answer) }
    : { prompt: mathPrompt(record.instruction), output: record.output }
}
