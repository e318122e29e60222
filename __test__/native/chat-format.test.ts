/**
 * `Model.chatPrompt` keeps a template's leading BOS when the tokenizer does not add one itself
 * (SmolLM2's BOS is `<|im_start|>`, which stripping used to lose), and the encoded prompt then
 * starts with the BOS id exactly once.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadModel } from '../../src/index.js'
import { tinyWorkspace } from './helpers.js'

describe('chat prompts and BOS', () => {
  const ws = tinyWorkspace(3)
  afterAll(() => ws.cleanup())

  it('keeps a rendered BOS the tokenizer would not add back', async () => {
    const template = '{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}'
    writeFileSync(join(ws.modelDir, 'tokenizer_config.json'), JSON.stringify({ chat_template: template }))
    const model = await loadModel(ws.modelDir)
    try {
      const bos = model.info().bosTokenId!
      expect(model.encode('x', true)[0]).not.toBe(bos) // this tokenizer adds no BOS
      const prompt = model.chatPrompt('hi')
      expect(prompt).toBe('<s>[user]hi[assistant]')
      const ids = Array.from(model.encode(prompt, true))
      expect(ids[0]).toBe(bos)
      expect(ids.filter((t) => t === bos)).toHaveLength(1)
    } finally {
      model.dispose()
    }
  })
})
