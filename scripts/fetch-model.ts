/**
 * `npm run fetch-model [-- NAME]`: downloads a model into the reft cache if it is missing and prints
 * its path. NAME is `smollm2` (the embedded default, SmolLM2-135M-Instruct; the default) or
 * `minilm` (all-MiniLM-L6-v2, the encoder for classification).
 */
import { fetchModel, type FetchableModel } from '../src/index.js'

const name = (process.argv[2] ?? 'smollm2') as FetchableModel
console.log(await fetchModel(name, (line) => console.log(line)))
