/**
 * Small option validators shared by configs, schedules, datasets and the trainer.
 *
 * Each throws a `ReftError` whose `field` (and message) names the offending option, so a bad value
 * is rejected in TypeScript before anything crosses into the native side.
 */
import { invalidConfig, outOfRange } from './errors.js'

/** Range bounds for a numeric check; `undefined` means unbounded on that side. */
export interface NumberBounds {
  /** Inclusive lower bound. */
  min?: number
  /** Inclusive upper bound. */
  max?: number
  /** Exclusive upper bound (for half-open ranges such as dropout in [0, 1)). */
  below?: number
  /** Exclusive lower bound. */
  above?: number
}

/** A finite number within `bounds`; type errors are ERR_INVALID_CONFIG, range errors ERR_OUT_OF_RANGE. */
export function checkNumber(field: string, value: unknown, bounds: NumberBounds = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalidConfig(field, `expected a finite number, got ${describe(value)}`)
  }
  checkBounds(field, value, bounds)
  return value
}

/** An integer within `bounds`. */
export function checkInteger(field: string, value: unknown, bounds: NumberBounds = {}): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw invalidConfig(field, `expected an integer, got ${describe(value)}`)
  }
  checkBounds(field, value, bounds)
  return value
}

/** A boolean. */
export function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidConfig(field, `expected a boolean, got ${describe(value)}`)
  return value
}

/** One of the allowed string literals. */
export function checkOneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalidConfig(field, `expected one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`)
  }
  return value as T
}

function checkBounds(field: string, value: number, b: NumberBounds): void {
  if (b.min !== undefined && value < b.min) throw outOfRange(field, `must be >= ${b.min}, got ${value}`)
  if (b.max !== undefined && value > b.max) throw outOfRange(field, `must be <= ${b.max}, got ${value}`)
  if (b.below !== undefined && value >= b.below) throw outOfRange(field, `must be < ${b.below}, got ${value}`)
  if (b.above !== undefined && value <= b.above) throw outOfRange(field, `must be > ${b.above}, got ${value}`)
}

/** Short printable form of an arbitrary value for error messages. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (Array.isArray(value)) return 'an array'
  if (value === null) return 'null'
  if (typeof value === 'object') return 'an object'
  return String(value)
}
