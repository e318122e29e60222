/**
 * The packed package works from a fresh project: `npm pack` the repository, install the tarball
 * into an empty temporary project, import `reft`, load a tiny model and run a training step.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')
const work = mkdtempSync(join(tmpdir(), 'reft-pack-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

describe('npm pack', () => {
  it('installs into a fresh project and trains a step', () => {
    if (!existsSync(join(root, 'dist', 'index.js'))) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root })
    // --ignore-scripts: `prepare` would rebuild the addon; the test packs what was built.
    npm(['pack', '--ignore-scripts', '--pack-destination', work], root)
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))
    expect(tarball).toBeDefined()
    const project = join(work, 'project')
    execFileSync('mkdir', ['-p', project])
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }))
    npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', join(work, tarball!)], project)
    writeFileSync(
      join(project, 'main.mjs'),
      `import { createTinyModel, loadModel, train } from 'reft'
const dir = ${JSON.stringify(join(work, 'tiny'))}
createTinyModel(dir, 3)
const model = await loadModel(dir)
const reft = model.withInterventions({ kind: 'loreft', layers: [1], positions: 'l1', rank: 2 })
const items = reft.dataset([{ prompt: 'hello', output: 'world' }, { prompt: 'ping', output: 'pong' }])
const history = await train(reft, items, { epochs: 3, batchSize: 2, lr: 1e-2 })
console.log(JSON.stringify({ steps: history.steps.length, first: history.steps[0].loss, last: history.steps.at(-1).loss, params: reft.trainableParameters().interventionParams }))
`,
    )
    const out = JSON.parse(execFileSync('node', ['main.mjs'], { cwd: project, encoding: 'utf8' }).trim().split('\n').at(-1)!) as {
      steps: number
      first: number
      last: number
      params: number
    }
    expect(out.steps).toBe(3)
    expect(out.last).toBeLessThan(out.first)
    expect(out.params).toBe(2 * 32 * 2 + 2)
  }, 180_000)
})
