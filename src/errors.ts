/**
 * The one error type of the TypeScript layer, with a stable machine-readable `code`.
 *
 * Native errors arrive from napi as plain `Error`s whose `code` property is a string; `toReftError`
 * turns them (and anything else thrown) into a `ReftError` so callers can branch on `code` only.
 */

/** Every code a `ReftError` can carry. Tests and callers compare on these, never on messages. */
export type ReftErrorCode =
  | 'ERR_INVALID_CONFIG'
  | 'ERR_SHAPE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_UNSUPPORTED_MODEL'
  | 'ERR_IO'
  | 'ERR_FORMAT'
  | 'ERR_NON_FINITE'
  | 'ERR_NO_GRAD'
  | 'ERR_DISPOSED'
  | 'ERR_ABORTED'
  | 'ERR_BACKEND'

/** All codes, in declaration order. */
export const reftErrorCodes: readonly ReftErrorCode[] = [
  'ERR_INVALID_CONFIG',
  'ERR_SHAPE',
  'ERR_OUT_OF_RANGE',
  'ERR_UNSUPPORTED_MODEL',
  'ERR_IO',
  'ERR_FORMAT',
  'ERR_NON_FINITE',
  'ERR_NO_GRAD',
  'ERR_DISPOSED',
  'ERR_ABORTED',
  'ERR_BACKEND',
]

const codeSet: ReadonlySet<string> = new Set(reftErrorCodes)

/** Options for constructing a {@link ReftError}. */
export interface ReftErrorOptions {
  /** The underlying error, kept for debugging. */
  cause?: unknown
  /** The option / config field that was invalid, when there is one. */
  field?: string
}

/** An error raised by reft, carrying a stable {@link ReftErrorCode}. */
export class ReftError extends Error {
  /** Stable code; branch on this, not on `message`. */
  readonly code: ReftErrorCode
  /** The offending option or config field, for validation errors. */
  readonly field: string | undefined

  constructor(code: ReftErrorCode, message: string, options: ReftErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ReftError'
    this.code = code
    this.field = options.field
  }
}

/** True when `value` is one of the {@link ReftErrorCode} strings. */
export function isReftErrorCode(value: unknown): value is ReftErrorCode {
  return typeof value === 'string' && codeSet.has(value)
}

/**
 * Generic napi statuses (napi-rs `Status`) that the binding may use instead of our own codes,
 * and Node system error codes, mapped to the nearest ReftErrorCode.
 */
const foreignCodes: Readonly<Record<string, ReftErrorCode>> = {
  InvalidArg: 'ERR_INVALID_CONFIG',
  ObjectExpected: 'ERR_INVALID_CONFIG',
  StringExpected: 'ERR_INVALID_CONFIG',
  NumberExpected: 'ERR_INVALID_CONFIG',
  BooleanExpected: 'ERR_INVALID_CONFIG',
  ArrayExpected: 'ERR_INVALID_CONFIG',
  FunctionExpected: 'ERR_INVALID_CONFIG',
  Cancelled: 'ERR_ABORTED',
  ABORT_ERR: 'ERR_ABORTED',
  GenericFailure: 'ERR_BACKEND',
  PendingException: 'ERR_BACKEND',
  ENOENT: 'ERR_IO',
  EACCES: 'ERR_IO',
  EEXIST: 'ERR_IO',
  ENOTDIR: 'ERR_IO',
  EISDIR: 'ERR_IO',
  ENOSPC: 'ERR_IO',
  EPERM: 'ERR_IO',
  ENOTEMPTY: 'ERR_IO',
}

/**
 * Convert anything thrown (native napi error, Node system error, AbortError, string) into a
 * `ReftError`. A `ReftError` is returned unchanged. The original value becomes `cause`, and the
 * message is kept. Unknown codes become `'ERR_BACKEND'`.
 */
export function toReftError(e: unknown): ReftError {
  if (e instanceof ReftError) return e
  if (e instanceof Error) {
    // The native binding prefixes messages with its stable code: "[ERR_SHAPE] ...".
    const tagged = /^\[(ERR_[A-Z_]+)\] ([\s\S]*)$/.exec(e.message)
    if (tagged !== null && isReftErrorCode(tagged[1])) {
      return new ReftError(tagged[1], tagged[2] ?? e.message, { cause: e })
    }
    const raw = (e as { code?: unknown }).code
    let code: ReftErrorCode = 'ERR_BACKEND'
    if (isReftErrorCode(raw)) code = raw
    else if (typeof raw === 'string' && foreignCodes[raw] !== undefined) code = foreignCodes[raw]
    else if (e.name === 'AbortError') code = 'ERR_ABORTED'
    return new ReftError(code, e.message, { cause: e })
  }
  return new ReftError('ERR_BACKEND', typeof e === 'string' ? e : `non-error thrown: ${String(e)}`, {
    cause: e,
  })
}

/** Shorthand for a validation failure on one named field. */
export function invalidConfig(field: string, reason: string): ReftError {
  return new ReftError('ERR_INVALID_CONFIG', `${field}: ${reason}`, { field })
}

/** Shorthand for a value outside its allowed range, naming the field. */
export function outOfRange(field: string, reason: string): ReftError {
  return new ReftError('ERR_OUT_OF_RANGE', `${field}: ${reason}`, { field })
}
