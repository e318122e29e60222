/**
 * The browser demo (examples/web, issue 7) in headless Chromium, driven by playwright-core: the
 * page built by Vite and served by `vite preview`, a tiny random model and adapter written by the
 * native addon, and the page's greedy tokens compared with the addon's (same core, so identical).
 * Then a short in-page training run, and a screenshot of the whole page.
 *
 * Needs Chromium (`/usr/bin/chromium` from Debian's `chromium`, or `$REFT_CHROMIUM`) and the
 * WebAssembly web build (`wasm/web/`, from scripts/build-wasm.sh); skips without them, unless
 * `REFT_REQUIRE_BROWSER=1`, which turns a missing prerequisite into a failure.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import { build, preview, type PreviewServer } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTinyModel, loadModel } from '../src/index.js'

const repo = fileURLToPath(new URL('..', import.meta.url))
const viteConfig = join(repo, 'examples/web/vite.config.ts')
const chromiumPath = process.env.REFT_CHROMIUM ?? '/usr/bin/chromium'
const wasmWebModule = join(repo, 'wasm/web/reft_wasm.js')
const screenshotPath = join(repo, 'runs/browser-demo/demo.png')
const viewport = { width: 1280, height: 1000 }
const maxNewTokens = 8
const trainSteps = 10

const missing = [
  existsSync(chromiumPath) ? undefined : `no Chromium at ${chromiumPath} (apt-get install chromium, or set REFT_CHROMIUM)`,
  existsSync(wasmWebModule) ? undefined : `no WebAssembly web build at ${wasmWebModule} (run scripts/build-wasm.sh)`,
].filter((m): m is string => m !== undefined)
const required = process.env.REFT_REQUIRE_BROWSER === '1'
if (missing.length > 0 && !required) console.warn(`[browser] skipping the browser demo test: ${missing.join('; ')}`)

/** The width and height in a PNG's IHDR chunk, after checking the signature. */
function pngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
  expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR')
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) }
}

function tokenList(attr: string | null): number[] {
  return attr === null || attr === '' ? [] : attr.split(',').map(Number)
}

// The tests share one page and run in order: load and generate, train, then the screenshot.
describe.skipIf(missing.length > 0 && !required)('browser demo (examples/web)', () => {
  let root: string
  let server: PreviewServer | undefined
  let browser: Browser | undefined
  let page: Page
  const pageLog: string[] = []
  const expected = { base: [] as number[], steered: [] as number[] }
  let modelFiles: string[]
  let adapterFiles: string[]

  /** Waits for `state`; fails at once, with the status line and the page's console, on 'error'. */
  async function waitForState(state: string, timeout = 180_000): Promise<void> {
    await page.waitForSelector(`body[data-state="${state}"], body[data-state="error"]`, { timeout })
    const now = await page.getAttribute('body', 'data-state')
    if (now !== state) {
      const status = await page.textContent('#status')
      throw new Error(`the page is in state '${now}' instead of '${state}': ${status}\npage console:\n${pageLog.join('\n')}`)
    }
  }

  beforeAll(async () => {
    if (missing.length > 0) throw new Error(`REFT_REQUIRE_BROWSER=1, but: ${missing.join('; ')}`)
    root = mkdtempSync(join(tmpdir(), 'reft-browser-'))

    // A tiny model and adapter on disk, and the native addon's greedy tokens for them.
    const modelDir = join(root, 'model')
    const adapterDir = join(root, 'adapter')
    createTinyModel(modelDir, 3)
    const m = await loadModel(modelDir)
    const r = m.withInterventions({ kind: 'loreft', layers: [0], positions: 'l1', rank: 2 }, { seed: 7 })
    await r.save(adapterDir)
    expected.base = Array.from((await m.generate(['hello'], { maxNewTokens })).tokens[0]!)
    expected.steered = Array.from((await r.generate(['hello'], { maxNewTokens })).tokens[0]!)
    r.dispose()
    m.dispose()
    modelFiles = readdirSync(modelDir).map((f) => join(modelDir, f))
    adapterFiles = readdirSync(adapterDir).map((f) => join(adapterDir, f))

    // The page as shipped: a production build, served statically.
    const outDir = join(root, 'dist')
    await build({ configFile: viteConfig, logLevel: 'warn', build: { outDir, emptyOutDir: true } })
    server = await preview({ configFile: viteConfig, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false } })
    const url = server.resolvedUrls?.local[0]
    if (url === undefined) throw new Error('vite preview reported no URL')

    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--headless', '--disable-background-networking', '--disable-component-update', '--disable-default-apps', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', '--disable-gpu'],
    })
    page = await browser.newPage({ viewport })
    page.on('console', (msg) => pageLog.push(`[${msg.type()}] ${msg.text()}`))
    page.on('pageerror', (err) => pageLog.push(`[pageerror] ${err.message}`))
    await page.goto(url)
    await waitForState('idle', 30_000)
  }, 300_000)

  afterAll(async () => {
    await browser?.close()
    await server?.close()
    if (root !== undefined) rmSync(root, { recursive: true, force: true })
  })

  it('loads a model folder and an adapter from files and generates the native addon’s greedy tokens', async () => {
    await page.setInputFiles('#model-files', modelFiles)
    await waitForState('ready')
    await page.setInputFiles('#adapter-files', adapterFiles)
    await waitForState('ready')

    await page.fill('#prompt', 'hello')
    if (await page.isEnabled('#chat')) await page.setChecked('#chat', false)
    expect(await page.isChecked('#chat')).toBe(false)
    await page.fill('#max-new-tokens', String(maxNewTokens))
    await page.click('#generate')
    await waitForState('ready')

    const base = tokenList(await page.getAttribute('#base-output', 'data-tokens'))
    const steered = tokenList(await page.getAttribute('#steered-output', 'data-tokens'))
    expect(base).toEqual(expected.base)
    expect(steered).toEqual(expected.steered)
    if (expected.base.join() !== expected.steered.join()) expect(steered).not.toEqual(base)
    expect(await page.textContent('#base-tps')).toMatch(/tok\/s/)
    expect(await page.textContent('#steered-tps')).toMatch(/tok\/s/)
  }, 300_000)

  it('trains a LoReFT in the page with a falling loss', async () => {
    await page.fill('#train-pairs', 'hello => world\nabc => xyz')
    await page.fill('#train-steps', String(trainSteps))
    await page.fill('#train-lr', '0.02')
    await page.fill('#train-rank', '2')
    await page.fill('#train-layer', '1')
    await page.click('#train')
    await waitForState('ready')

    const losses = (await page.getAttribute('#loss-chart', 'data-losses'))!.split(',').map(Number)
    expect(losses).toHaveLength(trainSteps)
    for (const loss of losses) expect(Number.isFinite(loss)).toBe(true)
    expect(losses.at(-1)!).toBeLessThan(losses[0]!)
    expect(await page.locator('#download-adapter a').count()).toBe(2)

    // The trained adapter is now the steered model (without one, the steered column is skipped).
    await page.click('#generate')
    await waitForState('ready')
    expect(await page.textContent('#steered-tps')).toMatch(/tok\/s/)
  }, 300_000)

  it('renders a non-blank page (full-page screenshot)', async () => {
    const shot = await page.screenshot({ fullPage: true })
    mkdirSync(dirname(screenshotPath), { recursive: true })
    writeFileSync(screenshotPath, shot)
    const [width, height] = (await page.evaluate('[document.documentElement.scrollWidth, document.documentElement.scrollHeight]')) as [number, number]
    expect(pngSize(shot)).toEqual({ width, height })
    expect(height).toBeGreaterThan(viewport.height / 2)

    // The same area of a blank page compresses to a few KiB; text, inputs and outputs take far more.
    const blankPage = await browser!.newPage({ viewport: { width, height } })
    const blank = await blankPage.screenshot()
    await blankPage.close()
    expect(pngSize(blank)).toEqual({ width, height })
    expect(shot.length).toBeGreaterThan(4 * blank.length)
  }, 60_000)
})
