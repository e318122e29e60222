import { describe, expect, it } from 'vitest'
import { labelsAfterInterventions, requireReachableLabels, type CollatableItem } from '../src/datasets/index.js'
import { train } from '../src/trainer.js'
import { FakeReft, makeItems } from './helpers/fake-reft.js'

const M = -100
const item = (labels: number[], locations: number[][]): CollatableItem => ({
  inputIds: Uint32Array.from(labels, (_, i) => 10 + i),
  labels: Int32Array.from(labels),
  locations,
})

describe('labels an intervention can reach', () => {
  it('counts shifted labels at or after the first intervened position', () => {
    // Position p predicts labels[p + 1]: positions 2, 3 and 4 are labelled.
    const labels = [M, M, M, 13, 14, 15]
    expect(labelsAfterInterventions(item(labels, [[2]]))).toBe(3)
    expect(labelsAfterInterventions(item(labels, [[4], [3]]))).toBe(2)
    expect(labelsAfterInterventions(item(labels, [[5]]))).toBe(0) // the last token predicts nothing
    expect(labelsAfterInterventions(item(labels, [[0, 5]]))).toBe(3)
    expect(labelsAfterInterventions(item(labels, []))).toBe(0)
    expect(labelsAfterInterventions({ inputIds: Uint32Array.of(1, 2), locations: [[0]] })).toBe(0)
  })

  it('refuses a set whose labels all precede their interventions, not one where some item trains', () => {
    const late = item([M, M, 12, 13, M, M], [[5]])
    const early = item([M, M, 12, 13, M, M], [[1]])
    expect(() => requireReachableLabels([late, late])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'dataset' }))
    expect(() => requireReachableLabels([late, early])).not.toThrow()
    // Nothing labelled (classification rows): nothing to say here.
    expect(() => requireReachableLabels([{ inputIds: Uint32Array.of(1, 2), locations: [[1]], classLabel: 1 }])).not.toThrow()
  })

  it('train checks it on a causal LM before the first step', async () => {
    const lm = Object.assign(new FakeReft(), { causalLm: true })
    const late = makeItems(4).map((it) => ({ ...it, locations: [[it.inputIds.length - 1]] }))
    await expect(train(lm, late, { epochs: 1, batchSize: 2 })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' })
    expect(lm.calls).toHaveLength(0)
    // Not a causal LM (an encoder, a head): not checked.
    const other = new FakeReft()
    await expect(train(other, late, { epochs: 1, batchSize: 2 })).resolves.toBeDefined()
    // makeItems intervenes at position 0: reachable.
    await expect(train(Object.assign(new FakeReft(), { causalLm: true }), makeItems(4), { epochs: 1, batchSize: 2 })).resolves.toBeDefined()
  })
})
