import { describe, expect, it } from 'vitest'
import { ReftError, isReftErrorCode, reftErrorCodes, toReftError } from '../src/errors.js'

const withCode = (message: string, code: unknown): Error => Object.assign(new Error(message), { code })

describe('toReftError', () => {
  it('keeps a ReftError as is', () => {
    const e = new ReftError('ERR_SHAPE', 'bad')
    expect(toReftError(e)).toBe(e)
  })

  it('maps a native error carrying one of our codes, keeping message and cause', () => {
    for (const c of reftErrorCodes) {
      const native = withCode(`native ${c}`, c)
      const r = toReftError(native)
      expect(r).toBeInstanceOf(ReftError)
      expect(r.code).toBe(c)
      expect(r.message).toBe(`native ${c}`)
      expect(r.cause).toBe(native)
    }
  })

  it('maps napi statuses, Node system errors and AbortError', () => {
    expect(toReftError(withCode('x', 'InvalidArg')).code).toBe('ERR_INVALID_CONFIG')
    expect(toReftError(withCode('x', 'GenericFailure')).code).toBe('ERR_BACKEND')
    expect(toReftError(withCode('x', 'Cancelled')).code).toBe('ERR_ABORTED')
    expect(toReftError(withCode('x', 'ENOENT')).code).toBe('ERR_IO')
    const abort = new Error('stop')
    abort.name = 'AbortError'
    expect(toReftError(abort).code).toBe('ERR_ABORTED')
  })

  it('falls back to ERR_BACKEND for unknown codes and non-errors', () => {
    expect(toReftError(withCode('x', 'ERR_SOMETHING_ELSE')).code).toBe('ERR_BACKEND')
    expect(toReftError(new TypeError('t')).code).toBe('ERR_BACKEND')
    const s = toReftError('plain string')
    expect(s.code).toBe('ERR_BACKEND')
    expect(s.message).toBe('plain string')
    expect(toReftError(42).cause).toBe(42)
  })

  it('isReftErrorCode only accepts the union', () => {
    expect(isReftErrorCode('ERR_IO')).toBe(true)
    expect(isReftErrorCode('ERR_NOPE')).toBe(false)
    expect(isReftErrorCode(3)).toBe(false)
  })

  it('is an Error with name ReftError', () => {
    const e = new ReftError('ERR_IO', 'm', { field: 'f' })
    expect(e).toBeInstanceOf(Error)
    expect(e.name).toBe('ReftError')
    expect(e.field).toBe('f')
  })
})
