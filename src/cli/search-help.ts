/** The `reft search --help` text (generation searches on a decoder, GLUE searches on an encoder). */
import { trainingSets } from '../evaluation/training-sets.js'
import { glueTaskNames } from '../glue/tasks.js'
import { devSplitDefaults } from '../search/data.js'
import { glueDefaultScale } from '../search/glue-plan.js'
import { defaultEta } from '../search/halving.js'
import { defaultGlueSearchSpace, defaultSearchSpace, formatLayerSet } from '../search/space.js'

const d = defaultSearchSpace
const g = defaultGlueSearchSpace
const listText = (xs: readonly unknown[]): string => xs.map((x) => (typeof x === 'string' || typeof x === 'number' ? String(x) : formatLayerSet(x as number[]))).join(',')

export const searchHelp = `usage: reft search (--train SET | --data FILE | --glue TASK) [flags]

Searches intervention hyperparameters with successive halving. The last --dev-size examples of
the TRAIN split are held out as a dev slice (pyreft holds out GSM8K's last 300 the same way);
trials never train on it and are ranked on it. Each rung keeps the best 1/eta trials and retrains
them FROM SCRATCH with eta times the budget (a budget is a fraction of a trial's full run of
epochs x steps-per-epoch optimizer steps); the last rung trains at the full budget. Finished runs
go to OUTPUT/trials.jsonl, so rerunning the same command resumes; other settings are refused.

data
  --train SET            a training set of the evaluation harness (listed at the end)
  --data FILE            or your own JSON/JSONL {prompt|instruction, output} file (dev metric loss)
  --glue TASK            or a GLUE task on an encoder (${glueTaskNames.join(', ')}; see below)
  --limit N              use the first N examples (before holding out the dev slice); with --glue,
                         a seeded random subset of N train rows, as reft glue train --train-limit
  --data-dir DIR         data root (default: $REFT_DATA_DIR, else ../shared/data)
  --dev-size N           dev slice = the last N training examples (default ${devSplitDefaults.devSize})
  --dev-shuffle          take them after a seeded shuffle instead of in file order
  --dev-source S         --glue only: train (default; the dev slice above) | eval-half (rank on
                         the validation split's eval half, the half reft glue train picks its
                         epoch on; trials train on all --limit rows; no --dev-size/--dev-shuffle)
  --dev-metric M         accuracy (greedy generation, pyreft scoring; default for commonsense and
                         math sets) | loss (mean held-out loss; cheaper; the only one for --data);
                         --glue: the task's metric (accuracy, matthews_correlation for cola,
                         pearson for stsb; the default) | loss (the head's)

search space (comma-separated candidates; defaults in brackets, --glue defaults in braces)
  --space FILE           JSON {"kind":[..],"layers":[..],"positions":[..],"rank":[..],"lr":[..],
                         "epochs":[..]}; the flags below override its keys
  --kind LIST            [${listText(d.kind)}]  (loreft direft direft_orth noreft consreft lobireft)
  --layers LIST          layer sets, indices joined by ';': [${listText(d.layers)}] {${listText(g.layers)}},
                         e.g. "middle,all,0;2;4"
  --positions LIST       [${listText(d.positions)}] {${listText(g.positions)}}  (fN = the paper's pN)
  --rank LIST            [${listText(d.rank)}] {${listText(g.rank)}}
  --lr LIST              [${listText(d.lr)}] {${listText(g.lr)}}
  --epochs LIST          epochs of a full-budget run [${listText(d.epochs)}] {${listText(g.epochs)}}
  --sampling S           random (default; seeded, without replacement) | grid (every point)
  --trials N             random mode: trials to draw (default 9)
  --seed N               sampling, dev shuffle, train subset, initialisation and batch order (default 42)
  --eta N                keep the top 1/eta per rung (default ${defaultEta})
  --min-budget F         first rung's budget, e.g. 1/9 or 0.25 (default eta^-floor(log_eta trials))
  --no-halving           train every trial at the full budget (plain grid/random search)

fixed training settings (--glue: the task's LoReFT recipe, as reft glue train)
  --batch-size N (4; glue 32)  --grad-accum N (1)  --warmup-ratio R (0; glue: recipe)
  --weight-decay W (0; glue: recipe)  --max-length N (glue 256)  --component C (block_output)
  --no-tied (untied prefix/suffix weights; glue: always untied)  --dropout P (glue only: recipe)

scoring and reports
  --eval-batch-size N    prompts per generate call on dev/test (default 4; glue 32 per forward)
  --max-new-tokens N     (default 32 for commonsense, 256 for math; not with --glue)
  --scoring S            pyreft (default) | llm-adapters (not with --glue)
  --eval-test            evaluate the selected configuration on the test split (the task named
                         like --train, or --test-tasks; --glue: the task's test half, the
                         validation rows reft glue train reports on)
  --test-tasks LIST      test tasks for --eval-test (implies it; not with --glue)
  --test-limit N         first N examples of each test task (--glue: of the test half)
  --compare-default      also train the default configuration at the full budget and report its
                         dev/test scores: reft train's defaults (loreft, middle layer, l1, rank 4,
                         lr 4e-3, 1 epoch); --glue: reft glue train's LoReFT recipe at the CPU
                         scale of docs/EXPERIMENTS.md (loreft, all layers, f3 for most tasks,
                         rank 1, lr ${glueDefaultScale.lr}, ${glueDefaultScale.epochs} epochs), compared with the selected one by a
                         paired bootstrap on the test half
  --output DIR           trials.jsonl, search.json, search.md, trials/, adapter/ (default reft-search)

GLUE searches (--glue TASK) train interventions and a classification head on an encoder (--model
defaults to MiniLM, as reft glue). With --limit N --dev-size K they train on the first N-K rows of
reft glue train's seeded subset, i.e. the rows of reft glue train --train-limit N-K, so the
default configuration reproduces that command's run (scored at its last epoch). With --limit N
--dev-source eval-half they train on all N rows (reft glue train --train-limit N's) and are ranked
on the validation eval half; the test half is used only by --eval-test, after the choice.

training sets: ${trainingSets.map((t) => t.name).join(', ')}
`
