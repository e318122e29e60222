/** `npm run fetch-model`: downloads the embedded default model (SmolLM2-135M-Instruct) if missing. */
import { ensureDefaultModel } from '../src/index.js'

console.log(await ensureDefaultModel((line) => console.log(line)))
