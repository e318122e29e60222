/**
 * Error conversion at the backend boundary: every call into the native addon or the WebAssembly
 * module goes through {@link call} / {@link callAsync}, so callers only ever see `ReftError`s with a
 * stable `code`. Kept free of Node imports: the browser entry uses it too.
 */
import { toReftError } from './errors.js'

/** Runs a backend call, converting its errors into `ReftError` with a stable `code`. */
export function call<T>(f: () => T): T {
  try {
    return f()
  } catch (e) {
    throw toReftError(e)
  }
}

/** Awaits a backend promise, converting its rejection into `ReftError`. */
export async function callAsync<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f()
  } catch (e) {
    throw toReftError(e)
  }
}
