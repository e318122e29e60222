/**
 * The demo page: wires the form to the model worker (worker.ts) and renders its replies. The page
 * never touches WebAssembly itself. `document.body.dataset.state` is 'idle' (no model), 'loading',
 * 'ready', 'generating', 'training' or 'error'; #base-output and #steered-output carry the
 * generated token ids in `data-tokens`, #loss-chart the losses in `data-losses`.
 */
import { drawLossChart } from './chart.js'
import type { ModelSummary, Reply, Request, Side, TrainPair } from './protocol.js'

type State = 'idle' | 'loading' | 'ready' | 'generating' | 'training' | 'error'

function el<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id)
  if (node === null) throw new Error(`#${id} is missing from index.html`)
  return node as T
}

const ui = {
  status: el<HTMLParagraphElement>('status'),
  modelFiles: el<HTMLInputElement>('model-files'),
  modelInfo: el<HTMLParagraphElement>('model-info'),
  adapterFiles: el<HTMLInputElement>('adapter-files'),
  adapterInfo: el<HTMLParagraphElement>('adapter-info'),
  prompt: el<HTMLTextAreaElement>('prompt'),
  chat: el<HTMLInputElement>('chat'),
  maxNewTokens: el<HTMLInputElement>('max-new-tokens'),
  generate: el<HTMLButtonElement>('generate'),
  output: { base: el<HTMLPreElement>('base-output'), steered: el<HTMLPreElement>('steered-output') },
  tps: { base: el<HTMLSpanElement>('base-tps'), steered: el<HTMLSpanElement>('steered-tps') },
  trainPairs: el<HTMLTextAreaElement>('train-pairs'),
  trainSteps: el<HTMLInputElement>('train-steps'),
  trainLr: el<HTMLInputElement>('train-lr'),
  trainRank: el<HTMLInputElement>('train-rank'),
  trainLayer: el<HTMLInputElement>('train-layer'),
  train: el<HTMLButtonElement>('train'),
  lossChart: el<HTMLCanvasElement>('loss-chart'),
  trainStatus: el<HTMLParagraphElement>('train-status'),
  download: el<HTMLParagraphElement>('download-adapter'),
}

// ---- state ------------------------------------------------------------------------------------

let model: ModelSummary | undefined
let modelRequested = false
let layerEdited = false
/** Errors since the last user action, in order: later ones are often consequences of the first. */
let errors: string[] = []
let nextId = 1
const pending = new Map<number, State>()
let losses: number[] = []
let totalSteps = 0
let downloadUrls: string[] = []

function setState(state: State): void {
  document.body.dataset.state = state
  const busy = state === 'loading' || state === 'generating' || state === 'training'
  ui.generate.disabled = busy || model === undefined
  ui.train.disabled = busy || model === undefined
}

/** After a request ends: the latest still-pending request's state, else ready/idle (or error). */
function settle(): void {
  if (errors.length > 0) return setState('error')
  const last = [...pending.values()].at(-1)
  setState(last ?? (model === undefined ? 'idle' : 'ready'))
}

function status(message: string): void {
  ui.status.textContent = message
}

function fail(code: string, message: string): void {
  errors.push(`Error ${code}: ${message}`)
  status(errors.join(' · then '))
  setState('error')
}

/** A user action starts: earlier errors no longer apply. */
function beginAction(): void {
  errors = []
}

// ---- worker -----------------------------------------------------------------------------------

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })

type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never

function send(body: RequestBody, state: State): void {
  const id = nextId++
  pending.set(id, state)
  setState(state)
  worker.postMessage({ ...body, id } as Request)
}

worker.addEventListener('error', (event: ErrorEvent) => {
  pending.clear()
  fail('ERR_WORKER', event.message || 'the model worker failed to start (see the browser console)')
})
worker.addEventListener('messageerror', () => fail('ERR_WORKER', 'a message from the worker could not be read'))
worker.addEventListener('message', (event: MessageEvent<Reply>) => onReply(event.data))

function onReply(r: Reply): void {
  switch (r.type) {
    case 'status':
      return status(r.message)
    case 'model':
      return onModel(r.summary)
    case 'adapter':
      ui.adapterInfo.textContent = r.message
      return status(r.message)
    case 'token':
      ui.output[r.side].textContent = r.text
      ui.tps[r.side].textContent = `${r.count} tokens · ${r.tokensPerSecond.toFixed(1)} tok/s`
      return
    case 'generated':
      return onGenerated(r.side, r.tokens, r.text, r.tokensPerSecond)
    case 'skipped':
      ui.output[r.side].textContent = r.message
      ui.output[r.side].dataset.tokens = ''
      ui.output[r.side].dataset.skipped = 'true'
      ui.tps[r.side].textContent = ''
      return
    case 'loss':
      return onLoss(r.step, r.totalSteps, r.loss)
    case 'trained':
      return onTrained(r.files, r.message)
    case 'done':
      if (pending.get(r.id) === 'generating') status(generatedSummary())
      pending.delete(r.id)
      return settle()
    case 'error':
      pending.delete(r.id)
      return fail(r.code, r.message)
  }
}

// ---- model and adapter ------------------------------------------------------------------------

function onModel(summary: ModelSummary): void {
  model = summary
  ui.modelInfo.textContent = `${summary.architecture}: ${summary.numLayers} layers, hidden size ${summary.hiddenSize}, vocabulary ${summary.vocabSize}; loaded in ${summary.seconds.toFixed(1)} s`
  ui.chat.disabled = !summary.hasChatTemplate
  if (!summary.hasChatTemplate) ui.chat.checked = false
  ui.trainLayer.max = String(summary.numLayers - 1)
  if (!layerEdited || Number(ui.trainLayer.value) >= summary.numLayers) ui.trainLayer.value = String(Math.floor(summary.numLayers / 2))
  ui.adapterInfo.textContent = 'No adapter: train one below or choose a checkpoint.'
  status(`Model ready (${summary.architecture}). Type a prompt and press Generate.`)
}

function requestAdapter(): void {
  const files = Array.from(ui.adapterFiles.files ?? [])
  if (files.length > 0) send({ type: 'load-adapter', files }, 'loading')
}

ui.modelFiles.addEventListener('change', () => {
  const files = Array.from(ui.modelFiles.files ?? [])
  if (files.length === 0) return
  beginAction()
  model = undefined
  modelRequested = true
  ui.modelInfo.textContent = ''
  send({ type: 'load-model', files }, 'loading')
  requestAdapter() // an adapter belongs to one base model: reload the chosen one on top
})

ui.adapterFiles.addEventListener('change', () => {
  beginAction()
  if (!modelRequested) {
    status('Adapter chosen; it loads once a model is chosen.')
    return settle()
  }
  requestAdapter()
})

ui.trainLayer.addEventListener('input', () => {
  layerEdited = true
})

// ---- generation -------------------------------------------------------------------------------

function onGenerated(side: Side, tokens: number[], text: string, tokensPerSecond: number): void {
  ui.output[side].textContent = text
  ui.output[side].dataset.tokens = tokens.join(',')
  ui.tps[side].textContent = `${tokens.length} tokens · ${tokensPerSecond.toFixed(1)} tok/s`
}

function generatedSummary(): string {
  const count = (side: Side): string => {
    if (ui.output[side].dataset.skipped === 'true') return 'skipped (no adapter)'
    const tokens = ui.output[side].dataset.tokens ?? ''
    return tokens === '' ? 'no tokens' : `${tokens.split(',').length} tokens`
  }
  return `Generated: base ${count('base')}, steered ${count('steered')}.`
}

function wholeNumber(input: HTMLInputElement, name: string, min: number): number | undefined {
  const n = Number(input.value)
  if (Number.isInteger(n) && n >= min && input.value.trim() !== '') return n
  fail('ERR_INPUT', `${name} must be a whole number ≥ ${min} (got "${input.value}")`)
  return undefined
}

ui.generate.addEventListener('click', () => {
  beginAction()
  const maxNewTokens = wholeNumber(ui.maxNewTokens, 'max new tokens', 1)
  if (maxNewTokens === undefined) return
  for (const side of ['base', 'steered'] as const) {
    ui.output[side].textContent = ''
    ui.output[side].dataset.tokens = ''
    delete ui.output[side].dataset.skipped
    ui.tps[side].textContent = ''
  }
  status('Generating …')
  send({ type: 'generate', prompt: ui.prompt.value, chat: ui.chat.checked, maxNewTokens }, 'generating')
})

// ---- training ---------------------------------------------------------------------------------

/** `prompt => response` per line; blank lines are skipped. */
function parsePairs(text: string): TrainPair[] {
  const pairs: TrainPair[] = []
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    const at = line.indexOf('=>')
    if (at < 0) throw new Error(`line ${i + 1} has no "=>": ${line}`)
    const prompt = line.slice(0, at).trim()
    const output = line.slice(at + 2).trim()
    if (prompt === '' || output === '') throw new Error(`line ${i + 1} needs text on both sides of "=>"`)
    pairs.push({ prompt, output })
  }
  if (pairs.length === 0) throw new Error('no examples given')
  return pairs
}

function renderLosses(): void {
  ui.lossChart.dataset.losses = losses.join(',')
  drawLossChart(ui.lossChart, losses, totalSteps)
}

function onLoss(step: number, steps: number, loss: number): void {
  losses.push(loss)
  totalSteps = steps
  renderLosses()
  ui.trainStatus.textContent = `step ${step}/${steps} · loss ${loss.toFixed(4)}`
}

function onTrained(files: Record<string, Uint8Array>, message: string): void {
  ui.trainStatus.textContent = `${message}; loss ${losses[0]?.toFixed(3)} → ${losses.at(-1)?.toFixed(3)}`
  ui.adapterInfo.textContent = 'adapter: trained in this page'
  status(`${message}. The steered column now uses it.`)
  for (const url of downloadUrls) URL.revokeObjectURL(url)
  downloadUrls = []
  ui.download.replaceChildren('Download adapter: ')
  for (const [name, bytes] of Object.entries(files)) {
    const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>]))
    downloadUrls.push(url)
    const a = document.createElement('a')
    a.href = url
    a.download = name
    a.textContent = `${name} (${(bytes.byteLength / 1024).toFixed(1)} KiB)`
    ui.download.append(a)
  }
}

ui.train.addEventListener('click', () => {
  beginAction()
  let pairs: TrainPair[]
  try {
    pairs = parsePairs(ui.trainPairs.value)
  } catch (e) {
    return fail('ERR_INPUT', (e as Error).message)
  }
  const steps = wholeNumber(ui.trainSteps, 'steps', 1)
  const rank = wholeNumber(ui.trainRank, 'rank', 1)
  const layer = wholeNumber(ui.trainLayer, 'layer', 0)
  const lr = Number(ui.trainLr.value)
  if (steps === undefined || rank === undefined || layer === undefined) return
  if (!(lr > 0)) return fail('ERR_INPUT', `lr must be a positive number (got "${ui.trainLr.value}")`)
  losses = []
  totalSteps = steps
  renderLosses()
  ui.trainStatus.textContent = `training on ${pairs.length} examples …`
  status('Training …')
  send({ type: 'train', pairs, chat: ui.chat.checked, steps, lr, rank, layer }, 'training')
})

renderLosses()
setState('idle')
