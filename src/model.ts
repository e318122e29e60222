/**
 * `Model`: a frozen base model with its tokenizer and chat template, on the backend that loaded
 * it (the native addon, or the WebAssembly module in Node or a browser). `withInterventions`
 * turns it into a trainable {@link ReftModel}, with a classification head for encoders. Loading
 * lives in load-model.ts (Node) and src/browser/ (browsers).
 */
import type { InterventionConfig, ResolvedInterventionConfig } from './config.js'
import { expandConfig, resolveConfig } from './config.js'
import { formatPrompt, type PromptFormat } from './datasets/instruction.js'
import { ReftError } from './errors.js'
import { requireEncoder, resolveHead, type HeadConfig } from './classifier.js'
import { call } from './call.js'
import type { Backend, NativeModel, NativeModelInfo } from './native-api.js'
import { ReftModel, type GenerateOptions, type GenerateResult } from './reft-model.js'

/** Static facts about a base model. */
export type ModelInfo = NativeModelInfo

/** Options of {@link Model.withInterventions}. */
export interface WithInterventionsOptions {
  /** Initialisation seed of the interventions (and the head). @defaultValue `42` */
  seed?: number
  /** A classification / regression head on the first token (encoders only). */
  head?: HeadConfig
}

/** The config of an adapter without interventions (a bare model, or a head-only classifier). */
export const noInterventions: ResolvedInterventionConfig = {
  kind: 'loreft', layers: [], component: 'block_output', positions: { first: 0, last: 0 }, rank: 1, tied: true,
  dropout: 0, activation: 'linear', addBias: false, shareWeights: true, perLayer: 1, numInterventions: 0,
}

/** A frozen base model and its tokenizer. */
export class Model {
  #native: NativeModel | undefined
  /** Where the model came from (a path, URL or file name). */
  readonly path: string
  /** @internal the backend that loaded it; adapters are created on the same one */
  readonly backend: Backend

  /** @internal use `loadModel` */
  constructor(handle: NativeModel, path: string, backend: Backend) {
    this.#native = handle
    this.path = path
    this.backend = backend
  }

  /** Which backend runs this model: the native addon or the WebAssembly module. */
  get backendKind(): 'native' | 'wasm' {
    return this.backend.kind
  }

  /** @internal */
  get handle(): NativeModel {
    if (this.#native === undefined) throw new ReftError('ERR_DISPOSED', 'this model was disposed')
    return this.#native
  }

  /** Architecture, sizes, special tokens and chat template. */
  info(): ModelInfo {
    return call(() => this.handle.info())
  }

  /** Token ids of `text` (no special tokens unless `addSpecialTokens`). */
  encode(text: string, addSpecialTokens = false): Uint32Array {
    return call(() => this.handle.encode(text, addSpecialTokens))
  }

  /**
   * Token ids and segment ids of a text or text pair, with special tokens by default, truncated
   * longest-first to `maxLength` tokens when given (transformers' `truncation=True`).
   */
  encodePair(text: string, pair?: string | null, options: { addSpecialTokens?: boolean; maxLength?: number } = {}): { ids: Uint32Array; typeIds: Uint32Array } {
    return call(() => this.handle.encodePair(text, pair ?? null, options.addSpecialTokens ?? true, options.maxLength ?? null))
  }

  /** Text of `ids` (special tokens skipped unless `skipSpecialTokens` is false). */
  decode(ids: Uint32Array | readonly number[], skipSpecialTokens = true): string {
    const arr = ids instanceof Uint32Array ? ids : Uint32Array.from(ids)
    return call(() => this.handle.decode(arr, skipSpecialTokens))
  }

  /** Id of an exact token string, or `null`. */
  tokenToId(token: string): number | null {
    return call(() => this.handle.tokenToId(token))
  }

  /**
   * The prompt format that renders a user turn with this model's chat template (and the
   * generation prompt). Throws ERR_UNSUPPORTED_MODEL when the model has no template.
   */
  chatFormat(systemPrompt?: string): PromptFormat {
    const info = this.info()
    if (info.chatTemplate === undefined || info.chatTemplate === null) {
      throw new ReftError('ERR_UNSUPPORTED_MODEL', 'this model has no chat template')
    }
    const tok = (id: number | undefined | null) => (id === undefined || id === null ? '' : this.decode([id], false))
    // Strip a rendered leading BOS only when tokenising adds it back: SmolLM2's BOS is
    // `<|im_start|>`, which its tokenizer never prepends, so stripping it lost the first turn's
    // opening token.
    const bosId = info.bosTokenId
    const addsBos = bosId !== undefined && bosId !== null && this.encode('x', true)[0] === bosId
    return { kind: 'chat', template: info.chatTemplate, bosToken: tok(bosId), eosToken: tok(info.eosTokenIds[0]), systemPrompt, stripBos: addsBos }
  }

  /** Renders one user turn with the model's chat template, ready for generation. */
  chatPrompt(user: string, systemPrompt?: string): string {
    return formatPrompt({ prompt: user }, this.chatFormat(systemPrompt))
  }

  /**
   * A new {@link ReftModel} with freshly initialised interventions (`null`: none, for a head-only
   * baseline). `options.head` adds a classification or regression head on the first token, for
   * encoders only (ERR_UNSUPPORTED_MODEL on a decoder); it trains together with the interventions.
   */
  withInterventions(config: InterventionConfig | null, options: WithInterventionsOptions = {}): ReftModel {
    const numLayers = this.info().numLayers
    const resolved = config === null ? structuredClone(noInterventions) : resolveConfig(config, numLayers)
    const specs = config === null ? [] : expandConfig(config, numLayers)
    const head = options.head === undefined ? undefined : resolveHead(options.head)
    if (head !== undefined) requireEncoder(this.info(), 'a classification head')
    const handle = call(() => this.backend.createReft(this.handle, specs, options.seed ?? 42, head ?? null))
    return new ReftModel(this, handle, resolved)
  }

  /** Generates with the bare model (no interventions); same options and `onToken` as `ReftModel.generate`. */
  async generate(prompts: string | readonly (string | readonly number[] | Uint32Array)[], options: GenerateOptions = {}, onToken?: (tokens: number[]) => void): Promise<GenerateResult> {
    const bare = this.#bare()
    try {
      return await bare.generate(prompts, options, onToken)
    } finally {
      bare.dispose()
    }
  }

  /** Streams the bare model's text for one prompt; see `ReftModel.generateStream`. */
  async *generateStream(prompt: string, options: GenerateOptions = {}): AsyncGenerator<string> {
    const bare = this.#bare()
    try {
      yield* bare.generateStream(prompt, options)
    } finally {
      bare.dispose()
    }
  }

  /** A ReftModel with no interventions over this model. */
  #bare(): ReftModel {
    const handle = call(() => this.backend.createReft(this.handle, [], 0))
    return new ReftModel(this, handle, structuredClone(noInterventions))
  }

  /**
   * Frees this handle. Adapters created from it keep the weights alive for `forward`, `trainStep`
   * and `save`, but tokenizer work (`generate`, `dataset`) goes through this model and then fails
   * with ERR_DISPOSED: dispose the model after its adapters.
   */
  dispose(): void {
    this.#native?.dispose()
    this.#native = undefined
  }

  [Symbol.dispose](): void {
    this.dispose()
  }
}
