/**
 * `backend: 'auto'` when no native binary loads: the WebAssembly build takes over (one warning on
 * stderr); `'native'` still fails with ERR_BACKEND. The addon's loader is mocked to fail, as on a
 * platform without a prebuilt binary.
 */
import { describe, expect, it, vi } from 'vitest'
import { ReftError } from '../../src/errors.js'
import { code } from '../helpers/error-code.js'
import { wasmBuilt } from './helpers.js'

vi.mock('../../src/native.js', () => ({
  native: () => {
    throw new ReftError('ERR_BACKEND', 'the reft native addon could not be loaded (mocked: no binary for this platform)')
  },
}))

describe.skipIf(!wasmBuilt())('fallback to WebAssembly', () => {
  it('auto falls back with one warning; native refuses', async () => {
    const { selectBackend } = await import('../../src/backend.js')
    const writes: string[] = []
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (writes.push(String(s)), true))
    try {
      expect(selectBackend('auto').kind).toBe('wasm')
      expect(selectBackend('auto').kind).toBe('wasm')
    } finally {
      spy.mockRestore()
    }
    expect(writes.join('')).toMatch(/using the WebAssembly backend/)
    expect(writes.filter((w) => w.includes('using the WebAssembly backend'))).toHaveLength(1)
    expect(code(() => selectBackend('native'))).toBe('ERR_BACKEND')
  })
})
