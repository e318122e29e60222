/**
 * The `reft` command line: dispatch to `train`, `generate`, `info`, `eval`, `instruct-eval`, `search` and `glue`, help
 * and version, and the error convention: `error [CODE]: message` on stderr and exit status 1
 * (130 when interrupted with Ctrl-C). Set `REFT_DEBUG=1` to also print stack traces.
 */
import { readFileSync } from 'node:fs'
import { toReftError } from '../errors.js'
import { CliExit, type CliIo } from './common.js'
import { evalCommand, evalHelp } from './eval.js'
import { generateCommand, generateHelp } from './generate.js'
import { glueCommand, glueHelp } from './glue.js'
import { infoCommand, infoHelp } from './info.js'
import { instructEvalCommand, instructEvalHelp } from './instruct-eval.js'
import { searchCommand, searchHelp } from './search.js'
import { trainCommand, trainHelp } from './train.js'

const usage = `usage: reft <command> [options]

Representation Finetuning (ReFT) for Node.js.

commands:
  train      train interventions on a JSON/JSONL dataset and save the adapter
  generate   generate text with a base model, optionally through an adapter
  info       show a model's architecture, sizes and special tokens
  eval       accuracy on the ReFT paper's commonsense and arithmetic tasks
  instruct-eval  instruction following: held-out UltraFeedback loss, pairwise vs base (local judge)
  search     hyperparameter search (successive halving on a held-out dev slice; generation or --glue)
  glue       GLUE classification with an encoder: reft glue train TASK / reft glue eval TASK

options:
  -h, --help      show help (also: reft <command> --help)
  -v, --version   print the version

Errors print "error [CODE]: message" and exit with status 1.
`

interface Command {
  run: (args: string[], io: CliIo) => Promise<void>
  help: string
}

const commands: Record<string, Command> = {
  train: { run: trainCommand, help: trainHelp },
  generate: { run: generateCommand, help: generateHelp },
  info: { run: infoCommand, help: infoHelp },
  eval: { run: evalCommand, help: evalHelp },
  'instruct-eval': { run: instructEvalCommand, help: instructEvalHelp },
  search: { run: searchCommand, help: searchHelp },
  glue: { run: glueCommand, help: glueHelp },
}

/** The package version, read from package.json next to `src/` or `dist/`. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

const wantsHelp = (args: string[]): boolean => {
  const end = args.indexOf('--')
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h')
}

const defaultIo: CliIo = { out: (t) => void process.stdout.write(t), err: (t) => void process.stderr.write(t) }

/** Runs the CLI on `argv` (without `node` and the script) and resolves with the exit status. */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined) {
    io.err(usage)
    return 1
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const cmd = rest[0] === undefined ? undefined : commands[rest[0]]
    io.out(cmd?.help ?? usage)
    return 0
  }
  if (name === '--version' || name === '-v') {
    io.out(`${version()}\n`)
    return 0
  }
  const command = commands[name]
  if (command === undefined) {
    io.err(`error [ERR_INVALID_CONFIG]: unknown command ${JSON.stringify(name)} (try reft --help)\n`)
    return 1
  }
  if (wantsHelp(rest)) {
    io.out(command.help)
    return 0
  }
  try {
    await command.run(rest, io)
    return 0
  } catch (e) {
    if (e instanceof CliExit) {
      io.err(`${e.message}\n`)
      return e.status
    }
    const err = toReftError(e)
    io.err(`error [${err.code}]: ${err.message}\n`)
    if (process.env.REFT_DEBUG) io.err(`${err.stack ?? ''}\n`)
    return err.code === 'ERR_ABORTED' ? 130 : 1
  }
}
