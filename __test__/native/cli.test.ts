/**
 * The `reft` command line end to end on the tiny model, run as `npx tsx src/cli.ts` (no build):
 * info, train (flags and config file), generate with an adapter, eval's argument errors, help,
 * version, error output, and Ctrl-C during training.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { loadModel, loadReft } from '../../src/index.js'
import { tinyExamples, tinyWorkspace } from './helpers.js'

const repo = resolve(import.meta.dirname, '../..')
const ws = tinyWorkspace()
const data = join(ws.root, 'train.jsonl')
afterAll(() => ws.cleanup())
beforeAll(() => {
  // JSONL with both spellings of the prompt field.
  const records = tinyExamples.map((e, i) => (i % 2 === 0 ? { prompt: e.prompt, output: e.output } : { instruction: e.prompt, output: e.output }))
  writeFileSync(data, records.map((r) => JSON.stringify(r)).join('\n') + '\n')
})

function reft(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('npx', ['tsx', 'src/cli.ts', ...args], { cwd: repo, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('reft info', () => {
  it('--json describes the tiny model', () => {
    const r = reft('info', ws.modelDir, '--json')
    expect(r.status, r.stderr).toBe(0)
    const info = JSON.parse(r.stdout) as Record<string, unknown>
    expect(info).toMatchObject({ architecture: 'llama', numLayers: 2, hiddenSize: 32, numHeads: 4, vocabSize: 259, hasChatTemplate: false })
    expect(info.specialTokens).toEqual({ bos: { id: 256, text: '<s>' }, eos: [{ id: 257, text: '</s>' }], pad: { id: 258, text: '<pad>' } })
    expect(info.numParameters).toBeGreaterThan(0)
  })
})

describe('reft train + generate', () => {
  const out = join(ws.root, 'adapter')

  it('trains from a JSONL file and writes the adapter and loss.svg', () => {
    const r = reft('train', '--model', ws.modelDir, '--data', data, '--layers', '1', '--rank', '4', '--epochs', '3', '--batch-size', '2', '--lr', '0.02', '--output', out)
    expect(r.status, r.stderr).toBe(0)
    expect(readdirSync(out).sort()).toEqual(['interventions.safetensors', 'loss.svg', 'reft_config.json'])
    expect(readFileSync(join(out, 'loss.svg'), 'utf8')).toMatch(/^<svg[\s\S]*<polyline class="train"/)
    // 2·d·r + r = 260 trainable parameters; 2 steps per epoch × 3 epochs.
    expect(r.stdout).toContain('trainable intervention params: 260 ')
    expect(r.stdout).toMatch(/over 6 steps/)
    expect(r.stderr).toMatch(/step 6\/6/)
  })

  it('generate --adapter prints what the library generates with that adapter', async () => {
    const r = reft('generate', '--model', ws.modelDir, '--adapter', out, '--max-new-tokens', '8', '--json', 'hi', 'red')
    expect(r.status, r.stderr).toBe(0)
    const printed = JSON.parse(r.stdout) as { prompt: string; text: string }[]
    using model = await loadModel(ws.modelDir)
    using adapter = await loadReft(out, model)
    const expected = await adapter.generate(['hi', 'red'], { maxNewTokens: 8 })
    expect(printed).toEqual([{ prompt: 'hi', text: expected.texts[0] }, { prompt: 'red', text: expected.texts[1] }])
    const streamed = reft('generate', '--model', ws.modelDir, '--adapter', out, '--max-new-tokens', '8', '--stream', 'hi')
    expect(streamed.status, streamed.stderr).toBe(0)
    expect(streamed.stdout).toBe(`${expected.texts[0]}\n`)
  })

  it('generate --dtype bf16 runs the model in bf16, as the library does', async () => {
    const r = reft('generate', '--model', ws.modelDir, '--adapter', out, '--dtype', 'bf16', '--max-new-tokens', '8', '--json', 'hi')
    expect(r.status, r.stderr).toBe(0)
    const printed = JSON.parse(r.stdout) as { prompt: string; text: string }[]
    using model = await loadModel(ws.modelDir, { dtype: 'bf16' })
    using adapter = await loadReft(out, model)
    const expected = await adapter.generate(['hi'], { maxNewTokens: 8 })
    expect(printed).toEqual([{ prompt: 'hi', text: expected.texts[0] }])
    const bad = reft('generate', '--model', ws.modelDir, '--dtype', 'f8', 'hi')
    expect(bad.status).toBe(1)
    expect(bad.stderr).toMatch(/ERR_INVALID_CONFIG.*--dtype/)
  })

  it('a config file with a flag override; checkpoints survive the final save', () => {
    const dir = join(ws.root, 'from-config')
    const config = join(ws.root, 'run.json')
    writeFileSync(config, JSON.stringify({ model: ws.modelDir, data, output: dir, intervention: { kind: 'consreft', layers: [0], rank: 2 }, train: { epochs: 1, batchSize: 2, checkpointEvery: 1 } }))
    const r = reft('train', '--config', config, '--epochs', '2')
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/over 4 steps/)
    expect(r.stdout).toContain('trainable intervention params: 66 ') // d·r + r for consreft
    expect(readdirSync(dir).sort()).toEqual(['checkpoint-1', 'checkpoint-2', 'checkpoint-3', 'checkpoint-4', 'interventions.safetensors', 'loss.svg', 'reft_config.json'])
  })

  it('unknown config keys are ERR_INVALID_CONFIG', () => {
    const config = join(ws.root, 'bad.json')
    writeFileSync(config, JSON.stringify({ model: ws.modelDir, data, train: { epochs: 1, learningRate: 3 } }))
    const r = reft('train', '--config', config)
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/^error \[ERR_INVALID_CONFIG\]: /m)
  })
})

describe('exit statuses and messages', () => {
  it('eval without --tasks, or with a missing data directory, fails with a clear error', () => {
    const noTasks = reft('eval', '--model', ws.modelDir)
    expect(noTasks.status).toBe(1)
    expect(noTasks.stderr).toMatch(/^error \[ERR_INVALID_CONFIG\]: --tasks: /m)
    const noData = reft('eval', '--model', ws.modelDir, '--tasks', 'boolq', '--data-dir', join(ws.root, 'no-data'))
    expect(noData.status).toBe(1)
    expect(noData.stderr).toMatch(/^error \[ERR_IO\]: data directory .*no-data/m)
  })

  it('errors print "error [CODE]: message" and exit 1', () => {
    const missing = reft('train', '--model', ws.modelDir, '--data', join(ws.root, 'nope.jsonl'))
    expect(missing.status).toBe(1)
    expect(missing.stderr).toMatch(/^error \[ERR_IO\]: /m)
    const flag = reft('generate', '--bogus', 'hi')
    expect(flag.status).toBe(1)
    expect(flag.stderr).toMatch(/^error \[ERR_INVALID_CONFIG\]: /m)
  })

  it('--help and --version', () => {
    const help = reft('--help')
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/train[\s\S]*generate[\s\S]*info[\s\S]*eval/)
    const trainHelp = reft('train', '--help')
    expect(trainHelp.status).toBe(0)
    expect(trainHelp.stdout).toContain('--checkpoint-every')
    const version = reft('--version')
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).version)
  })
})

it('Ctrl-C stops training: only complete checkpoints, no adapter', async () => {
  const dir = join(ws.root, 'interrupted')
  const child = spawn('npx', ['tsx', 'src/cli.ts', 'train', '--model', ws.modelDir, '--data', data, '--epochs', '500', '--batch-size', '1', '--checkpoint-every', '1', '--output', dir], {
    cwd: repo,
    detached: true, // its own process group, signalled as a terminal would
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<void>((done) => child.on('close', () => done()))
  const deadline = Date.now() + 30_000
  while (!existsSync(join(dir, 'checkpoint-2')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  expect(existsSync(join(dir, 'checkpoint-2'))).toBe(true)
  process.kill(-child.pid!, 'SIGINT')
  await exited
  expect(stderr).toMatch(/error \[ERR_ABORTED\]/)
  const entries = readdirSync(dir)
  expect(entries.length).toBeLessThan(2000)
  for (const e of entries) {
    expect(e).toMatch(/^checkpoint-\d+$/)
    for (const f of ['reft_config.json', 'interventions.safetensors', 'trainer_state.json']) expect(existsSync(join(dir, e, f))).toBe(true)
  }
})
