/**
 * `ReftModel`: a base {@link Model} with interventions (and, on encoders, a classification head).
 * Wraps the native handle (kept private) with typed forward / generate / classify / save, dataset
 * helpers consistent with the adapter's positions, and the `Trainable` surface that {@link train}
 * drives.
 */
import type { ResolvedInterventionConfig } from './config.js'
import { classificationItems, inputsToExamples, predictItems, requireDecoder, type ClassifyInput, type ClassifyOptions, type ClassifyResult, type HeadInfo } from './classifier.js'
import type { ClassificationExample, ClassificationItem } from './datasets/classification.js'
import { collatePrompts, collateTraining } from './datasets/collate.js'
import type { InstructionExample, PromptFormat } from './datasets/instruction.js'
import { buildPromptItems } from './datasets/prompt-items.js'
import { buildLastPositionItems, buildMultiplePositionItems, type SupervisedItem } from './datasets/supervised.js'
import { ReftError } from './errors.js'
import type { Model } from './model.js'
import { call, callAsync } from './call.js'
import type { NativeBatch, NativeForwardOutput, NativeReft, NativeStepOptions, NativeStepStats } from './native-api.js'
import { flattenPositions } from './positions.js'
import type { Trainable } from './trainer-options.js'
import { toNativeBatch, type ForwardInput } from './forward-input.js'

/** Options of {@link ReftModel.generate}. */
export interface GenerateOptions {
  /** @defaultValue `64` */
  maxNewTokens?: number
  /** Argmax decoding. @defaultValue `true` */
  greedy?: boolean
  /** Sampling temperature (when `greedy` is false). @defaultValue `1` */
  temperature?: number
  /** Keep the k most likely tokens (0 = all). @defaultValue `0` */
  topK?: number
  /** Nucleus mass. @defaultValue `1` */
  topP?: number
  /** Sampling seed. @defaultValue `0` */
  seed?: number
  /** Extra stop token ids (the model's EOS ids always stop). */
  stop?: number[]
  /** Render string prompts with the model's chat template. @defaultValue `false` */
  chat?: boolean
  /** Explicit positions `[intervention][example][position]` for token-id prompts (left padding is applied for you). */
  positions?: number[][][]
  /** Stops generation; the promise rejects with ERR_ABORTED. */
  signal?: AbortSignal
}

/** Result of {@link ReftModel.generate}: new tokens per prompt, and their text. */
export interface GenerateResult {
  tokens: Uint32Array[]
  texts: string[]
}

/** Options of {@link ReftModel.dataset}. */
export interface DatasetOptions {
  /** Prompt formatting. @defaultValue `{ kind: 'raw' }`, or the chat template with `chat: true` */
  format?: PromptFormat
  /** Render prompts with the model's chat template. @defaultValue `false` */
  chat?: boolean
  /** Maximum tokens per example (longer outputs are truncated). */
  maxLength?: number
}

/** pyreft's `print_trainable_parameters` numbers, plus the head's. */
export interface TrainableParameters {
  interventionParams: number
  /** Trainable values of the classification head (0 without one); not part of `percent`. */
  headParams: number
  modelParams: number
  /** 100 · interventionParams / modelParams (the paper's "Params %"). */
  percent: number
}

const metadataVersion = 1

/** A base model with interventions. */
export class ReftModel implements Trainable {
  #native: NativeReft | undefined
  readonly model: Model
  readonly config: ResolvedInterventionConfig
  /** The model's pad token id, which pads batches ({@link train} uses it when `padId` is not given). */
  readonly padTokenId: number | undefined

  /** @internal use `model.withInterventions` or `loadReft` */
  constructor(model: Model, handle: NativeReft, config: ResolvedInterventionConfig) {
    this.model = model
    this.#native = handle
    this.config = config
    this.padTokenId = model.info().padTokenId
    call(() => handle.setMetadata(JSON.stringify({ version: metadataVersion, config })))
  }

  get #handle(): NativeReft {
    if (this.#native === undefined) throw new ReftError('ERR_DISPOSED', 'this ReftModel was disposed')
    return this.#native
  }

  /**
   * Forward pass: logits `[batch, seq, vocab]` and the loss when labels are given. With a head:
   * logits `[batch, numLabels]`, and the loss when the batch has `classLabels`.
   */
  async forward(input: ForwardInput | NativeBatch, wantLogits = true): Promise<NativeForwardOutput> {
    const batch = 'batchSize' in input ? input : toNativeBatch(input, this.config.numInterventions)
    return callAsync(() => this.#handle.forward(batch, wantLogits))
  }

  /** One optimizer step over micro-batches (used by {@link train}). */
  async trainStep(microBatches: NativeBatch[], options: NativeStepOptions): Promise<NativeStepStats> {
    return callAsync(() => this.#handle.trainStep(microBatches, options))
  }

  /** Dropout on (training) or off (evaluation). */
  setTraining(training: boolean): void {
    call(() => this.#handle.setTraining(training))
  }

  /** True for a decoder without a head: a causal LM trained on token labels (see {@link Trainable}). */
  get causalLm(): boolean {
    return this.model.info().kind === 'decoder' && this.head() === null
  }

  /** The classification head (`null` without one). */
  head(): HeadInfo | null {
    return call(() => this.#handle.head())
  }

  /**
   * Training / evaluation items for a classification adapter: `{ text, textPair?, label }`
   * tokenised with special tokens and segment ids, positioned as this adapter's config says (see
   * `buildClassificationItems` for pyreft's sink token and short rows). Encoders only.
   */
  classificationDataset(examples: readonly ClassificationExample[], options: Pick<ClassifyOptions, 'maxLength'> = {}): ClassificationItem[] {
    return classificationItems(this, this.model.handle, this.model.info(), examples, options.maxLength)
  }

  /** Predicts texts or text pairs with the head: logits per example and the argmax (or regression value). */
  async classify(inputs: readonly ClassifyInput[], options: ClassifyOptions = {}): Promise<ClassifyResult> {
    return this.predict(this.classificationDataset(inputsToExamples(inputs), options), options)
  }

  /** {@link classify} for items already built by {@link classificationDataset} (their labels are ignored). */
  async predict(items: readonly ClassificationItem[], options: ClassifyOptions = {}): Promise<ClassifyResult> {
    return predictItems(this, items, this.padTokenId ?? 0, options)
  }

  /** Training items for instruction examples, positioned as this adapter's config says. Decoders only. */
  dataset(examples: readonly InstructionExample[], options: DatasetOptions = {}): SupervisedItem[] {
    const info = this.model.info()
    requireDecoder(info, 'dataset()')
    const format = this.#format(options)
    const eosId = info.eosTokenIds[0]
    const common = { format, maxLength: options.maxLength, addSpecialTokens: false, ...(eosId === undefined ? { nonstop: true } : { eosId }) }
    const { positions, numInterventions, shareWeights } = this.config
    if (positions.first === 0 && positions.last === 1) return buildLastPositionItems(this.model, examples, { ...common, numInterventions })
    return buildMultiplePositionItems(this.model, examples, { ...common, positions, numInterventions, shareWeights })
  }

  #format(o: { format?: PromptFormat; chat?: boolean }): PromptFormat {
    if (o.format !== undefined) return o.format
    return o.chat === true ? this.model.chatFormat() : { kind: 'raw' }
  }

  #promptBatch(prompts: readonly (string | readonly number[] | Uint32Array)[], o: GenerateOptions): NativeBatch {
    const { positions, numInterventions, shareWeights } = this.config
    if (numInterventions === 0) {
      const ids = prompts.map((p) => (typeof p === 'string' ? this.model.encode(o.chat === true ? this.model.chatPrompt(p) : p) : Uint32Array.from(p)))
      const { positions: _unused, numPositions: _n, ...plain } = collatePrompts(ids.map((inputIds) => ({ inputIds, locations: [[inputIds.length - 1]] })))
      return plain
    }
    if (prompts.every((p) => typeof p === 'string')) {
      const texts = (prompts as string[]).map((p) => (o.chat === true ? this.model.chatPrompt(p) : p))
      const mode = positions.first === 0 && positions.last === 1 ? 'last_position' : 'multiple_position'
      const items = buildPromptItems(this.model, texts, { mode, positions, numInterventions, shareWeights, addSpecialTokens: false })
      return collatePrompts(items)
    }
    const ids = prompts.map((p) => (typeof p === 'string' ? this.model.encode(p) : Uint32Array.from(p)))
    const locs = o.positions ?? Array.from({ length: numInterventions }, () => ids.map((r) => [r.length - 1]))
    const items = ids.map((inputIds, b) => ({ inputIds, locations: locs.map((perInt) => perInt[b] ?? []) }))
    return collatePrompts(items)
  }

  /**
   * Generates for string prompts (tokenised, optionally chat-templated) or token-id prompts.
   * Interventions act on the prompt positions during prefill only (pyreft `intervene_on_prompt`).
   */
  async generate(prompts: string | readonly (string | readonly number[] | Uint32Array)[], options: GenerateOptions = {}, onToken?: (tokens: number[]) => void): Promise<GenerateResult> {
    const list = typeof prompts === 'string' ? [prompts] : prompts
    const info = this.model.info()
    requireDecoder(info, 'generate()')
    if (list.length === 0) throw new ReftError('ERR_SHAPE', 'no prompts given')
    const batch = this.#promptBatch(list, options)
    const stop = [...info.eosTokenIds, ...(options.stop ?? [])]
    const handle = this.#handle
    const native = { maxNewTokens: options.maxNewTokens ?? 64, greedy: options.greedy ?? true, temperature: options.temperature, topK: options.topK, topP: options.topP, seed: options.seed, stopTokenIds: stop }
    if (options.signal?.aborted === true) throw new ReftError('ERR_ABORTED', 'aborted before start')
    const onAbort = () => handle.abort()
    options.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const tokens = await callAsync(() => handle.generate(batch, native, onToken))
      return { tokens, texts: tokens.map((t) => this.model.decode(t)) }
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
    }
  }

  /**
   * Streams the text of one prompt as it is generated. Pieces concatenate to `generate`'s text:
   * a piece is held back while it ends in an incomplete UTF-8 sequence, and the final tokens of the
   * native result are used at the end (token callbacks may still be in flight when it resolves).
   * Leaving the loop early aborts the generation.
   */
  async *generateStream(prompt: string, options: GenerateOptions = {}): AsyncGenerator<string> {
    const queue: number[] = []
    let wake: (() => void) | undefined
    let outcome: { ok: true; tokens: Uint32Array } | { ok: false; error: unknown } | undefined
    const done = this.generate([prompt], options, (tokens) => {
      queue.push(tokens[0]!)
      wake?.()
    }).then(
      (r) => void (outcome = { ok: true, tokens: r.tokens[0]! }),
      (error: unknown) => void (outcome = { ok: false, error }),
    )
    void done.finally(() => wake?.())
    let emitted = ''
    const all: number[] = []
    let complete = false
    try {
      for (;;) {
        if (queue.length === 0 && outcome === undefined) await new Promise<void>((r) => (wake = r))
        wake = undefined
        const final = outcome
        if (final !== undefined && !final.ok) throw final.error
        if (final !== undefined) all.splice(0, all.length, ...final.tokens)
        else all.push(...queue.splice(0))
        const text = this.model.decode(all)
        if (text.length > emitted.length && (final !== undefined || !text.endsWith('\uFFFD'))) {
          yield text.slice(emitted.length)
          emitted = text
        }
        if (final !== undefined) break
      }
      complete = true
    } finally {
      if (!complete && outcome === undefined) {
        this.#native?.abort()
        await done
      }
    }
  }

  /** pyreft's `print_trainable_parameters` numbers, and the head's trainable values. */
  trainableParameters(): TrainableParameters {
    const p = call(() => this.#handle.trainableParameters())
    return { ...p, percent: (100 * p.interventionParams) / p.modelParams }
  }

  /** Saves the adapter (atomically) in reft's checkpoint format; `withOptimizer` adds AdamW state. */
  async save(dir: string, withOptimizer = false): Promise<void> {
    return callAsync(() => this.#handle.save(dir, withOptimizer))
  }

  /**
   * The checkpoint `save` would write, as in-memory files (`reft_config.json`,
   * `interventions.safetensors`, and `optimizer.safetensors` with `withOptimizer`): for hosts
   * without a file system. WebAssembly backend only; ERR_BACKEND on the native addon.
   */
  saveFiles(withOptimizer = false): Record<string, Uint8Array> {
    const handle = this.#handle as NativeReft & { saveFiles?: (withOptimizer: boolean) => Record<string, Uint8Array> }
    const save = handle.saveFiles
    if (typeof save !== 'function') throw new ReftError('ERR_BACKEND', 'saveFiles() needs the WebAssembly backend; on the native addon use save(dir)')
    return call(() => save.call(handle, withOptimizer))
  }

  /** Flat positions for a batch, from `[intervention][example][position]`. */
  static positions(locs: number[][][]): { data: Int32Array; numPositions: number } {
    return flattenPositions(locs)
  }

  /** Collates training items into one right-padded batch. */
  static collate(items: readonly SupervisedItem[], padId = 0): NativeBatch {
    return collateTraining(items, { padId })
  }

  dispose(): void {
    this.#native?.dispose()
    this.#native = undefined
  }

  [Symbol.dispose](): void {
    this.dispose()
  }
}
