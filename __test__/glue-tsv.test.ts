/**
 * The GLUE TSV reader on small inline strings (quotes kept literally, BOM, CRLF, blank lines,
 * headerless CoLA, a missing final newline, bad rows), then every shared GLUE file: each row
 * parses and the row counts match the data README (skipped only where ../shared/data is absent).
 */
import { describe, expect, it } from 'vitest'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { columnIndex, parseTsv } from '../src/glue/index.js'
import { code } from './helpers/error-code.js'

const dataDir = resolve(import.meta.dirname, '../../shared/data')
const noData = !existsSync(join(dataDir, 'glue'))
if (noData) console.warn(`skipping the real GLUE file checks: ${join(dataDir, 'glue')} does not exist`)

describe('parseTsv', () => {
  it('splits on tabs with the first line as header', () => {
    const t = parseTsv('sentence\tlabel\nhide new secretions \t0\ngood fun \t1\n')
    expect(t.columns).toEqual(['sentence', 'label'])
    expect(t.rows).toEqual([['hide new secretions ', '0'], ['good fun ', '1']])
    expect(t.lines).toEqual([2, 3])
  })
  it('treats quotes as ordinary characters (QUOTE_NONE)', () => {
    const t = parseTsv('a\tb\n"the witness", he said\t"unbalanced\n\'single\'\t""\n')
    expect(t.rows).toEqual([['"the witness", he said', '"unbalanced'], ["'single'", '""']])
  })
  it('drops a leading BOM, trailing \\r and blank lines; accepts a missing final newline', () => {
    const t = parseTsv('\ufeffQuality\t#1 ID\r\n1\t702876\r\n\r\n\n0\t2108705')
    expect(t.columns).toEqual(['Quality', '#1 ID'])
    expect(t.rows).toEqual([['1', '702876'], ['0', '2108705']])
    expect(t.lines).toEqual([2, 5])
  })
  it('keeps empty fields (CoLA often has an empty mark column) and reads headerless files with given columns', () => {
    const t = parseTsv('gj04\t1\t\tOur friends won\'t buy this.\ngj04\t0\t*\tThey drank the pub.', { columns: ['source', 'label', 'mark', 'sentence'] })
    expect(t.columns).toEqual(['source', 'label', 'mark', 'sentence'])
    expect(t.rows).toEqual([['gj04', '1', '', "Our friends won't buy this."], ['gj04', '0', '*', 'They drank the pub.']])
  })
  it('a row with the wrong number of fields is ERR_FORMAT naming the line', () => {
    expect(code(() => parseTsv('a\tb\n1\t2\n3\n', { name: 'x.tsv' }))).toBe('ERR_FORMAT')
    expect(() => parseTsv('a\tb\n1\t2\n3\n', { name: 'x.tsv' })).toThrow(/x\.tsv:3/)
    expect(code(() => parseTsv('a\tb\n1\t2\t3\n'))).toBe('ERR_FORMAT')
  })
  it('an empty file has no header: ERR_FORMAT; a header alone gives no rows', () => {
    expect(code(() => parseTsv(''))).toBe('ERR_FORMAT')
    expect(parseTsv('a\tb\n').rows).toEqual([])
  })
  it('columnIndex finds a column or names the ones present', () => {
    const t = parseTsv('index\tsentence1\tsentence2\tlabel\n')
    expect(columnIndex(t, 'label')).toBe(3)
    expect(code(() => columnIndex(t, 'score'))).toBe('ERR_FORMAT')
  })
})

describe.skipIf(noData)('every shared GLUE file parses (needs ../shared/data/glue)', () => {
  // [file, headerless columns, data rows, expected header start]
  const files: [string, string[] | undefined, number, string][] = [
    ['RTE/train.tsv', undefined, 2490, 'index'],
    ['RTE/dev.tsv', undefined, 277, 'index'],
    ['MRPC/train.tsv', undefined, 3668, 'Quality'],
    ['MRPC/dev.tsv', undefined, 408, 'Quality'],
    ['MRPC/dev_senteval_tokenized.tsv', undefined, 408, 'Quality'],
    ['CoLA/train.tsv', ['source', 'label', 'mark', 'sentence'], 8551, 'source'],
    ['CoLA/dev.tsv', ['source', 'label', 'mark', 'sentence'], 1043, 'source'],
    ['STS-B/train.tsv', undefined, 5749, 'index'],
    ['STS-B/dev.tsv', undefined, 1500, 'index'],
    ['SST-2/train.tsv', undefined, 67349, 'sentence'],
    ['SST-2/dev.tsv', undefined, 872, 'sentence'],
    ['QNLI/dev.tsv', undefined, 5463, 'index'],
  ]
  for (const [file, columns, rows, first] of files) {
    it(`${file}: ${rows} rows`, () => {
      const t = parseTsv(readFileSync(join(dataDir, 'glue', file), 'utf8'), { name: file, ...(columns === undefined ? {} : { columns }) })
      expect(t.rows.length).toBe(rows)
      expect(t.columns[0]).toBe(first)
    })
  }
  it('headers are GLUE\'s (MRPC without its BOM, STS-B with ten columns)', () => {
    const header = (f: string): string[] => parseTsv(readFileSync(join(dataDir, 'glue', f), 'utf8')).columns
    expect(header('MRPC/dev.tsv')).toEqual(['Quality', '#1 ID', '#2 ID', '#1 String', '#2 String'])
    expect(header('STS-B/dev.tsv')).toEqual(['index', 'genre', 'filename', 'year', 'old_index', 'source1', 'source2', 'sentence1', 'sentence2', 'score'])
    expect(header('RTE/dev.tsv')).toEqual(['index', 'sentence1', 'sentence2', 'label'])
    expect(header('QNLI/dev.tsv')).toEqual(['index', 'question', 'sentence', 'label'])
    expect(header('SST-2/dev.tsv')).toEqual(['sentence', 'label'])
  })
})
