/**
 * The model worker: owns the WebAssembly instance, the base model and the steered adapter. The
 * reft calls are synchronous inside WebAssembly, so they run here, off the page's thread; `onToken`
 * fires per generated token and each token is posted to the page as it comes.
 */
import { loadModel, loadReft, train, type Model, type ReftModel } from 'reft/browser'
import type { Reply, Request, Side, TrainPair } from './protocol.js'

let model: Model | undefined
let reft: ReftModel | undefined

/** `self.postMessage` of a dedicated worker (typed here with the DOM lib's options form). */
function post(reply: Reply): void {
  self.postMessage(reply, { transfer: [] })
}

function requireModel(): Model {
  if (model === undefined) throw Object.assign(new Error('choose a model first'), { code: 'ERR_NO_MODEL' })
  return model
}

function setAdapter(next: ReftModel | undefined): void {
  reft?.dispose()
  reft = next
}

async function loadModelFiles(id: number, files: File[]): Promise<void> {
  setAdapter(undefined)
  model?.dispose()
  model = undefined
  const mb = files.reduce((n, f) => n + f.size, 0) / 2 ** 20
  post({ id, type: 'status', message: `loading ${files.map((f) => f.name).join(', ')} (${mb.toFixed(1)} MiB) …` })
  const t0 = performance.now()
  // One .gguf goes in as a File; an HF folder as its list of files (matched by name).
  const source = files.length === 1 && files[0]!.name.toLowerCase().endsWith('.gguf') ? files[0]! : files
  model = await loadModel(source)
  const info = model.info()
  post({
    id,
    type: 'model',
    summary: {
      architecture: info.architecture,
      numLayers: info.numLayers,
      hiddenSize: info.hiddenSize,
      vocabSize: info.vocabSize,
      hasChatTemplate: typeof info.chatTemplate === 'string' && info.chatTemplate.length > 0,
      seconds: (performance.now() - t0) / 1000,
    },
  })
}

async function loadAdapterFiles(id: number, files: File[]): Promise<void> {
  const base = requireModel()
  setAdapter(undefined)
  post({ id, type: 'status', message: `loading adapter ${files.map((f) => f.name).join(', ')} …` })
  setAdapter(await loadReft(files, base))
  post({ id, type: 'adapter', message: `adapter: ${files.map((f) => f.name).join(', ')}` })
}

/** Generates for one side, posting every token with the decoded text so far. */
async function generateSide(id: number, side: Side, prompt: string, chat: boolean, maxNewTokens: number): Promise<void> {
  const base = requireModel()
  const ids: number[] = []
  const t0 = performance.now()
  const rate = (n: number): number => n / Math.max((performance.now() - t0) / 1000, 1e-9)
  const onToken = (tokens: number[]): void => {
    ids.push(tokens[0]!)
    post({ id, type: 'token', side, text: base.decode(ids), count: ids.length, tokensPerSecond: rate(ids.length) })
  }
  const options = { maxNewTokens, chat }
  const result = side === 'base' ? await base.generate([prompt], options, onToken) : await reft!.generate([prompt], options, onToken)
  const tokens = Array.from(result.tokens[0] ?? [])
  post({ id, type: 'generated', side, tokens, text: result.texts[0] ?? '', tokensPerSecond: rate(tokens.length) })
}

async function generateBoth(id: number, prompt: string, chat: boolean, maxNewTokens: number): Promise<void> {
  await generateSide(id, 'base', prompt, chat, maxNewTokens)
  if (reft === undefined) post({ id, type: 'skipped', side: 'steered', message: 'no adapter: choose a checkpoint or train one' })
  else await generateSide(id, 'steered', prompt, chat, maxNewTokens)
}

async function trainAdapter(id: number, r: Extract<Request, { type: 'train' }>): Promise<void> {
  const base = requireModel()
  const pairs: TrainPair[] = r.pairs
  const fresh = base.withInterventions({ kind: 'loreft', layers: [r.layer], positions: 'l1', rank: r.rank })
  try {
    const items = fresh.dataset(pairs.map((p) => ({ prompt: p.prompt, output: p.output })), { chat: r.chat })
    const t0 = performance.now()
    // All pairs in one batch: one optimizer step per epoch, so `steps` epochs are `steps` steps.
    await train(fresh, items, {
      epochs: r.steps,
      lr: r.lr,
      batchSize: items.length,
      onProgress: (e) => post({ id, type: 'loss', step: e.step, totalSteps: e.totalSteps, loss: e.loss }),
    })
    const files = fresh.saveFiles()
    setAdapter(fresh)
    const seconds = (performance.now() - t0) / 1000
    // Copied, not transferred: an adapter is kilobytes, and the views may share one buffer.
    post({ id, type: 'trained', files, message: `trained rank-${r.rank} LoReFT on layer ${r.layer}: ${r.steps} steps in ${seconds.toFixed(1)} s` })
  } catch (e) {
    fresh.dispose()
    throw e
  }
}

async function handle(r: Request): Promise<void> {
  switch (r.type) {
    case 'load-model':
      return loadModelFiles(r.id, r.files)
    case 'load-adapter':
      return loadAdapterFiles(r.id, r.files)
    case 'generate':
      return generateBoth(r.id, r.prompt, r.chat, r.maxNewTokens)
    case 'train':
      return trainAdapter(r.id, r)
  }
}

function errorReply(id: number, e: unknown): Reply {
  const err = e as { code?: unknown; message?: unknown } | null
  const code = typeof err?.code === 'string' ? err.code : 'ERR_UNKNOWN'
  const message = typeof err?.message === 'string' ? err.message : String(e)
  return { id, type: 'error', code, message }
}

// One request at a time, in arrival order: the handlers await, and the next message must not
// start while the previous one is between awaits.
let queue: Promise<void> = Promise.resolve()
self.addEventListener('message', (event: MessageEvent<Request>) => {
  const request = event.data
  queue = queue.then(async () => {
    try {
      await handle(request)
      post({ id: request.id, type: 'done' })
    } catch (e) {
      console.error(e)
      post(errorReply(request.id, e))
    }
  })
})
self.addEventListener('unhandledrejection', (event: PromiseRejectionEvent) => post(errorReply(-1, event.reason)))
