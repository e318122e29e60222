/**
 * The exports of crates/reft-wasm, typed by hand: what wasm-bindgen generates for both the Node
 * build (`wasm/node/`) and the browser build (`wasm/web/`). Small option objects cross as JSON
 * text; bulk data as typed arrays; errors as `Error`s whose message starts with the `[ERR_…]` code.
 * Types only, so the browser entry can import it.
 */

/** In-memory files of one flat directory: file name → bytes. */
export type FileRecord = Record<string, Uint8Array>

/** Objects wasm-bindgen hands out own WebAssembly memory until `free()`d. */
export interface Freeable {
  free(): void
}

/** `WasmFiles`: file name → bytes inside WebAssembly memory. */
export interface RawFiles extends Freeable {
  add(name: string, bytes: Uint8Array): void
  names(): string[]
  get(name: string): Uint8Array | undefined
  take(name: string): Uint8Array | undefined
  readonly size: number
}

/** `WasmBatch`: a batch copied into WebAssembly memory. */
export type RawBatch = Freeable

export interface RawForwardOutput extends Freeable {
  readonly logits: Float32Array
  readonly dims: Uint32Array
  readonly loss: number | undefined
  readonly numTokens: number
}

export interface RawStepStats extends Freeable {
  readonly loss: number
  readonly gradNorm: number
  readonly numTokens: number
  readonly step: number
}

export interface RawGenerated extends Freeable {
  readonly tokens: Uint32Array
  readonly offsets: Uint32Array
}

export interface RawEncodedPair extends Freeable {
  readonly ids: Uint32Array
  readonly typeIds: Uint32Array
}

export interface RawModel extends Freeable {
  info(): string
  encode(text: string, addSpecialTokens: boolean): Uint32Array
  encodePair(text: string, pair: string | undefined, addSpecialTokens: boolean, maxLength: number | undefined): RawEncodedPair
  decode(ids: Uint32Array, skipSpecialTokens: boolean): string
  tokenToId(token: string): number | undefined
  dispose(): void
}

export interface RawReft extends Freeable {
  specs(): string
  forward(batch: RawBatch, wantLogits: boolean): RawForwardOutput
  /** Consumes the batches. */
  trainStep(microBatches: RawBatch[], optionsJson: string): RawStepStats
  generate(prompts: RawBatch, optionsJson: string, onToken?: (tokens: Uint32Array) => void): RawGenerated
  abort(): void
  metadata(): string | undefined
  setMetadata(json: string): void
  setTraining(training: boolean): void
  trainableParameters(): string
  head(): string | undefined
  saveFiles(withOptimizer: boolean): RawFiles
  dispose(): void
}

/** The module surface of crates/reft-wasm. */
export interface WasmBindings {
  WasmFiles: new () => RawFiles
  WasmBatch: new (
    inputIds: Uint32Array,
    batchSize: number,
    seqLen: number,
    attentionMask?: Uint8Array,
    positions?: Int32Array,
    numPositions?: number,
    labels?: Int32Array,
    tokenTypeIds?: Uint32Array,
    classLabels?: Float32Array,
  ) => RawBatch
  /** Consumes `files`. */
  loadModel(files: RawFiles, optionsJson?: string): RawModel
  createReft(model: RawModel, specsJson: string, seed: number, headJson?: string): RawReft
  loadReft(model: RawModel, files: RawFiles, withOptimizer: boolean): RawReft
  tinyModelFiles(seed: number): RawFiles
  tinyEncoderFiles(seed: number, numLabels?: number): RawFiles
}
