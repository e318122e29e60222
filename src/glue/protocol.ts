/**
 * The data side of the paper's GLUE protocol (pyreft `examples/loreft/train.py`) in one call:
 * train on the train split (optionally a seeded random subset, pyreft's `max_n_train_example`:
 * `shuffle(seed).select(range(n))`), and cut the validation split into the in-training eval
 * part (epoch selection) and the held-out test part (reported) with {@link splitGlueValidation}.
 */
import { shuffledIndices } from '../random.js'
import { checkInteger } from '../validate.js'
import { splitGlueValidation } from './split.js'
import { loadGlueTask, resolveGlueTask, type GlueExample, type GlueTaskSpec } from './tasks.js'

/** Options of {@link loadGlueSplits}. */
export interface GlueSplitsOptions {
  /** Data root holding `glue/<Task>/`. @defaultValue `$REFT_DATA_DIR`, else `../shared/data` */
  dataDir?: string
  /** Seed of the train subset and of the validation split (pyreft's runs use 42–46). @defaultValue `42` */
  seed?: number
  /** Train on a seeded random subset of this many examples. @defaultValue the whole split */
  trainLimit?: number
  /** Use only the first this many validation rows before splitting (quick runs). @defaultValue all */
  devLimit?: number
  /** Skip reading the train split (evaluation only). @defaultValue `false` */
  skipTrain?: boolean
}

/** Train examples and the two halves of the validation split. */
export interface GlueSplits {
  task: GlueTaskSpec
  train: GlueExample[]
  /** In-training eval part: choose the epoch on it. */
  eval: GlueExample[]
  /** Held-out test part: report on it. */
  test: GlueExample[]
}

/** Loads `task`'s train split and splits its validation split as the paper's protocol does. */
export function loadGlueSplits(task: string | GlueTaskSpec, options: GlueSplitsOptions = {}): GlueSplits {
  const spec = resolveGlueTask(task)
  const seed = checkInteger('seed', options.seed ?? 42)
  const dev = loadGlueTask(spec, { split: 'validation', dataDir: options.dataDir, limit: options.devLimit })
  const { eval: evalPart, test } = splitGlueValidation(dev, seed)
  let train: GlueExample[] = []
  if (options.skipTrain !== true) {
    train = loadGlueTask(spec, { split: 'train', dataDir: options.dataDir })
    if (options.trainLimit !== undefined) {
      const n = checkInteger('trainLimit', options.trainLimit, { min: 1 })
      if (n < train.length) train = shuffledIndices(train.length, seed).slice(0, n).map((i) => train[i]!)
    }
  }
  return { task: spec, train, eval: evalPart, test }
}
