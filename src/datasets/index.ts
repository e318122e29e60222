export { collatePrompts, collateTraining, type CollatableItem, type CollateOptions, type PromptBatch } from './collate.js'
export { labelsAfterInterventions, requireReachableLabels } from './label-reach.js'
export {
  alpacaPrompt,
  alpacaPromptInput,
  alpacaPromptNoInput,
  formatPrompt,
  noHeaderPrompt,
  renderChatPrompt,
  type ChatTemplateOptions,
  type InstructionExample,
  type PromptFormat,
} from './instruction.js'
export { buildPromptItems, type PromptItem, type PromptItemOptions, type PromptLocationMode } from './prompt-items.js'
export {
  buildLastPositionItems,
  buildMultiplePositionItems,
  buildSinkItems,
  ignoreIndex,
  type LastPositionItemOptions,
  type OverflowPolicy,
  type PositionItemOptions,
  type SinkItemOptions,
  type SupervisedItem,
  type SupervisedOptions,
  type Tokenize,
} from './supervised.js'
export {
  buildClassificationItems,
  type ClassificationExample,
  type ClassificationItem,
  type ClassificationItemOptions,
  type PairTokenizer,
} from './classification.js'
