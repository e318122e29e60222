/**
 * Messages between the page (main.ts) and the model worker (worker.ts). Every request carries an
 * `id`; the worker handles requests one at a time, in order, and ends each with `done` or `error`.
 */

export type Side = 'base' | 'steered'

export interface TrainPair {
  prompt: string
  output: string
}

export type Request =
  | { id: number; type: 'load-model'; files: File[] }
  | { id: number; type: 'load-adapter'; files: File[] }
  | { id: number; type: 'generate'; prompt: string; chat: boolean; maxNewTokens: number }
  | { id: number; type: 'train'; pairs: TrainPair[]; chat: boolean; steps: number; lr: number; rank: number; layer: number }

/** What the page shows of `model.info()`. */
export interface ModelSummary {
  architecture: string
  numLayers: number
  hiddenSize: number
  vocabSize: number
  hasChatTemplate: boolean
  seconds: number
}

export type Reply =
  | { id: number; type: 'status'; message: string }
  | { id: number; type: 'model'; summary: ModelSummary }
  | { id: number; type: 'adapter'; message: string }
  /** One generated token of `side`: the text so far and the running rate. */
  | { id: number; type: 'token'; side: Side; text: string; count: number; tokensPerSecond: number }
  | { id: number; type: 'generated'; side: Side; tokens: number[]; text: string; tokensPerSecond: number }
  /** `side` is not generated (no adapter). */
  | { id: number; type: 'skipped'; side: Side; message: string }
  | { id: number; type: 'loss'; step: number; totalSteps: number; loss: number }
  /** The trained adapter's checkpoint files, for the download links. */
  | { id: number; type: 'trained'; files: Record<string, Uint8Array>; message: string }
  | { id: number; type: 'done' }
  | { id: number; type: 'error'; code: string; message: string }
