/**
 * The data of a GLUE search. The validation split is cut by pyreft's protocol (`loadGlueSplits`,
 * as `reft glue train` does) into an eval half and a test half; the test half is used only after
 * the search has chosen. Where trials are ranked depends on the dev source:
 *
 * - `'train'` (default): a dev slice held out from the TRAIN split. With `limit`, the train rows
 *   are `reft glue train --train-limit`'s seeded subset (`shuffledIndices(n, seed)`'s first
 *   `limit` rows); the dev slice is its last `devSize` rows, so the first `limit − devSize` rows
 *   that trials train on are exactly the rows of `reft glue train --train-limit (limit − devSize)`
 *   with the same seed. `devShuffle` reshuffles the subset (seeded) before cutting, as for
 *   generation searches.
 * - `'eval-half'`: the validation split's eval half, the rows pyreft's protocol reserves for model
 *   selection (where `reft glue train` picks its best epoch). No train row is held out: trials
 *   train on the whole subset, exactly the rows of `reft glue train --train-limit limit`.
 */
import { createHash } from 'node:crypto'
import { ReftError, invalidConfig } from '../errors.js'
import type { DataDirOptions } from '../evaluation/data-dir.js'
import { loadGlueSplits } from '../glue/protocol.js'
import type { GlueExample, GlueTaskSpec } from '../glue/tasks.js'
import { checkInteger, checkOneOf } from '../validate.js'
import { devOrder, devSplitDefaults, type DevSplitOptions } from './data.js'

/** Where a GLUE search's dev rows come from (see the module docs). */
export const glueDevSources = ['train', 'eval-half'] as const

/** `'train'`: held out from the train subset; `'eval-half'`: the validation split's eval half. */
export type GlueDevSource = (typeof glueDevSources)[number]

/** A GLUE task as the data of `search`. */
export interface GlueSearchData extends DataDirOptions {
  /** The task: `'sst2'`, `'rte'`, `'mrpc'`, `'cola'`, `'stsb'` or `'qnli'` (any name `resolveGlueTask` takes). */
  glue: string
  /**
   * Use a seeded random subset of this many train rows, dev slice included (`reft glue train`'s
   * `--train-limit`). @defaultValue the whole train split, in file order
   */
  limit?: number
}

/** A GLUE split ready for training, selection and the final test. */
export interface GlueSearchSplit {
  /** The task's name (`'sst2'`). */
  name: string
  task: GlueTaskSpec
  /** Where `dev` comes from. */
  devSource: GlueDevSource
  /** Rows trials train on. */
  train: GlueExample[]
  /** The rows trials are ranked on (from the train split, or the validation eval half); never trained on. */
  dev: GlueExample[]
  /** The validation split's test half (pyreft's protocol with the search's seed), first `testLimit` rows. */
  test: GlueExample[]
}

/** Options of {@link splitGlueSearchData}. */
export interface GlueDevSplitOptions extends DevSplitOptions {
  /** Keep the first N rows of the test half. @defaultValue all */
  testLimit?: number
  /** Rank on rows held out from the train subset, or on the validation eval half (then no `devSize` / `devShuffle`). @defaultValue `'train'` */
  devSource?: GlueDevSource
}

/**
 * Loads the task and cuts the dev rows. ERR_OUT_OF_RANGE when fewer than `devSize + 1` rows
 * remain (or the eval half is empty); a missing file is ERR_IO; an unknown task, an unknown dev
 * source, or `devSize` / `devShuffle` with the eval half ERR_INVALID_CONFIG.
 */
export function splitGlueSearchData(data: GlueSearchData, options: GlueDevSplitOptions = {}): GlueSearchSplit {
  const devSource = checkOneOf('devSource', options.devSource ?? 'train', glueDevSources)
  const fromEval = devSource === 'eval-half'
  if (fromEval && options.devSize !== undefined) throw invalidConfig('devSize', "applies to devSource 'train'; the eval half's size is fixed by the protocol")
  if (fromEval && options.devShuffle === true) throw invalidConfig('devShuffle', "applies to devSource 'train'; the eval half is already a seeded cut")
  const devSize = fromEval ? 0 : checkInteger('devSize', options.devSize ?? devSplitDefaults.devSize, { min: 1 })
  const seed = checkInteger('seed', options.seed ?? devSplitDefaults.seed)
  const limit = data.limit === undefined ? undefined : checkInteger('limit', data.limit, { min: 1 })
  const testLimit = options.testLimit === undefined ? undefined : checkInteger('testLimit', options.testLimit, { min: 1 })
  const { task, train: rows, eval: evalHalf, test: testHalf } = loadGlueSplits(data.glue, { dataDir: data.dataDir, seed, trainLimit: limit })
  const test = testLimit === undefined ? testHalf : testHalf.slice(0, testLimit)
  if (fromEval) {
    if (evalHalf.length === 0) throw new ReftError('ERR_OUT_OF_RANGE', `devSource: ${task.name}'s eval half is empty`, { field: 'devSource' })
    return { name: task.name, task, devSource, train: rows, dev: evalHalf, test }
  }
  if (rows.length <= devSize) {
    throw new ReftError('ERR_OUT_OF_RANGE', `devSize: ${task.name} has ${rows.length} train rows; holding out ${devSize} leaves none to train on`, { field: 'devSize' })
  }
  const order = devOrder(rows.length, options.devShuffle ?? devSplitDefaults.devShuffle, seed)
  return {
    name: task.name,
    task,
    devSource,
    train: order.slice(0, rows.length - devSize).map((i) => rows[i]!),
    dev: order.slice(rows.length - devSize).map((i) => rows[i]!),
    test,
  }
}

/** sha256 of the rows trials train and select on (covers the task, `limit`, seed, dev source, size and shuffle). */
export function glueSplitDigest(split: GlueSearchSplit): string {
  return createHash('sha256').update(JSON.stringify([split.name, split.train, split.dev])).digest('hex').slice(0, 16)
}
