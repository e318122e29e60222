/**
 * The trainer's resumable state (what `trainer_state.json` in a checkpoint holds) and the names
 * of checkpoint directories. Pure data: the training loop uses it everywhere, the file-system
 * side lives in trainer-state.ts.
 */
import type { TrainHistory } from './trainer-options.js'

/** File name of the loop state inside a checkpoint directory. */
export const trainerStateFile = 'trainer_state.json'

/** Current `formatVersion` of `trainer_state.json`. */
export const trainerStateVersion = 1

/** Everything needed to continue a run at the exact same step and batch order. */
export interface TrainerState {
  formatVersion: number
  /** Optimizer steps done. */
  step: number
  /** Epoch and step-within-epoch of the *next* step (the batch cursor). */
  epoch: number
  stepInEpoch: number
  totalSteps: number
  /** Shuffle seed (epoch e uses seed + e). */
  seed: number
  /** Shape of the run; a resume with different values is rejected. */
  datasetSize: number
  batchSize: number
  gradientAccumulation: number
  /** Whether micro-batches were grouped by length (absent in older states: false). */
  groupByLength?: boolean
  history: TrainHistory
  /** Early-stopping bookkeeping: best eval loss so far (null before any eval) and evals since. */
  bestEvalLoss: number | null
  evalsWithoutImprovement: number
}

/** Directory name of the checkpoint after `step` steps. */
export function checkpointName(step: number): string {
  return `checkpoint-${step}`
}
