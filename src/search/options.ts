/**
 * Options of `search`, their defaults, and the settings fingerprint stored in the trials file
 * header: everything that changes which trials run or what they score. Test-split options
 * (`testTasks`, `evalTest`, `testLimit`, `compareDefault`) are not part of it, so adding them to a
 * finished search reuses its trials. (GLUE searches build their fingerprint in glue-plan.ts.)
 */
import { createHash } from 'node:crypto'
import { components, resolveConfig, type Component } from '../config.js'
import { ReftError, invalidConfig, toReftError } from '../errors.js'
import type { CommonsenseScoring } from '../evaluation/extract.js'
import { defaultMaxNewTokens } from '../evaluation/tasks.js'
import type { Model } from '../model.js'
import { trainDefaults } from '../trainer-options.js'
import { checkBoolean, checkInteger, checkNumber, checkOneOf } from '../validate.js'
import type { SearchData, SearchSplit } from './data.js'
import type { GlueDevSource, GlueSearchData } from './glue-data.js'
import type { DevMetric, SearchProgressEvent } from './events.js'
import { halvingRungs, type HalvingOptions, type Rung } from './halving.js'
import type { Sampling } from './sampling.js'
import type { ResolvedSearchSpace, SearchSpace, TrialConfig } from './space.js'
import { interventionFor, type TrialSettings } from './trial.js'

/** Training settings shared by every trial (not searched). */
export interface SearchTrainOptions {
  /** @defaultValue `4` (as `reft train`) */
  batchSize?: number
  /** @defaultValue `1` */
  gradientAccumulation?: number
  /** Warmup fraction of each run's steps. @defaultValue `0` */
  warmupRatio?: number
  /** @defaultValue `0` */
  weightDecay?: number
  /** @defaultValue `1` */
  maxGradNorm?: number
  /** Truncate examples to this many tokens. @defaultValue none */
  maxLength?: number
  /** @defaultValue `'block_output'` */
  component?: Component
  /** @defaultValue `true` (GLUE: `false`, as the recipes) */
  tied?: boolean
  /** Intervention dropout; GLUE searches only. @defaultValue the task's LoReFT recipe's (SST-2: 0.1) */
  dropout?: number
}

/** Dev and test scoring settings. */
export interface SearchEvalOptions {
  /** Prompts per generate call and items per dev-loss batch. @defaultValue `4` (GLUE: `32`, pyreft's eval batch) */
  batchSize?: number
  /** Generation searches only. @defaultValue the task family's (32 commonsense, 256 math) */
  maxNewTokens?: number
  /** Generation searches only. @defaultValue `'pyreft'` */
  scoring?: CommonsenseScoring
}

/** Options of `search`. */
export interface SearchOptions {
  /** A decoder for a generation search; an encoder for a GLUE search. */
  model: Model
  /** A training set or your own examples (generation search), or `{ glue: TASK }` (GLUE search on an encoder). */
  data: SearchData | GlueSearchData
  /** Data root for training sets and test tasks. @defaultValue `$REFT_DATA_DIR`, else `../shared/data` */
  dataDir?: string
  /** Receives `trials.jsonl`, `search.json`, `search.md`, `trials/` and `adapter/`. */
  outputDir: string
  space?: SearchSpace
  /** @defaultValue `'random'` */
  sampling?: Sampling
  /** Random mode: trials drawn. @defaultValue `min(9, grid size)` */
  trials?: number
  /** Seed of sampling, the dev shuffle, initialisation and batch order. @defaultValue `42` */
  seed?: number
  /** Successive halving, or `false` for every trial at the full budget. @defaultValue `{ eta: 3 }` */
  halving?: HalvingOptions | false
  /** Dev slice size (not with GLUE `devSource: 'eval-half'`). @defaultValue `100` */
  devSize?: number
  /** @defaultValue `false` */
  devShuffle?: boolean
  /**
   * GLUE searches only: rank trials on rows held out from the train split (`'train'`), or on the
   * validation split's eval half (`'eval-half'`), the half pyreft's protocol reserves for model
   * selection; trials then train on all `limit` rows. The test half is never used for selection.
   * @defaultValue `'train'`
   */
  devSource?: GlueDevSource
  /**
   * @defaultValue `'accuracy'` when the data has gold answers, else `'loss'`; GLUE: the task's
   * primary metric (accuracy, CoLA `'matthews_correlation'`, STS-B `'pearson'`), or `'loss'`
   */
  devMetric?: DevMetric
  train?: SearchTrainOptions
  eval?: SearchEvalOptions
  /** Test tasks the selected configuration is evaluated on after the search (generation searches). @defaultValue none */
  testTasks?: readonly string[]
  /**
   * GLUE searches: evaluate the selected (and default) configuration on the task's test half, the
   * validation rows `reft glue train` reports on. @defaultValue `false`
   */
  evalTest?: boolean
  /** First N examples of each test task (GLUE: of the test half). @defaultValue all */
  testLimit?: number
  /** Also train the default configuration at the full budget and score it on dev and test. @defaultValue `false` */
  compareDefault?: boolean
  /** The configuration `compareDefault` trains. @defaultValue {@link defaultTrialConfig}; GLUE: `glueDefaultTrialConfig(task)` */
  defaultConfig?: TrialConfig
  signal?: AbortSignal
  onProgress?: (event: SearchProgressEvent) => void
}

/**
 * `reft train`'s defaults as a trial: LoReFT on the middle layer at the last prompt position, rank
 * 4, lr 4e-3, 1 epoch.
 */
export const defaultTrialConfig: Readonly<TrialConfig> = { kind: 'loreft', layers: 'middle', positions: 'l1', rank: 4, lr: trainDefaults.lr, epochs: 1 }

/** Validated trial settings. */
export function resolveTrialSettings(o: SearchOptions): TrialSettings {
  const t = o.train ?? {}
  const e = o.eval ?? {}
  return {
    batchSize: checkInteger('train.batchSize', t.batchSize ?? trainDefaults.batchSize, { min: 1 }),
    gradientAccumulation: checkInteger('train.gradientAccumulation', t.gradientAccumulation ?? 1, { min: 1 }),
    warmupRatio: checkNumber('train.warmupRatio', t.warmupRatio ?? 0, { min: 0, max: 1 }),
    weightDecay: checkNumber('train.weightDecay', t.weightDecay ?? 0, { min: 0 }),
    maxGradNorm: checkNumber('train.maxGradNorm', t.maxGradNorm ?? trainDefaults.maxGradNorm),
    maxLength: t.maxLength === undefined ? undefined : checkInteger('train.maxLength', t.maxLength, { min: 2 }),
    component: checkOneOf('train.component', t.component ?? 'block_output', components),
    tied: checkBoolean('train.tied', t.tied ?? true),
    seed: checkInteger('seed', o.seed ?? 42),
    evalBatchSize: checkInteger('eval.batchSize', e.batchSize ?? 4, { min: 1 }),
    maxNewTokens: e.maxNewTokens === undefined ? undefined : checkInteger('eval.maxNewTokens', e.maxNewTokens, { min: 1 }),
    scoring: checkOneOf('eval.scoring', e.scoring ?? 'pyreft', ['pyreft', 'llm-adapters'] as const),
  }
}

/** The dev metric: the given one, checked against the data, or the default. */
export function resolveDevMetric(o: SearchOptions, split: SearchSplit): DevMetric {
  const metric = checkOneOf('devMetric', o.devMetric ?? (split.task === undefined ? 'loss' : 'accuracy'), ['accuracy', 'loss'] as const)
  if (metric === 'accuracy' && split.task === undefined) {
    throw invalidConfig('devMetric', `accuracy needs gold answers; ${split.name} has none (use a commonsense or math training set, or devMetric 'loss')`)
  }
  return metric
}

/** Throws (naming the field) when a config cannot be built on `model`. */
export function checkTrialConfig(config: TrialConfig, model: Model, s: Pick<TrialSettings, 'component' | 'tied'>, field: string): void {
  const numLayers = model.info().numLayers
  try {
    resolveConfig(interventionFor(config, numLayers, s), numLayers)
  } catch (e) {
    const err = toReftError(e)
    throw new ReftError(err.code, `${field}: ${err.message} (model has ${numLayers} layers)`, { field, cause: e })
  }
}

/** sha256 of the examples trials train and select on (covers the data, `limit`, dev size and shuffle). */
export function splitDigest(split: SearchSplit): string {
  return createHash('sha256').update(JSON.stringify([split.train, split.dev])).digest('hex').slice(0, 16)
}

/** The resolved rungs for `n` trials. */
export function resolveRungs(o: SearchOptions, n: number): Rung[] {
  return halvingRungs(n, o.halving ?? {})
}

/** The settings fingerprint stored in (and checked against) the trials file header. */
export function searchSettings(o: SearchOptions, p: {
  space: ResolvedSearchSpace
  configs: readonly TrialConfig[]
  rungs: readonly Rung[]
  split: SearchSplit
  devMetric: DevMetric
  settings: TrialSettings
}): Record<string, unknown> {
  const s = p.settings
  const maxNewTokens = p.split.task === undefined ? null : (s.maxNewTokens ?? defaultMaxNewTokens[p.split.task.kind])
  return {
    model: o.model.path,
    data: { name: p.split.name, train: p.split.train.length, dev: p.split.dev.length, digest: splitDigest(p.split), devShuffle: o.devShuffle ?? false },
    space: p.space,
    sampling: o.sampling ?? 'random',
    trials: p.configs.length,
    seed: s.seed,
    rungs: p.rungs.map((r) => [r.trials, r.budget]),
    devMetric: p.devMetric,
    train: { batchSize: s.batchSize, gradientAccumulation: s.gradientAccumulation, warmupRatio: s.warmupRatio, weightDecay: s.weightDecay,
      maxGradNorm: s.maxGradNorm, maxLength: s.maxLength, component: s.component, tied: s.tied },
    eval: p.devMetric === 'accuracy' ? { maxNewTokens, scoring: s.scoring } : null,
  }
}
