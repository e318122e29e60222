/**
 * Forward passes through a base model with no interventions (a native handle created with an
 * empty intervention list), for the base-model side of the response loss and for the judge's
 * next-token log-probabilities. Batches given to it lose their `positions`: the native side
 * rejects positions when there are no interventions.
 */
import type { Model } from '../model.js'
import { call, callAsync } from '../call.js'
import type { NativeBatch, NativeForwardOutput, NativeReft } from '../native-api.js'
import { ReftError } from '../errors.js'

/** Anything with a batch forward: a `ReftModel`, or {@link openBaseForward}'s result. */
export interface BatchForward {
  forward(batch: NativeBatch, wantLogits?: boolean): Promise<NativeForwardOutput>
}

/** A forward through the bare base model; `dispose` frees the handle (not the model). */
export interface BaseForward extends BatchForward {
  dispose(): void
  [Symbol.dispose](): void
}

/** `batch` without intervention positions. */
export function withoutPositions(batch: NativeBatch): NativeBatch {
  const { positions: _p, numPositions: _n, ...plain } = batch
  return plain
}

/** Opens a forward through `model` with no interventions. */
export function openBaseForward(model: Model): BaseForward {
  let handle: NativeReft | undefined = call(() => model.backend.createReft(model.handle, [], 0))
  const live = (): NativeReft => {
    if (handle === undefined) throw new ReftError('ERR_DISPOSED', 'this base forward was disposed')
    return handle
  }
  const dispose = (): void => {
    handle?.dispose()
    handle = undefined
  }
  return {
    forward: (batch, wantLogits = true) => {
      const h = live()
      return callAsync(() => h.forward(withoutPositions(batch), wantLogits))
    },
    dispose,
    [Symbol.dispose]: dispose,
  }
}
