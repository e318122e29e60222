/**
 * `hf:org/name` downloads against a local mock of the hub on 127.0.0.1: files served under
 * `/{org}/{name}/resolve/{revision}/…`, cached after the first load; a missing repo is ERR_IO.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createServer, type Server } from 'node:http'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { downloadFromHub, loadModel } from '../../src/index.js'
import { errorCode, tinyWorkspace } from './helpers.js'

const ws = tinyWorkspace()
const requests: string[] = []
let server: Server
let endpoint: string
const savedEndpoint = process.env.HF_ENDPOINT

beforeAll(async () => {
  const files = new Set(readdirSync(ws.modelDir))
  const shard = 'model-00001-of-00001.safetensors'
  const index = (name: string) => JSON.stringify({ metadata: {}, weight_map: { 'model.embed_tokens.weight': name, 'lm_head.weight': name } })
  // tiny-llama: the model as is; sharded: weights behind an index; evil: an index escaping the cache.
  const serve = (repo: string, file: string): Buffer | string | undefined => {
    if (repo === 'tiny-llama') return files.has(file) ? readFileSync(join(ws.modelDir, file)) : undefined
    if (file === 'model.safetensors') return undefined
    if (file === 'model.safetensors.index.json') return index(repo === 'sharded' ? shard : '../../escaped.safetensors')
    if (repo === 'sharded' && file === shard) return readFileSync(join(ws.modelDir, 'model.safetensors'))
    return files.has(file) ? readFileSync(join(ws.modelDir, file)) : undefined
  }
  server = createServer((req, res) => {
    requests.push(req.url ?? '')
    const m = /^\/tiny-org\/(tiny-llama|sharded|evil)\/resolve\/main\/([\w.-]+)$/.exec(req.url ?? '')
    const body = req.method === 'GET' && m !== null ? serve(m[1]!, m[2]!) : undefined
    if (body === undefined) {
      res.writeHead(404).end('not found')
      return
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body)
  })
  server.requestTimeout = 10_000
  server.headersTimeout = 5_000
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  if (savedEndpoint === undefined) delete process.env.HF_ENDPOINT
  else process.env.HF_ENDPOINT = savedEndpoint
  server.closeAllConnections()
  await new Promise<void>((done) => server.close(() => done()))
  ws.cleanup()
})

it("loadModel('hf:org/name') downloads the files into the cache and loads them", async () => {
  process.env.HF_ENDPOINT = endpoint
  const cacheDir = join(ws.root, 'cache')
  using model = await loadModel('hf:tiny-org/tiny-llama', { cacheDir })
  expect(model.path.startsWith(cacheDir)).toBe(true)
  for (const f of ['config.json', 'tokenizer.json', 'model.safetensors']) {
    expect(readFileSync(join(model.path, f))).toEqual(readFileSync(join(ws.modelDir, f)))
  }
  expect(readdirSync(model.path).some((f) => f.endsWith('.partial'))).toBe(false)
  using local = await loadModel(ws.modelDir)
  expect(model.info()).toEqual(local.info())
  expect(requests).toContain('/tiny-org/tiny-llama/resolve/main/model.safetensors')

  // A second load is served from the cache.
  const before = requests.length
  using again = await loadModel('hf:tiny-org/tiny-llama', { cacheDir })
  expect(again.path).toBe(model.path)
  expect(requests.length).toBe(before)
})

it('downloadFromHub with an explicit endpoint; a missing repo is ERR_IO', async () => {
  const cacheDir = join(ws.root, 'cache2')
  const dir = await downloadFromHub('tiny-org/tiny-llama', { endpoint, cacheDir })
  expect(existsSync(join(dir, 'model.safetensors'))).toBe(true)
  expect(await errorCode(() => downloadFromHub('tiny-org/missing', { endpoint, cacheDir }))).toBe('ERR_IO')
  expect(requests).toContain('/tiny-org/missing/resolve/main/config.json')
})

it('sharded weights behind model.safetensors.index.json; an index escaping the cache is ERR_FORMAT', async () => {
  const cacheDir = join(ws.root, 'cache-sharded')
  using model = await loadModel(await downloadFromHub('tiny-org/sharded', { endpoint, cacheDir }))
  expect(existsSync(join(model.path, 'model-00001-of-00001.safetensors'))).toBe(true)
  using local = await loadModel(ws.modelDir)
  expect(model.info()).toEqual(local.info())
  expect(await errorCode(() => downloadFromHub('tiny-org/evil', { endpoint, cacheDir }))).toBe('ERR_FORMAT')
  expect(requests.some((r) => r.includes('escaped'))).toBe(false)
})

it('a malformed spec is ERR_INVALID_CONFIG', async () => {
  expect(await errorCode(() => downloadFromHub('no-slash', { endpoint, cacheDir: join(ws.root, 'cache3') }))).toBe('ERR_INVALID_CONFIG')
  expect(await errorCode(() => downloadFromHub('tiny-org/tiny-llama@../../x', { endpoint, cacheDir: join(ws.root, 'cache3') }))).toBe('ERR_INVALID_CONFIG')
})
