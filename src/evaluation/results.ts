/** The result types of {@link evaluateTask} and the reports written from them. */
import type { TaskKind } from './templates.js'

/** One scored example. */
export interface EvalExampleResult {
  /** Index of the example in its task file. */
  id: number
  /** The prompt given to the model. */
  prompt: string
  /** The generated text (new tokens only). */
  generation: string
  /**
   * What was compared with `gold`: the stripped text after the trigger (commonsense), the option
   * letter (AQuA) or the extracted number as a string (`"Infinity"` when none was found).
   */
  prediction: string
  gold: string
  correct: boolean
}

/** Accuracy on one task. */
export interface TaskResult {
  task: string
  kind: TaskKind
  /** Examples scored. */
  n: number
  correct: number
  /** `correct / n` (0 when `n` is 0). */
  accuracy: number
  /** Wilson 95% interval of the accuracy. */
  ci95: [number, number]
  /** The generation budget used. */
  maxNewTokens: number
  examples: EvalExampleResult[]
}
