/**
 * `device: 'cuda'` loads the CUDA build of the addon, a separate binary: where it is missing or
 * cannot load (no NVIDIA driver), `loadModel` fails with ERR_BACKEND saying what is missing,
 * never falling back to the CPU. On a GPU machine the same call loads the model on the GPU. The
 * binary is found through `$REFT_CUDA_ADDON`, a local build, or the optional CUDA package.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTinyModel, loadModel } from '../../src/index.js'
import { CUDA_PACKAGE, cudaAddonPath } from '../../src/native.js'

const reason = (p: Promise<unknown>) => p.then(() => ({ code: 'no error', message: '' }), (e: { code?: string; message: string }) => ({ code: e.code, message: e.message }))

describe('the CUDA addon loader', () => {
  let root: string
  let modelDir: string
  const saved = process.env.REFT_CUDA_ADDON
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'reft-cuda-'))
    modelDir = join(root, 'model')
    createTinyModel(modelDir, 0)
  })
  afterEach(() => {
    if (saved === undefined) delete process.env.REFT_CUDA_ADDON
    else process.env.REFT_CUDA_ADDON = saved
  })
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it('names the build script when the CUDA addon is not installed', async () => {
    process.env.REFT_CUDA_ADDON = join(root, 'missing.cuda.node')
    const r = await reason(loadModel(modelDir, { device: 'cuda' }))
    expect(r.code).toBe('ERR_BACKEND')
    expect(r.message).toMatch(/scripts\/build-cuda\.sh --node/)
  })

  it('reports a binary that cannot load, with the loader message', async () => {
    const bad = join(root, 'bad.cuda.node')
    writeFileSync(bad, 'not a shared object')
    process.env.REFT_CUDA_ADDON = bad
    const r = await reason(loadModel(modelDir, { device: 'cuda' }))
    expect(r.code).toBe('ERR_BACKEND')
    expect(r.message).toMatch(/could not be loaded/)
  })

  it('finds the optional CUDA package when no local build or override names one', () => {
    delete process.env.REFT_CUDA_ADDON
    const installed = join(root, 'pkg.cuda.node')
    writeFileSync(installed, 'stand-in')
    const asked: string[] = []
    const found = cudaAddonPath((name) => (asked.push(name), installed))
    const local = cudaAddonPath(() => undefined, () => false)
    expect(local).toMatch(/native\/reft\.linux-x64-gnu\.cuda\.node$/)
    // A local build (scripts/build-cuda.sh --node, or --portable --node) takes precedence over the package.
    const built = [local, local.replace(/\.cuda\.node$/, '.cuda-sm80.node')].find((p) => existsSync(p))
    if (built !== undefined) expect(found).toBe(built)
    else {
      expect(found).toBe(installed)
      expect(asked).toEqual([CUDA_PACKAGE])
      // A package that resolves to a missing file falls back to the local path (named in the error).
      expect(cudaAddonPath(() => join(root, 'gone.cuda.node'))).toBe(local)
    }
    // The order with every candidate present, then without the H100/H200 build.
    const pkg = join(root, 'pkg.cuda.node')
    expect(cudaAddonPath(() => pkg, () => true)).toMatch(/native\/reft\.linux-x64-gnu\.cuda\.node$/)
    expect(cudaAddonPath(() => pkg, (p) => !p.endsWith('.cuda.node') || p === pkg)).toMatch(/native\/reft\.linux-x64-gnu\.cuda-sm80\.node$/)
    expect(cudaAddonPath(() => pkg, (p) => p === pkg)).toBe(pkg)
    expect(cudaAddonPath(() => pkg, () => false)).toMatch(/native\/reft\.linux-x64-gnu\.cuda\.node$/)
    process.env.REFT_CUDA_ADDON = join(root, 'override.node')
    expect(cudaAddonPath(() => installed)).toBe(join(root, 'override.node'))
  })

  it('refuses cuda on the WebAssembly backend', async () => {
    expect((await reason(loadModel(modelDir, { device: 'cuda', backend: 'wasm' }))).code).toBe('ERR_INVALID_CONFIG')
  })

  const gpu = existsSync('/dev/nvidia0')
  it.skipIf(!existsSync(cudaAddonPath()))(`the built CUDA addon ${gpu ? 'loads the model on the GPU' : 'fails with ERR_BACKEND without an NVIDIA driver'}`, async () => {
    const r = await reason(loadModel(modelDir, { device: 'cuda' }).then((m) => m.dispose()))
    if (gpu) expect(r).toEqual({ code: 'no error', message: '' })
    else {
      expect(r.code).toBe('ERR_BACKEND')
      expect(r.message).toMatch(/libcuda|NVIDIA|CUDA/)
    }
  })
})
