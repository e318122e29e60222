/**
 * `train` in Node: the training loop of train-loop.ts with checkpoints on the file system
 * (trainer-state.ts). The browser entry runs the same loop without a checkpoint store.
 */
import type { CollatableItem } from './datasets/collate.js'
import { runTraining, type CheckpointStore } from './train-loop.js'
import type { Trainable, TrainHistory, TrainOptions } from './trainer-options.js'
import { readTrainerState, writeCheckpoint } from './trainer-state.js'

export { evaluate, planEpoch, type EvaluateOptions } from './train-loop.js'

const fileStore: CheckpointStore = { read: readTrainerState, write: writeCheckpoint }

/**
 * Train `reft` on `dataset`. See {@link TrainOptions}; {@link Trainable} documents what `reft` must
 * do. Throws ReftError ERR_ABORTED on abort, ERR_NON_FINITE on a NaN/Inf loss or grad norm.
 */
export function train(reft: Trainable, dataset: readonly CollatableItem[], options: TrainOptions = {}): Promise<TrainHistory> {
  return runTraining(reft, dataset, options, fileStore)
}
