import { describe, expect, it } from 'vitest'
import { defaults, expandConfig, parsePositions, resolveConfig, type InterventionConfig } from '../src/config.js'

const code = (c: string) => expect.objectContaining({ code: c })

describe('parsePositions', () => {
  it('parses the pyreft forms', () => {
    expect(parsePositions('f7+l7')).toEqual({ first: 7, last: 7 })
    expect(parsePositions('f3')).toEqual({ first: 3, last: 0 })
    expect(parsePositions('l1')).toEqual({ first: 0, last: 1 })
    expect(parsePositions('f0+l12')).toEqual({ first: 0, last: 12 })
  })

  for (const bad of ['', 'f', 'l', '7', 'l1+f1', 'f1+', 'f-1', 'f1+l1+l2', 'x3', 'f1.5', 'F1']) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      expect(() => parsePositions(bad)).toThrow(code('ERR_INVALID_CONFIG'))
    })
  }
})

const base: InterventionConfig = { kind: 'loreft', layers: [2, 5], positions: 'f1+l1', rank: 4 }

describe('expandConfig', () => {
  it('tied: one spec per layer with defaults filled', () => {
    const specs = expandConfig(base, 8)
    expect(specs.map((s) => s.layer)).toEqual([2, 5])
    expect(specs[0]).toEqual({
      kind: 'loreft',
      layer: 2,
      component: defaults.component,
      rank: 4,
      dropout: 0,
      activation: 'linear',
      addBias: false,
    })
  })

  it('untied with first and last: layers followed by layers again', () => {
    const specs = expandConfig({ ...base, tied: false, layers: [3, 1, 6] }, 8)
    expect(specs.map((s) => s.layer)).toEqual([3, 1, 6, 3, 1, 6])
    expect(resolveConfig({ ...base, tied: false, layers: [3, 1, 6] }, 8).numInterventions).toBe(6)
  })

  it('untied with only one side: one per layer', () => {
    expect(expandConfig({ ...base, tied: false, positions: 'l3' }, 8)).toHaveLength(2)
    expect(expandConfig({ ...base, tied: false, positions: { first: 2, last: 0 } }, 8)).toHaveLength(2)
  })

  it("'all' covers every layer", () => {
    expect(expandConfig({ ...base, layers: 'all', tied: false }, 3).map((s) => s.layer)).toEqual([0, 1, 2, 0, 1, 2])
  })

  it('passes the optional fields through', () => {
    const [s] = expandConfig({ kind: 'noreft', layers: [0], positions: 'l1', rank: 2, component: 'mlp_output', dropout: 0.05, activation: 'gelu', addBias: true }, 1)
    expect(s).toMatchObject({ kind: 'noreft', component: 'mlp_output', dropout: 0.05, activation: 'gelu', addBias: true })
  })

  const cases: [string, unknown, number, string, string][] = [
    ['unknown kind', { ...base, kind: 'bogus' }, 8, 'ERR_INVALID_CONFIG', 'kind'],
    ['rank 0', { ...base, rank: 0 }, 8, 'ERR_OUT_OF_RANGE', 'rank'],
    ['rank 1.5', { ...base, rank: 1.5 }, 8, 'ERR_INVALID_CONFIG', 'rank'],
    ['layer out of range', { ...base, layers: [8] }, 8, 'ERR_OUT_OF_RANGE', 'layers[0]'],
    ['negative layer', { ...base, layers: [1, -1] }, 8, 'ERR_OUT_OF_RANGE', 'layers[1]'],
    ['fractional layer', { ...base, layers: [1.5] }, 8, 'ERR_INVALID_CONFIG', 'layers[0]'],
    ['duplicate layer', { ...base, layers: [1, 1] }, 8, 'ERR_INVALID_CONFIG', 'layers[1]'],
    ['empty layers', { ...base, layers: [] }, 8, 'ERR_INVALID_CONFIG', 'layers'],
    ['dropout 1', { ...base, dropout: 1 }, 8, 'ERR_OUT_OF_RANGE', 'dropout'],
    ['dropout -0.1', { ...base, dropout: -0.1 }, 8, 'ERR_OUT_OF_RANGE', 'dropout'],
    ['bad component', { ...base, component: 'head' }, 8, 'ERR_INVALID_CONFIG', 'component'],
    ['bad activation', { ...base, activation: 'softmax' }, 8, 'ERR_INVALID_CONFIG', 'activation'],
    ['bad positions', { ...base, positions: 'middle' }, 8, 'ERR_INVALID_CONFIG', 'positions'],
    ['zero positions', { ...base, positions: { first: 0, last: 0 } }, 8, 'ERR_INVALID_CONFIG', 'positions'],
    ['negative position count', { ...base, positions: { first: -1, last: 1 } }, 8, 'ERR_OUT_OF_RANGE', 'positions.first'],
    ['tied not boolean', { ...base, tied: 'yes' }, 8, 'ERR_INVALID_CONFIG', 'tied'],
    ['numLayers 0', base, 0, 'ERR_OUT_OF_RANGE', 'numLayers'],
  ]
  for (const [name, cfg, n, c, field] of cases) {
    it(`rejects ${name} with ${c} naming ${field}`, () => {
      expect(() => expandConfig(cfg as InterventionConfig, n)).toThrow(expect.objectContaining({ code: c, field }))
    })
  }
})
