/**
 * The handles of the WebAssembly backend: `WasmModel` and `WasmReft` implement the
 * `NativeModel`/`NativeReft` contracts of src/native-api.ts over the wasm-bindgen objects of
 * `bindings.ts`, free what they allocate in WebAssembly memory, and convert errors (a trap
 * disables the whole backend, since the instance is then in an unknown state). No Node imports:
 * the browser entry uses these too; writing a checkpoint to a directory is injected.
 */
import { ReftError, toReftError } from '../errors.js'
import type {
  NativeBatch,
  NativeEncodedPair,
  NativeForwardOutput,
  NativeGenerateOptions,
  NativeHeadInfo,
  NativeInterventionSpec,
  NativeModel,
  NativeModelInfo,
  NativeReft,
  NativeStepOptions,
  NativeStepStats,
  NativeTrainableParameters,
} from '../native-api.js'
import type { FileRecord, RawBatch, RawFiles, RawModel, RawReft, WasmBindings } from './raw.js'

/** Writes a checkpoint's files to a directory (Node); absent where there is no file system. */
export type CheckpointWriter = (dir: string, files: FileRecord) => void

/** An adapter of the WebAssembly backend: a {@link NativeReft} that also saves to memory. */
export interface WasmReftHandle extends NativeReft {
  /** The checkpoint's files (what `save` writes to a directory). */
  saveFiles(withOptimizer: boolean): FileRecord
}

let broken: ReftError | undefined

/** Runs a call into the module, converting its errors; a trap disables the backend. */
export function guard<T>(f: () => T): T {
  if (broken !== undefined) throw broken
  try {
    return f()
  } catch (e) {
    if (e instanceof Error && e.name === 'RuntimeError') {
      broken = new ReftError('ERR_BACKEND', `the WebAssembly module aborted (${e.message}); see the panic message on stderr. Restart the process to use it again`, { cause: e })
      throw broken
    }
    throw toReftError(e)
  }
}

/** Moves `files` into a new `WasmFiles` (the caller frees or hands it on). */
export function toRaw(b: WasmBindings, files: FileRecord): RawFiles {
  const raw = new b.WasmFiles()
  for (const [name, bytes] of Object.entries(files)) raw.add(name, bytes)
  return raw
}

/** Copies a `WasmFiles` out and frees it. */
export function fromRaw(raw: RawFiles): FileRecord {
  try {
    const out: FileRecord = {}
    for (const name of raw.names()) out[name] = raw.take(name) ?? new Uint8Array()
    return out
  } finally {
    raw.free()
  }
}

function toRawBatch(b: WasmBindings, x: NativeBatch): RawBatch {
  return new b.WasmBatch(x.inputIds, x.batchSize, x.seqLen, x.attentionMask, x.positions, x.numPositions, x.labels, x.tokenTypeIds, x.classLabels)
}

/** Frees `obj` after `f` read what it needs from it. */
export function using<T extends { free(): void }, R>(obj: T, f: (o: T) => R): R {
  try {
    return f(obj)
  } finally {
    obj.free()
  }
}

const rawModels = new WeakMap<object, () => RawModel>()

/** Owns one wasm-bindgen object until `dispose()`; later calls fail with ERR_DISPOSED. */
abstract class Owned<T extends { dispose(): void; free(): void }> {
  #raw: T | undefined
  readonly #what: string

  constructor(raw: T, what: string) {
    this.#raw = raw
    this.#what = what
  }

  /** The live object (ERR_DISPOSED after `dispose`). */
  protected get raw(): T {
    if (this.#raw === undefined) throw new ReftError('ERR_DISPOSED', `this ${this.#what} was disposed`)
    return this.#raw
  }

  /** The object, or `undefined` once disposed. */
  protected get rawIfLive(): T | undefined {
    return this.#raw
  }

  get disposed(): boolean {
    return this.#raw === undefined
  }

  dispose(): void {
    const raw = this.#raw
    this.#raw = undefined
    if (raw !== undefined) guard(() => (raw.dispose(), raw.free()))
  }
}

export class WasmModel extends Owned<RawModel> implements NativeModel {
  constructor(raw: RawModel) {
    super(raw, 'model')
    rawModels.set(this, () => this.raw)
  }

  info(): NativeModelInfo {
    return JSON.parse(guard(() => this.raw.info())) as NativeModelInfo
  }

  encode(text: string, addSpecialTokens: boolean): Uint32Array {
    return guard(() => this.raw.encode(text, addSpecialTokens))
  }

  encodePair(text: string, pair: string | null, addSpecialTokens: boolean, maxLength?: number | null): NativeEncodedPair {
    const raw = guard(() => this.raw.encodePair(text, pair ?? undefined, addSpecialTokens, maxLength ?? undefined))
    return using(raw, (e) => ({ ids: e.ids, typeIds: e.typeIds }))
  }

  decode(ids: Uint32Array, skipSpecialTokens: boolean): string {
    return guard(() => this.raw.decode(ids, skipSpecialTokens))
  }

  tokenToId(token: string): number | null {
    return guard(() => this.raw.tokenToId(token)) ?? null
  }
}

export class WasmReft extends Owned<RawReft> implements WasmReftHandle {
  readonly #b: WasmBindings
  readonly #write: CheckpointWriter | undefined

  constructor(b: WasmBindings, raw: RawReft, write?: CheckpointWriter) {
    super(raw, 'adapter')
    this.#b = b
    this.#write = write
  }

  specs(): NativeInterventionSpec[] {
    return JSON.parse(guard(() => this.raw.specs())) as NativeInterventionSpec[]
  }

  async forward(batch: NativeBatch, wantLogits: boolean): Promise<NativeForwardOutput> {
    return guard(() =>
      using(toRawBatch(this.#b, batch), (rb) =>
        using(this.raw.forward(rb, wantLogits), (o) => {
          const out: NativeForwardOutput = { logits: o.logits, dims: Array.from(o.dims), numTokens: o.numTokens }
          if (o.loss !== undefined) out.loss = o.loss
          return out
        }),
      ),
    )
  }

  async trainStep(microBatches: NativeBatch[], options: NativeStepOptions): Promise<NativeStepStats> {
    return guard(() => {
      const raw = this.raw
      const batches = microBatches.map((m) => toRawBatch(this.#b, m))
      return using(raw.trainStep(batches, JSON.stringify(options)), (s) => ({ loss: s.loss, gradNorm: s.gradNorm, numTokens: s.numTokens, step: s.step }))
    })
  }

  async generate(prompts: NativeBatch, options: NativeGenerateOptions, onToken?: (tokens: number[]) => void): Promise<Uint32Array[]> {
    return guard(() =>
      using(toRawBatch(this.#b, prompts), (rb) => {
        const cb = onToken === undefined ? undefined : (t: Uint32Array) => onToken(Array.from(t))
        return using(this.raw.generate(rb, JSON.stringify(options), cb), (g) => {
          const { tokens, offsets } = g
          return Array.from({ length: offsets.length - 1 }, (_, i) => tokens.slice(offsets[i], offsets[i + 1]))
        })
      }),
    )
  }

  abort(): void {
    this.rawIfLive?.abort()
  }

  metadata(): string | null {
    return guard(() => this.raw.metadata()) ?? null
  }

  setMetadata(json: string): void {
    guard(() => this.raw.setMetadata(json))
  }

  setTraining(training: boolean): void {
    guard(() => this.raw.setTraining(training))
  }

  trainableParameters(): NativeTrainableParameters {
    return JSON.parse(guard(() => this.raw.trainableParameters())) as NativeTrainableParameters
  }

  head(): NativeHeadInfo | null {
    const json = guard(() => this.raw.head())
    return json === undefined ? null : (JSON.parse(json) as NativeHeadInfo)
  }

  saveFiles(withOptimizer: boolean): FileRecord {
    return fromRaw(guard(() => this.raw.saveFiles(withOptimizer)))
  }

  async save(dir: string, withOptimizer: boolean): Promise<void> {
    if (this.#write === undefined) {
      throw new ReftError('ERR_IO', `cannot save to ${dir}: there is no file system here; use saveFiles() for the checkpoint's bytes`)
    }
    this.#write(dir, this.saveFiles(withOptimizer))
  }
}

/** The raw model behind a handle of this backend (a native handle is refused). */
export function rawModel(model: NativeModel): RawModel {
  const get = rawModels.get(model)
  if (get === undefined) throw new ReftError('ERR_INVALID_CONFIG', 'invalid config: model: not a model of the WebAssembly backend')
  return get()
}
