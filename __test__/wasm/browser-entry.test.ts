/**
 * The browser entry (src/browser/) run in Node over the browser build of the module
 * (`wasm/web/`, instantiated from its bytes): it must bundle for a browser without any Node
 * module, and load models and adapters from in-memory files, blobs and bytes, generate the same
 * tokens as the native addon, train, and save adapters to files that both backends read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import * as web from '../../src/browser/index.js'
import { createTinyModel, loadModel as loadNative, loadReft as loadNativeReft } from '../../src/index.js'
import { codeAsync as code } from '../helpers/error-code.js'
import { tempRoot, wasmBuilt } from './helpers.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const webWasm = join(root, 'wasm/web/reft_wasm_bg.wasm')
const config: web.InterventionConfig = { kind: 'loreft', layers: [0, 1], positions: 'f1+l1', rank: 2 }

describe('browser entry: bundling', () => {
  it('bundles for a browser with no Node module in its import graph', async () => {
    const out = await build({
      entryPoints: [join(root, 'src/browser/index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      external: ['../../wasm/web/reft_wasm.js'],
      logLevel: 'silent',
    })
    const text = out.outputFiles[0]!.text
    expect(text).not.toMatch(/from\s*["']node:|require\(["']node:/)
    expect(text).toContain('../../wasm/web/reft_wasm.js')
  })
})

describe.skipIf(!wasmBuilt() || !existsSync(webWasm))('browser entry over wasm/web', () => {
  const tmp = tempRoot()
  const modelDir = join(tmp.root, 'model')
  let model: web.Model

  beforeAll(async () => {
    await web.initWasm({ wasm: readFileSync(webWasm) })
    createTinyModel(modelDir, 0)
    model = await web.loadModel(await web.createTinyModelFiles(0))
  })
  afterAll(() => {
    model?.dispose()
    tmp.cleanup()
  })

  it('creates the same tiny model files as the native addon', async () => {
    const files = await web.createTinyModelFiles(0)
    for (const [name, bytes] of Object.entries(files)) expect(Buffer.from(bytes).equals(readFileSync(join(modelDir, name))), name).toBe(true)
  })

  it('loads from a File[] (picked files) and generates what the native addon generates', async () => {
    const names = ['config.json', 'model.safetensors', 'tokenizer.json']
    const picked = names.map((n) => new File([readFileSync(join(modelDir, n))], n))
    const m = await web.loadModel(picked)
    expect(m.backendKind).toBe('wasm')
    const nat = await loadNative(modelDir)
    try {
      const streamed: number[] = []
      const got = await m.generate(['hello'], { maxNewTokens: 8 }, (t) => streamed.push(t[0]!))
      const want = await nat.generate(['hello'], { maxNewTokens: 8 })
      expect(Array.from(got.tokens[0]!)).toEqual(Array.from(want.tokens[0]!))
      expect(streamed).toEqual(Array.from(want.tokens[0]!))
      expect(got.texts).toEqual(want.texts)
    } finally {
      m.dispose()
      nat.dispose()
    }
  })

  it('saves an adapter to files that the native addon loads, with the same generation', async () => {
    const reft = model.withInterventions(config, { seed: 7 })
    const files = reft.saveFiles()
    expect(Object.keys(files).sort()).toEqual(['interventions.safetensors', 'reft_config.json'])
    const dir = join(tmp.root, 'adapter')
    await import('node:fs').then((fs) => {
      fs.mkdirSync(dir)
      for (const [n, b] of Object.entries(files)) fs.writeFileSync(join(dir, n), b)
    })
    const nat = await loadNative(modelDir)
    const natReft = await loadNativeReft(dir, nat)
    const back = await web.loadReft(files, model)
    try {
      expect(back.config).toEqual(reft.config)
      const want = await natReft.generate(['hello'], { maxNewTokens: 8 })
      expect(Array.from((await reft.generate(['hello'], { maxNewTokens: 8 })).tokens[0]!)).toEqual(Array.from(want.tokens[0]!))
      expect(Array.from((await back.generate(['hello'], { maxNewTokens: 8 })).tokens[0]!)).toEqual(Array.from(want.tokens[0]!))
    } finally {
      for (const h of [reft, back, natReft, nat]) h.dispose()
    }
  })

  it('trains with the Node loop, and refuses checkpoint options', async () => {
    const reft = model.withInterventions({ kind: 'loreft', layers: [1], positions: 'l1', rank: 2 }, { seed: 1 })
    try {
      const items = reft.dataset([{ prompt: 'hi', output: 'abc' }, { prompt: 'yo', output: 'xyz' }])
      const history = await web.train(reft, items, { epochs: 15, lr: 0.05, batchSize: 2 })
      const losses = history.steps.map((s) => s.loss)
      expect(losses).toHaveLength(15)
      expect(losses.at(-1)!).toBeLessThan(losses[0]!)
      await expect(web.train(reft, items, { epochs: 1, outputDir: '/tmp/x', checkpointEvery: 1 })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' })
      await expect(reft.save('/tmp/nowhere')).rejects.toMatchObject({ code: 'ERR_IO' })
    } finally {
      reft.dispose()
    }
  })

  it('loads a pyreft adapter from its folder URL (config.json names the files) as from picked files', async () => {
    const fx = join(root, 'crates/reft-core/tests/fixtures/pyreft')
    const saved = join(fx, 'saved', 'loreft')
    const m = await web.loadModel(['config.json', 'model.safetensors'].map((n) => new File([readFileSync(join(fx, 'tiny-llama', n))], n)))
    const realFetch = globalThis.fetch
    const asked: string[] = []
    globalThis.fetch = (async (u: URL | string) => {
      const name = decodeURIComponent(new URL(String(u)).pathname.split('/').pop()!)
      asked.push(name)
      return existsSync(join(saved, name)) ? new Response(readFileSync(join(saved, name))) : new Response('', { status: 404 })
    }) as typeof fetch
    try {
      const fromUrl = await web.loadReft('https://example.test/adapters/loreft', m)
      const picked = await web.loadReft(readdirSync(saved).map((n) => new File([readFileSync(join(saved, n))], n)), m)
      const intkeys = readdirSync(saved).filter((n) => n.startsWith('intkey_')).sort()
      expect(asked[0]).toBe('reft_config.json')
      expect(asked.slice(1).sort()).toEqual(['config.json', ...intkeys].sort())
      expect(fromUrl.config).toEqual(picked.config)
      const [a, b] = [fromUrl.saveFiles(), picked.saveFiles()]
      expect(Buffer.from(a['interventions.safetensors']!).equals(Buffer.from(b['interventions.safetensors']!))).toBe(true)
      for (const r of [fromUrl, picked]) r.dispose()
      globalThis.fetch = (async () => new Response('', { status: 404 })) as typeof fetch
      expect(await code(() => web.loadReft('https://example.test/nothing', m))).toBe('ERR_IO')
    } finally {
      globalThis.fetch = realFetch
      m.dispose()
    }
  })

  it('gives coded errors for bad sources', async () => {
    expect(await code(() => web.loadModel({ 'config.json': new Uint8Array([1, 2]) }))).toMatch(/^ERR_/)
    expect(await code(() => web.loadReft({ 'reft_config.json': new TextEncoder().encode('{}') }, model))).toMatch(/^ERR_/)
    expect(await code(() => web.loadReft(new Uint8Array([1]), model))).toBe('ERR_INVALID_CONFIG')
    expect(await code(() => web.loadModel([]))).toBe('ERR_IO')
    expect(await code(() => web.loadModel('not a url'))).toBe('ERR_IO')
  })
})
