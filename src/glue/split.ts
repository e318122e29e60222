/**
 * pyreft's GLUE evaluation protocol (`examples/loreft/train.py`): GLUE test labels are hidden, so
 * the HF validation split is cut at random into an in-training eval part, used to pick the best
 * epoch, and a test part, on which the chosen model is reported. The eval part has 1,000 rows when
 * the split has more than 5,000 (QNLI, MNLI, QQP), else ⌊n/2⌋; the test part has the rest.
 *
 * pyreft draws the cut with `torch.utils.data.random_split(rows, [n − k, k])` on torch's global
 * generator after `set_seed(seed)`. That permutation cannot be reproduced outside torch, so this
 * split follows the protocol's sizes and shape (a seeded permutation whose first n − k rows are
 * the test part and last k rows the eval part, each kept in permutation order as a torch `Subset`
 * is) but not pyreft's exact rows: it uses this project's mulberry32 Fisher–Yates
 * (`shuffledIndices` in src/random.ts). The same seed always gives the same split, on any platform.
 */
import { shuffledIndices } from '../random.js'
import { checkInteger } from '../validate.js'

/** Rows above which the eval part is capped at {@link glueEvalCap}. */
export const glueLargeSplit = 5000

/** The eval part's size for a validation split of more than {@link glueLargeSplit} rows. */
export const glueEvalCap = 1000

/** The two parts of a split validation set. */
export interface GlueValidationSplit<T> {
  /** In-training eval part (pyreft's `in_train_eval_datasets`): pick the best epoch on it. */
  eval: T[]
  /** Held-out test part (pyreft's `in_test_eval_datasets`): report the chosen model on it. */
  test: T[]
}

/** The eval part's size for a validation split of `n` rows: 1,000 when n > 5,000, else ⌊n/2⌋. */
export function glueEvalSize(n: number): number {
  checkInteger('n', n, { min: 0 })
  return n > glueLargeSplit ? glueEvalCap : Math.floor(n / 2)
}

/**
 * Splits validation `rows` by pyreft's protocol with `seed` (pyreft's runs use 42–46): a seeded
 * permutation's first n − k rows are `test`, its last k rows `eval`, with k = {@link glueEvalSize}(n).
 * Deterministic in `(rows.length, seed)`; not torch's permutation (see the module comment).
 */
export function splitGlueValidation<T>(rows: readonly T[], seed: number): GlueValidationSplit<T> {
  checkInteger('seed', seed)
  const n = rows.length
  const k = glueEvalSize(n)
  const perm = shuffledIndices(n, seed)
  return {
    test: perm.slice(0, n - k).map((i) => rows[i]!),
    eval: perm.slice(n - k).map((i) => rows[i]!),
  }
}
