/**
 * The plan of a GLUE search on an encoder (`data: { glue: TASK }`): trials train an intervention
 * and a classification head on the task's train rows (glue-data.ts), are ranked on the dev rows (a
 * slice held out from the train split, or with `devSource: 'eval-half'` the validation split's
 * eval half) by the task's primary metric (accuracy, CoLA's MCC, STS-B's Pearson) or by the head's
 * loss, and the selected and default configurations are scored on the validation split's test
 * half (`evalTest`), which selection never sees.
 *
 * The fixed training settings come from the task's LoReFT recipe (src/glue/recipes.ts): batch 32,
 * its warmup ratio, weight decay and dropout, untied, each layer's output, inputs up to 256
 * tokens. The default configuration is `reft glue train`'s setting as docs/EXPERIMENTS.md runs it
 * on the CPU: the recipe's kind, layers, positions and rank with lr 1e-2 and 3 epochs.
 */
import { encoderMaxLength, requireEncoder, resolveMaxLength } from '../classifier.js'
import { components } from '../config.js'
import { invalidConfig } from '../errors.js'
import { glueRecipe, glueRecipeCommon } from '../glue/recipes.js'
import { resolveGlueTask, type GlueTaskSpec } from '../glue/tasks.js'
import { trainDefaults } from '../trainer-options.js'
import { checkBoolean, checkInteger, checkNumber, checkOneOf } from '../validate.js'
import type { DevMetric } from './events.js'
import { glueSplitDigest, splitGlueSearchData, type GlueSearchData } from './glue-data.js'
import { compareGlueTests, runGlueTest } from './glue-test.js'
import { measureGlueTrial, type GlueTrialContext, type GlueTrialSettings } from './glue-trial.js'
import { checkTrialConfig, resolveRungs, type SearchOptions } from './options.js'
import type { SearchPlan } from './plan.js'
import { sampleTrials } from './sampling.js'
import { defaultGlueSearchSpace, formatPositions, resolveSearchSpace, type TrialConfig } from './space.js'

/** The CPU-scaled learning rate and epochs of docs/EXPERIMENTS.md's GLUE rows (500 training examples). */
export const glueDefaultScale = { lr: 1e-2, epochs: 3 } as const

/** The default configuration of a GLUE search: the task's LoReFT recipe at {@link glueDefaultScale}. */
export function glueDefaultTrialConfig(task: string | GlueTaskSpec): TrialConfig {
  const r = glueRecipe(task, 'loreft')
  return { kind: r.method, layers: glueRecipeCommon.layers, positions: formatPositions(r.positions), rank: r.rank, lr: glueDefaultScale.lr, epochs: glueDefaultScale.epochs }
}

/** Validated GLUE trial settings: the options, else the task's LoReFT recipe. */
export function resolveGlueTrialSettings(o: SearchOptions, spec: GlueTaskSpec): GlueTrialSettings {
  const recipe = glueRecipe(spec, 'loreft')
  const t = o.train ?? {}
  const e = o.eval ?? {}
  if (e.maxNewTokens !== undefined) throw invalidConfig('eval.maxNewTokens', 'applies to generation searches only; a GLUE search classifies')
  if (e.scoring !== undefined) throw invalidConfig('eval.scoring', "applies to generation searches only; a GLUE search uses the task's metrics")
  const info = o.model.info()
  return {
    batchSize: checkInteger('train.batchSize', t.batchSize ?? recipe.batchSize, { min: 1 }),
    gradientAccumulation: checkInteger('train.gradientAccumulation', t.gradientAccumulation ?? 1, { min: 1 }),
    warmupRatio: checkNumber('train.warmupRatio', t.warmupRatio ?? recipe.warmupRatio, { min: 0, max: 1 }),
    weightDecay: checkNumber('train.weightDecay', t.weightDecay ?? recipe.weightDecay, { min: 0 }),
    maxGradNorm: checkNumber('train.maxGradNorm', t.maxGradNorm ?? trainDefaults.maxGradNorm),
    maxLength: t.maxLength === undefined ? Math.min(glueRecipeCommon.maxLength, encoderMaxLength(info)) : resolveMaxLength(info, t.maxLength),
    component: checkOneOf('train.component', t.component ?? glueRecipeCommon.component, components),
    tied: checkBoolean('train.tied', t.tied ?? glueRecipeCommon.tied),
    dropout: checkNumber('train.dropout', t.dropout ?? recipe.dropout, { min: 0, below: 1 }),
    seed: checkInteger('seed', o.seed ?? 42),
    evalBatchSize: checkInteger('eval.batchSize', e.batchSize ?? glueRecipeCommon.evalBatchSize, { min: 1 }),
  }
}

/** The dev metric of a GLUE search: the task's primary metric (default) or `'loss'`. */
export function resolveGlueDevMetric(o: SearchOptions, spec: GlueTaskSpec): DevMetric {
  const primary = spec.primaryMetric as DevMetric
  const metric = o.devMetric ?? primary
  if (metric !== 'loss' && metric !== primary) throw invalidConfig('devMetric', `${spec.name} ranks trials by its metric ${primary} or by 'loss', got ${JSON.stringify(metric)}`)
  return metric
}

/** Resolves a GLUE search (`options.data` is `{ glue }`). */
export function planGlueSearch(options: SearchOptions & { data: GlueSearchData }): SearchPlan {
  const spec = resolveGlueTask(options.data.glue)
  requireEncoder(options.model.info(), `a GLUE search (${spec.name})`)
  if (options.testTasks !== undefined) throw invalidConfig('testTasks', `a GLUE search is tested on ${spec.name}'s test half; use evalTest`)
  const space = resolveSearchSpace(options.space, defaultGlueSearchSpace)
  const settings = resolveGlueTrialSettings(options, spec)
  const data = { ...options.data, dataDir: options.dataDir ?? options.data.dataDir }
  const split = splitGlueSearchData(data, { devSize: options.devSize, devShuffle: options.devShuffle, seed: settings.seed, testLimit: options.testLimit, devSource: options.devSource })
  const devMetric = resolveGlueDevMetric(options, spec)
  const configs = sampleTrials(space, { sampling: options.sampling, trials: options.trials, seed: settings.seed })
  configs.forEach((c, i) => checkTrialConfig(c, options.model, settings, `trial ${i}`))
  const defaultConfig = options.defaultConfig ?? glueDefaultTrialConfig(spec)
  if (options.compareDefault === true) checkTrialConfig(defaultConfig, options.model, settings, 'defaultConfig')
  const evalTest = checkBoolean('evalTest', options.evalTest ?? false)
  if (evalTest && split.test.length === 0) throw invalidConfig('evalTest', `${spec.name}'s test half is empty`)
  const rungs = resolveRungs(options, configs.length)
  const ctx: GlueTrialContext = { model: options.model, split, devMetric, settings, signal: options.signal, onProgress: options.onProgress }
  const s = settings
  const limit = data.limit ?? null
  return {
    space,
    configs,
    rungs,
    devMetric,
    defaultConfig,
    settings: {
      model: options.model.path,
      // The default source is left out, so searches from before `devSource` keep their fingerprint.
      data: { glue: spec.name, limit, train: split.train.length, dev: split.dev.length, digest: glueSplitDigest(split), devShuffle: options.devShuffle ?? false,
        ...(split.devSource === 'train' ? {} : { devSource: split.devSource }) },
      space,
      sampling: options.sampling ?? 'random',
      trials: configs.length,
      seed: s.seed,
      rungs: rungs.map((r) => [r.trials, r.budget]),
      devMetric,
      train: { batchSize: s.batchSize, gradientAccumulation: s.gradientAccumulation, warmupRatio: s.warmupRatio, weightDecay: s.weightDecay,
        maxGradNorm: s.maxGradNorm, maxLength: s.maxLength, component: s.component, tied: s.tied, dropout: s.dropout },
    },
    data: { name: spec.name, train: split.train.length, dev: split.dev.length, devShuffle: options.devShuffle ?? false, seed: s.seed },
    glue: { task: spec.name, limit, primaryMetric: spec.primaryMetric, testSize: split.test.length, devSource: split.devSource },
    measure: (config, budget, saveDir) => measureGlueTrial(ctx, config, budget, saveDir),
    test: async (file, which, config, adapterDir) => (evalTest ? [await runGlueTest(ctx, file, which, config, adapterDir, options.testLimit ?? null)] : []),
    compare: (test) => compareGlueTests(spec, test, split.test.map((e) => e.label), s.seed),
  }
}
