/**
 * Vite config of the browser demo (issue 7). `reft/browser` is the repository's browser entry,
 * served from source; the wasm-bindgen module it loads (wasm/web/, from scripts/build-wasm.sh)
 * lives outside this folder, hence `server.fs.allow`.
 *
 *   npm run demo:web                                     # dev server
 *   npx vite build --config examples/web/vite.config.ts  # → examples/web/dist
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

const here = fileURLToPath(new URL('.', import.meta.url))
const repo = fileURLToPath(new URL('../..', import.meta.url))

export default defineConfig({
  root: here,
  // Relative asset URLs: the build works from any path (a sub-folder, a static file server).
  base: './',
  resolve: {
    alias: { 'reft/browser': `${repo}src/browser/index.ts` },
  },
  server: {
    fs: { allow: [repo] },
  },
  worker: { format: 'es' },
  optimizeDeps: {
    // The worker imports the entry, which imports the wasm-bindgen module; neither is a package to
    // prebundle (the module resolves `reft_wasm_bg.wasm` relative to its own URL).
    entries: ['index.html', 'src/worker.ts'],
    exclude: ['reft/browser'],
  },
  build: {
    outDir: `${here}dist`,
    emptyOutDir: true,
    target: 'es2022',
  },
})
