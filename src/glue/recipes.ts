/**
 * The ReFT paper's GLUE hyperparameters for RoBERTa-base (paper Tables 9–12 as summarised in the
 * project's REFERENCE.md §7.2), as typed data, so a GLUE run starts from the published setting
 * instead of numbers copied by hand.
 *
 * Shared by every recipe: rank 1, interventions on every layer's output, prefix positions only
 * (`pN` in the paper = pyreft `fN`, untied), AdamW with a linear schedule, the classifier head
 * (dense → tanh → out_proj on `<s>`) trained with the interventions, eval batch size 32, seeds 42–46.
 * Batch size is 32 unless the table says otherwise (DiReFT RTE: 8). LoReFT's weight decay is 0
 * everywhere; in pyreft weight decay never reaches intervention parameters, so a non-zero value
 * (DiReFT CoLA, RTE) only acts on the classifier head. "DiReFT" is the paper's non-orthogonal
 * method, pyreft's `NodireftIntervention`, which is this project's `direft` kind.
 */
import { invalidConfig } from '../errors.js'
import type { InterventionConfig, Positions } from '../config.js'
import { resolveGlueTask, type GlueTaskName, type GlueTaskSpec } from './tasks.js'

/** Methods with published GLUE recipes (this project's intervention kinds). */
export type GlueRecipeMethod = 'loreft' | 'direft'

/** One task's training setting from the paper. */
export interface GlueRecipe {
  task: GlueTaskName
  method: GlueRecipeMethod
  /** The base model the setting was tuned for. */
  model: 'roberta-base'
  /** Low-rank dimension r. */
  rank: number
  /** Prefix positions: `{ first: N, last: 0 }` for the paper's `pN`. */
  positions: Positions
  /** Intervention dropout. */
  dropout: number
  /** Peak learning rate. */
  learningRate: number
  /** Linear warmup as a fraction of the total steps. */
  warmupRatio: number
  /** Training epochs; pyreft keeps the best epoch on the in-training eval part. */
  epochs: number
  /** AdamW weight decay (reaches only the classifier head in pyreft; see the module comment). */
  weightDecay: number
  /** Training batch size (no gradient accumulation). */
  batchSize: number
  /** The paper's mean test score over seeds 42–46 (Table 4, ×100, on the task's primary metric). */
  paperScore: number
}

/** Settings every GLUE recipe shares. */
export const glueRecipeCommon = {
  /** Every layer of the encoder. */
  layers: 'all',
  /** pyreft component `roberta.encoder.layer[l].output`: each layer's output. */
  component: 'block_output',
  /** Prefix-only positions make tying moot; pyreft runs them untied. */
  tied: false,
  optimizer: 'adamw',
  schedule: 'linear',
  evalBatchSize: 32,
  /** Longest tokenized input, from pyreft's GLUE example command. */
  maxLength: 256,
  /** The classifier head is trained (pyreft `--allow_cls_grad`). */
  trainClassifierHead: true,
  seeds: [42, 43, 44, 45, 46],
} as const

type Row = [task: GlueTaskName, first: number, dropout: number, lr: number, warmup: number, epochs: number, wd: number, batch: number, score: number]

const make = (method: GlueRecipeMethod, [task, first, dropout, lr, warmup, epochs, wd, batch, score]: Row): GlueRecipe => ({
  task, method, model: 'roberta-base', rank: 1, positions: { first, last: 0 }, dropout,
  learningRate: lr, warmupRatio: warmup, epochs, weightDecay: wd, batchSize: batch, paperScore: score,
})

/** RoBERTa-base LoReFT. Columns: task, pN, dropout, lr, warmup, epochs, wd, batch, score. */
const loreftRows: Row[] = [
  ['sst2', 3, 0.1, 6e-4, 0.1, 40, 0, 32, 93.4],
  ['mrpc', 3, 0.05, 3e-4, 0, 40, 0, 32, 89.2],
  ['cola', 3, 0.2, 4e-4, 0.005, 60, 0, 32, 60.4],
  ['qnli', 11, 0.05, 9e-4, 0.1, 20, 0, 32, 91.2],
  ['rte', 3, 0.05, 9e-4, 0, 60, 0, 32, 79.0],
  ['stsb', 3, 0.05, 6e-4, 0.03, 60, 0, 32, 90.0],
]

/** RoBERTa-base DiReFT. Same columns. */
const direftRows: Row[] = [
  ['sst2', 3, 0.1, 6e-4, 0.1, 40, 0, 32, 92.6],
  ['mrpc', 5, 0.05, 3e-4, 0.1, 40, 0, 32, 88.3],
  ['cola', 1, 0, 6e-4, 0, 60, 0.04, 32, 58.6],
  ['qnli', 11, 0.05, 9e-4, 0.1, 20, 0, 32, 91.3],
  ['rte', 1, 0, 9e-4, 0, 60, 0.04, 8, 76.4],
  ['stsb', 3, 0.05, 6e-4, 0.03, 60, 0, 32, 89.3],
]

/** Every recipe, LoReFT first. */
export const glueRecipes: readonly GlueRecipe[] = [...loreftRows.map((r) => make('loreft', r)), ...direftRows.map((r) => make('direft', r))]

/** The recipe for `task` and `method`; an unknown task or method is ERR_INVALID_CONFIG. */
export function glueRecipe(task: string | GlueTaskSpec, method: GlueRecipeMethod = 'loreft'): GlueRecipe {
  const name = resolveGlueTask(task).name
  const r = glueRecipes.find((x) => x.task === name && x.method === method)
  if (r === undefined) throw invalidConfig('method', `no GLUE recipe for method ${JSON.stringify(method)}; choose loreft or direft`)
  return r
}

/** The intervention config a recipe describes (every layer, rank 1, prefix positions, untied). */
export function glueRecipeIntervention(recipe: GlueRecipe): InterventionConfig {
  return {
    kind: recipe.method,
    layers: glueRecipeCommon.layers,
    component: glueRecipeCommon.component,
    positions: { ...recipe.positions },
    rank: recipe.rank,
    tied: glueRecipeCommon.tied,
    dropout: recipe.dropout,
  }
}
