/**
 * A reader for GLUE's tab-separated files exactly as GLUE's `download_glue_data.py` writes them.
 *
 * HF `datasets`' glue script reads these with `csv.QUOTE_NONE`: a `"` is an ordinary character
 * (MRPC and CoLA sentences contain unbalanced quotes), so this reader never treats quotes
 * specially and simply splits each line on `\t`. The rest follows Python's csv module as HF uses it:
 * a leading UTF-8 BOM is dropped (MRPC's header starts with one), a trailing `\r` is dropped from
 * each line, blank lines are skipped (as `csv.DictReader` does), and a missing final newline is
 * fine (CoLA `dev.tsv` has none). Unlike Python, a row with the wrong number of fields is an error
 * rather than padded with `None`, so a damaged file is caught at load time, not as a bad example.
 */
import { ReftError } from '../errors.js'

/** Options of {@link parseTsv}. */
export interface TsvOptions {
  /**
   * Column names for a file without a header row (GLUE's CoLA files). When absent, the first
   * non-blank line is the header.
   * @defaultValue the file's header row
   */
  columns?: readonly string[]
  /** The file's name or path, used in error messages. @defaultValue `'tsv'` */
  name?: string
}

/** A parsed TSV file. */
export interface TsvTable {
  /** Column names: the header row, or `options.columns` for a headerless file. */
  columns: string[]
  /** Data rows; each has exactly `columns.length` fields, as raw strings. */
  rows: string[][]
  /** The 1-based line number in the file of each row, for error messages. */
  lines: number[]
}

/**
 * Splits GLUE TSV text into a header and rows. Throws ERR_FORMAT (naming `name:line`) when a row
 * does not have as many fields as there are columns, or when the file has no header row.
 */
export function parseTsv(text: string, options: TsvOptions = {}): TsvTable {
  const name = options.name ?? 'tsv'
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  const raw = body.split('\n')
  let columns = options.columns === undefined ? undefined : [...options.columns]
  const rows: string[][] = []
  const lines: number[] = []
  for (let i = 0; i < raw.length; i++) {
    let line = raw[i]!
    if (line.endsWith('\r')) line = line.slice(0, -1)
    if (line === '') continue
    const fields = line.split('\t')
    if (columns === undefined) {
      columns = fields
      continue
    }
    if (fields.length !== columns.length) {
      throw new ReftError(
        'ERR_FORMAT',
        `${name}:${i + 1}: expected ${columns.length} tab-separated fields (${columns.join(', ')}), got ${fields.length}`,
      )
    }
    rows.push(fields)
    lines.push(i + 1)
  }
  if (columns === undefined) throw new ReftError('ERR_FORMAT', `${name}: empty file, no header row`)
  return { columns, rows, lines }
}

/** The index of `column` in `table`; a missing column is ERR_FORMAT listing the columns present. */
export function columnIndex(table: TsvTable, column: string, name = 'tsv'): number {
  const i = table.columns.indexOf(column)
  if (i < 0) {
    throw new ReftError('ERR_FORMAT', `${name}: no column ${JSON.stringify(column)}; the header has ${table.columns.map((c) => JSON.stringify(c)).join(', ')}`)
  }
  return i
}
