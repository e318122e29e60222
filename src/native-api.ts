/**
 * The contract of the native binding (crates/reft-node), as TypeScript types.
 *
 * `src/native.ts` is the only module that loads the compiled addon; everything else in `src/`
 * programs against these interfaces, which lets pure-TS tests substitute a fake.
 * Arrays are flat typed arrays in row-major order; shapes travel beside them.
 */

/** Options for loading a base model. */
export interface NativeLoadOptions {
  /** 'cpu' (default) or 'cuda' (only in CUDA builds). */
  device?: string
  /** 'f32' (default on CPU) | 'bf16' | 'f16'. */
  dtype?: string
}

/** Static facts about a loaded base model. */
export interface NativeModelInfo {
  /** e.g. 'llama', 'mistral', 'qwen2', 'bert', 'roberta', 'xlm-roberta'. */
  architecture: string
  /** `'decoder'`: a causal LM (generation); `'encoder'`: BERT-like (classification heads, no generation). */
  kind: 'decoder' | 'encoder'
  /** Classes of a classification head stored in an encoder checkpoint (a fresh head with this many classes starts from it). */
  numLabels?: number
  /** 'gguf' | 'hf'. */
  source: string
  numLayers: number
  hiddenSize: number
  intermediateSize: number
  numHeads: number
  numKvHeads: number
  vocabSize: number
  maxPositionEmbeddings: number
  /** Total parameter count of the frozen base model. */
  numParameters: number
  bosTokenId?: number
  eosTokenIds: number[]
  padTokenId?: number
  /** Jinja chat template from the model files, when present. */
  chatTemplate?: string
}

/** One intervention as the native side sees it: a single (layer, component) site. */
export interface NativeInterventionSpec {
  /** 'loreft' | 'direft' | 'direft_orth' | 'noreft' | 'consreft' | 'lobireft'. */
  kind: string
  layer: number
  /** 'block_output' | 'block_input' | 'attention_output' | 'mlp_output'. */
  component: string
  rank: number
  /** Dropout probability on the edited vector (training mode only). Default 0. */
  dropout?: number
  /** Activation on Wh+b: 'linear' (default) | 'relu' | 'gelu' | 'silu' | 'tanh'. */
  activation?: string
  /** noreft / direft: give the projection layer a bias (pyreft `add_bias`). Default false. */
  addBias?: boolean
}

/**
 * A batch for forward / training. `inputIds` is [batchSize * seqLen]; `attentionMask` the same
 * shape (1 = real token; omitted = all ones). `positions` is pyreft's `unit_locations` layout
 * flattened: [numInterventions][batchSize][numPositions]. `labels` is [batchSize * seqLen] with
 * -100 for tokens without loss (labels are NOT pre-shifted: the loss shifts, like HF).
 */
export interface NativeBatch {
  inputIds: Uint32Array
  batchSize: number
  seqLen: number
  attentionMask?: Uint8Array
  positions?: Int32Array
  numPositions?: number
  labels?: Int32Array
  /** Encoders: segment ids (`token_type_ids`), [batchSize * seqLen]; omitted = all 0. */
  tokenTypeIds?: Uint32Array
  /** Adapters with a head: one target per example (a class id, or the score for regression). */
  classLabels?: Float32Array
}

export interface NativeForwardOutput {
  /**
   * [batchSize, seqLen, vocab] logits; [batchSize, numLabels] with a classification head (the
   * last hidden state [batchSize, seqLen, hidden] for an encoder without one); empty when
   * `wantLogits` was false.
   */
  logits: Float32Array
  dims: number[]
  /** Mean cross-entropy over labelled tokens (with a head: mean cross-entropy or MSE over examples), when labels were given. */
  loss?: number
  /** Number of labelled tokens (with a head: examples) that entered the loss. */
  numTokens: number
}

export interface NativeStepOptions {
  lr: number
  /** Decoupled weight decay on W matrices (not on biases or the rotation). Default 0. */
  weightDecay?: number
  /** Global gradient-norm clip; <= 0 disables. Default 1.0. */
  maxGradNorm?: number
  beta1?: number
  beta2?: number
  eps?: number
  /** Per-layer activation recomputation (decoders): far less memory, one more forward. Default false. */
  recompute?: boolean
}

export interface NativeStepStats {
  /** Mean of the micro-batch losses. */
  loss: number
  /** Global gradient norm before clipping. */
  gradNorm: number
  numTokens: number
  /** Optimizer step count after this step. */
  step: number
}

export interface NativeGenerateOptions {
  maxNewTokens: number
  /** Default true. When false: temperature / topK / topP sampling with `seed`. */
  greedy?: boolean
  temperature?: number
  topK?: number
  topP?: number
  seed?: number
  /** Tokens that end a row (in addition to nothing: pass the model's EOS ids here). */
  stopTokenIds?: number[]
  /** Decode with the KV cache (default true); false recomputes the full sequence each step. */
  useCache?: boolean
}

export interface NativeTrainableParameters {
  interventionParams: number
  /** Trainable values of the classification head (0 without one). */
  headParams: number
  modelParams: number
}

/** A classification (numLabels >= 2, cross-entropy) or regression (numLabels = 1, MSE) head for encoders. */
export interface NativeHeadSpec {
  numLabels: number
  /** Train the dense layer too. Default: yes, except a BERT's pretrained pooler. */
  trainDense?: boolean
}

/** A created head. */
export interface NativeHeadInfo {
  numLabels: number
  trainDense: boolean
}

/** Token ids and segment ids of a text or text pair. */
export interface NativeEncodedPair {
  ids: Uint32Array
  typeIds: Uint32Array
}

export interface NativeModel {
  info(): NativeModelInfo
  encode(text: string, addSpecialTokens: boolean): Uint32Array
  /** A text or text pair with segment ids, truncated longest-first to `maxLength` (transformers' `truncation=True`). */
  encodePair(text: string, pair: string | null, addSpecialTokens: boolean, maxLength?: number | null): NativeEncodedPair
  decode(ids: Uint32Array, skipSpecialTokens: boolean): string
  /** Id of an exact token string, if in the vocabulary. */
  tokenToId(token: string): number | null
  dispose(): void
}

export interface NativeReft {
  /** Intervention specs in config order. */
  specs(): NativeInterventionSpec[]
  forward(batch: NativeBatch, wantLogits: boolean): Promise<NativeForwardOutput>
  /** Forward + backward on each micro-batch (losses averaged), then clip + AdamW. */
  trainStep(microBatches: NativeBatch[], options: NativeStepOptions): Promise<NativeStepStats>
  /**
   * Left-padded prompts in, new tokens out (one array per row, stop token included when hit).
   * Interventions apply to the given prompt positions during prefill only.
   */
  generate(
    prompts: NativeBatch,
    options: NativeGenerateOptions,
    onToken?: (tokens: number[]) => void,
  ): Promise<Uint32Array[]>
  /** Stops a running `generate` after its current token (it rejects with ERR_ABORTED). */
  abort(): void
  /** Caller-owned JSON stored in checkpoints (`null` when none). */
  metadata(): string | null
  setMetadata(json: string): void
  /** Dropout on (true) or off (false). New handles start in eval mode. */
  setTraining(training: boolean): void
  trainableParameters(): NativeTrainableParameters
  /** The classification head, or `null`. */
  head(): NativeHeadInfo | null
  /** Write our checkpoint (config JSON + safetensors); `withOptimizer` adds AdamW state. */
  save(dir: string, withOptimizer: boolean): Promise<void>
  dispose(): void
}

/** The addon's module surface. */
export interface NativeModule {
  loadModel(path: string, options?: NativeLoadOptions): Promise<NativeModel>
  /** `head` only for encoders. */
  createReft(model: NativeModel, specs: NativeInterventionSpec[], seed: number, head?: NativeHeadSpec | null): NativeReft
  /** Our checkpoint directory or a pyreft-saved one (config.json + intkey_*.bin). */
  loadReft(model: NativeModel, dir: string, withOptimizer: boolean): Promise<NativeReft>
  /** Where the embedded default model (SmolLM2-135M-Instruct GGUF) is expected. */
  defaultModelPath(): string
  /** Writes a tiny random Llama (HF layout + byte-level tokenizer) to `dir`, for tests and docs. */
  createTinyModel(dir: string, seed: number): void
  /** Writes a tiny random BERT (HF layout, character WordPiece tokenizer; with `numLabels`, a stored classifier). */
  createTinyEncoder(dir: string, seed: number, numLabels?: number | null): void
  /** Where the MiniLM encoder (an all-MiniLM-L6-v2 HF directory) is expected. */
  minilmPath(): string
}

/**
 * What a `Model` needs from the backend that loaded it: the native addon or the WebAssembly
 * module (Node or browser). Only one of the two ways of loading a checkpoint may exist.
 */
export interface Backend {
  readonly kind: 'native' | 'wasm'
  /** `head` only for encoders. */
  createReft(model: NativeModel, specs: NativeInterventionSpec[], seed: number, head?: NativeHeadSpec | null): NativeReft
  /** Reads a checkpoint directory (hosts with a file system). */
  loadReft?(model: NativeModel, dir: string, withOptimizer: boolean): Promise<NativeReft>
  /** A reft checkpoint from in-memory files, file name → bytes (the WebAssembly backend). */
  loadReftFromFiles?(model: NativeModel, files: Record<string, Uint8Array>, withOptimizer: boolean): NativeReft
}
