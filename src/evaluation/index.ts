/** The evaluation harness: the paper's task data and templates, pyreft's scoring, reports. */
export { resolveDataDir, parseRecords, defaultDataDir, type DataDirOptions } from './data-dir.js'
export {
  commonsenseTrigger,
  mathTrigger,
  triggerFor,
  commonsensePrompt,
  commonsenseTarget,
  mathPrompt,
  promptFor,
  trainingExample,
  type TaskKind,
  type TaskRecord,
} from './templates.js'
export {
  extractOutput,
  extractAnswerNumber,
  extractAnswerLetter,
  pyFloat,
  isFloat,
  commonsenseLabelPatterns,
  scoreCommonsense,
  scoreMath,
  scoreGeneration,
  type CommonsenseScoring,
  type Score,
} from './extract.js'
export {
  tasks,
  taskGroups,
  defaultMaxNewTokens,
  resolveTask,
  parseTaskList,
  loadTask,
  type TaskSpec,
  type EvalExample,
  type LoadTaskOptions,
} from './tasks.js'
export {
  trainingSets,
  resolveTrainingSet,
  loadTrainingSet,
  type TrainingSetSpec,
  type TrainingSet,
  type LoadTrainingSetOptions,
} from './training-sets.js'
export { wilsonInterval } from './stats.js'
export { readResumeFile, appendResults } from './resume.js'
export type { EvalExampleResult, TaskResult } from './results.js'
export { evaluateTask, type TextGenerator, type EvalProgressEvent, type EvaluateTaskOptions } from './evaluate.js'
export { writeReport, formatReportTable, reportObject, type ReportMeta, type ReportFiles } from './report.js'
export { createEvalProgressReporter, type EvalProgressReporter, type EvalProgressOptions } from './progress.js'
