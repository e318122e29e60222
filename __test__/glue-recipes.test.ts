/**
 * The paper's RoBERTa-base GLUE recipes (REFERENCE.md §7.2, paper Tables 9–12): spot values per
 * task and method, the shared settings, and the intervention config a recipe yields.
 */
import { describe, expect, it } from 'vitest'
import { glueRecipe, glueRecipeCommon, glueRecipeIntervention, glueRecipes, glueTaskNames } from '../src/glue/index.js'
import { resolveConfig } from '../src/config.js'
import { code } from './helpers/error-code.js'

describe('GLUE recipes', () => {
  it('has one LoReFT and one DiReFT recipe per task, all rank 1 with prefix positions', () => {
    expect(glueRecipes).toHaveLength(2 * glueTaskNames.length)
    for (const t of glueTaskNames) for (const m of ['loreft', 'direft'] as const) expect(glueRecipe(t, m).task).toBe(t)
    for (const r of glueRecipes) {
      expect(r.rank).toBe(1)
      expect(r.positions.last).toBe(0)
      expect(r.model).toBe('roberta-base')
    }
  })
  it('LoReFT values (CoLA matches original_code/README: p3, 60 epochs, lr 4e-4, dropout 0.2, warmup 0.005)', () => {
    expect(glueRecipe('cola')).toMatchObject({ method: 'loreft', positions: { first: 3, last: 0 }, epochs: 60, learningRate: 4e-4, dropout: 0.2, warmupRatio: 0.005, weightDecay: 0, batchSize: 32 })
    expect(glueRecipe('qnli')).toMatchObject({ positions: { first: 11 }, learningRate: 9e-4, warmupRatio: 0.1, epochs: 20, dropout: 0.05 })
    expect(glueRecipe('SST-2')).toMatchObject({ dropout: 0.1, learningRate: 6e-4, warmupRatio: 0.1, epochs: 40 })
    expect(glueRecipe('stsb')).toMatchObject({ warmupRatio: 0.03, epochs: 60, paperScore: 90.0 })
    for (const r of glueRecipes) if (r.method === 'loreft') expect(r.weightDecay).toBe(0)
  })
  it('DiReFT values: RTE batch 8 with wd 0.04 at p1, MRPC p5, CoLA no dropout', () => {
    expect(glueRecipe('rte', 'direft')).toMatchObject({ positions: { first: 1 }, batchSize: 8, weightDecay: 0.04, dropout: 0, learningRate: 9e-4, epochs: 60 })
    expect(glueRecipe('mrpc', 'direft')).toMatchObject({ positions: { first: 5 }, warmupRatio: 0.1, learningRate: 3e-4 })
    expect(glueRecipe('cola', 'direft')).toMatchObject({ positions: { first: 1 }, dropout: 0, weightDecay: 0.04, paperScore: 58.6 })
  })
  it('unknown task or method is ERR_INVALID_CONFIG', () => {
    expect(code(() => glueRecipe('qqp'))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => glueRecipe('rte', 'noreft' as never))).toBe('ERR_INVALID_CONFIG')
  })
  it('yields a valid intervention config: every layer, block output, untied, the recipe\'s dropout', () => {
    const cfg = glueRecipeIntervention(glueRecipe('mrpc', 'direft'))
    expect(cfg).toEqual({ kind: 'direft', layers: 'all', component: 'block_output', positions: { first: 5, last: 0 }, rank: 1, tied: false, dropout: 0.05 })
    const resolved = resolveConfig(cfg, 12)
    expect(resolved.layers).toHaveLength(12)
    expect(resolved.numInterventions).toBe(12)
    expect(glueRecipeCommon.seeds).toEqual([42, 43, 44, 45, 46])
  })
})
