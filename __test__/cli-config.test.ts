/**
 * Pure parts of the CLI: data files (JSON array / JSONL, prompt or instruction) and the merge of
 * a run config file with `reft train` flags (flags win, unknown keys are ERR_INVALID_CONFIG).
 */
import { describe, expect, it } from 'vitest'
import { parseFlags } from '../src/cli/common.js'
import { parseExamples } from '../src/cli/data.js'
import { trainFlags } from '../src/cli/train.js'
import { checkConfigFile, mergeRunConfig, parseLayers } from '../src/cli/train-config.js'

const flags = (...args: string[]) => parseFlags(args, trainFlags, false)
const code = (f: () => unknown): string | undefined => {
  try {
    f()
  } catch (e) {
    return (e as { code?: string }).code
  }
  return undefined
}

describe('parseExamples', () => {
  it('reads a JSON array and JSONL, with prompt or instruction and optional input', () => {
    const records = [{ prompt: 'a', output: 'b' }, { instruction: 'c', output: 'd', input: 'e' }, { prompt: 'f', output: 'g', input: '' }]
    const expected = [{ prompt: 'a', output: 'b' }, { prompt: 'c', output: 'd', input: 'e' }, { prompt: 'f', output: 'g' }]
    expect(parseExamples(JSON.stringify(records), 'x.json')).toEqual(expected)
    expect(parseExamples(records.map((r) => JSON.stringify(r)).join('\n') + '\n\n', 'x.jsonl')).toEqual(expected)
  })
  it('malformed files and records are ERR_FORMAT', () => {
    expect(code(() => parseExamples('[{"prompt": 1, "output": "x"}]', 'x'))).toBe('ERR_FORMAT')
    expect(code(() => parseExamples('{"prompt": "a"}', 'x'))).toBe('ERR_FORMAT')
    expect(code(() => parseExamples('{"prompt": "a", "output": "b"}\n{oops', 'x'))).toBe('ERR_FORMAT')
    expect(code(() => parseExamples('[1, 2', 'x'))).toBe('ERR_FORMAT')
  })
})

describe('run config', () => {
  it('--device and --dtype, from flags or the file (flags win), checked', () => {
    expect(mergeRunConfig({}, flags())).toMatchObject({ device: undefined, dtype: undefined })
    expect(mergeRunConfig(checkConfigFile({ device: 'cuda', dtype: 'f16' }), flags('--dtype', 'bf16'))).toMatchObject({ device: 'cuda', dtype: 'bf16' })
    expect(code(() => mergeRunConfig({}, flags('--dtype', 'f8')))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => mergeRunConfig({}, flags('--device', 'gpu')))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => checkConfigFile({ dtype: 'fp32' }))).toBe('ERR_INVALID_CONFIG')
  })
  it('defaults without a file or flags', () => {
    const c = mergeRunConfig({}, flags())
    expect(c).toMatchObject({ output: 'reft-adapter', chat: false, format: 'raw', seed: 42, intervention: { kind: 'loreft', positions: 'l1', rank: 4 }, train: {} })
    expect(c.intervention.layers).toBeUndefined()
  })
  it('flags override the file, field by field', () => {
    const file = checkConfigFile({ model: 'm', data: 'd', intervention: { kind: 'noreft', rank: 8, layers: [1] }, train: { epochs: 3, lr: 0.1 } })
    const c = mergeRunConfig(file, flags('--rank', '2', '--epochs', '5', '--layers', 'all', '--no-tied', '--batch-size', '2', '--grad-accum', '3'))
    expect(c.model).toBe('m')
    expect(c.intervention).toEqual({ kind: 'noreft', positions: 'l1', rank: 2, layers: 'all', tied: false })
    expect(c.train).toEqual({ epochs: 5, lr: 0.1, batchSize: 2, gradientAccumulation: 3 })
    expect(mergeRunConfig({}, flags('--group-by-length')).train).toEqual({ groupByLength: true })
    expect(mergeRunConfig(checkConfigFile({ train: { groupByLength: true } }), flags()).train).toEqual({ groupByLength: true })
  })
  it('unknown keys at any level are ERR_INVALID_CONFIG', () => {
    expect(code(() => checkConfigFile({ modle: 'x' }))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => checkConfigFile({ intervention: { kind: 'loreft', low_rank_dimension: 4 } }))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => checkConfigFile({ train: { learningRate: 1 } }))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => checkConfigFile([]))).toBe('ERR_INVALID_CONFIG')
  })
  it('bad flag values are ERR_INVALID_CONFIG', () => {
    expect(code(() => mergeRunConfig({}, flags('--lr', 'fast')))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => mergeRunConfig({}, flags('--epochs', '1.5')))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => mergeRunConfig({}, flags('--tied', '--no-tied')))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => mergeRunConfig({}, flags('--chat', '--format', 'alpaca')))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => mergeRunConfig({}, flags('--format', 'markdown')))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => flags('--nope'))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => flags('positional'))).toBe('ERR_INVALID_CONFIG')
  })
  it('parses --layers', () => {
    expect(parseLayers('15')).toEqual([15])
    expect(parseLayers('3, 9')).toEqual([3, 9])
    expect(parseLayers('all')).toBe('all')
    expect(code(() => parseLayers('3-9'))).toBe('ERR_INVALID_CONFIG')
  })
})
