/**
 * Notebook ingest: the project's own notebooks of every nbformat version and kind of damage
 * (always), and nbformat's own test notebooks from the shared corpus (when it is beside the
 * project, as in CI).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NbsError } from '../dist/index.js';
import fc from 'fast-check';
import { loadInputText, parseIpynb } from '../dist/notebook/index.js';
import { NOTEBOOKS, sharedCorpus } from './helpers.js';

const corpus = sharedCorpus('nbformat-tests');
const tests = corpus.dir;
const read = (name: string) => readFileSync(join(tests, name), 'utf8');
const own = (name: string) => readFileSync(join(NOTEBOOKS, name), 'utf8');

function refusal(text: string): NbsError {
  try {
    parseIpynb(text);
  } catch (error) {
    if (error instanceof NbsError) return error;
    throw error;
  }
  assert.fail('the notebook was accepted');
}

describe("parseIpynb on the project's own notebooks", () => {
  const accepted: [string, number][] = [['v4.0.ipynb', 3], ['v4.1.ipynb', 2], ['v4.2.ipynb', 1], ['v4.3.ipynb', 1], ['v4.4.ipynb', 2], ['v4.5.ipynb', 4], ['magics.ipynb', 5]];
  for (const [file, cells] of accepted) {
    it(`accepts ${file}`, () => {
      const notebook = parseIpynb(own(file));
      assert.equal(notebook.cells.length, cells);
      assert.ok(notebook.cells.every((cell, index) => cell.index === index && typeof cell.source === 'string'));
    });
  }
  it('keeps nbformat 4.5 cell ids', () => {
    assert.deepEqual(parseIpynb(own('v4.5.ipynb')).cells.map((cell) => cell.id), ['intro', 'say-hello', 'import-missing', 'after']);
  });
  const refused: [string, string, RegExp?][] = [
    ['v2.ipynb', 'NBS_NOTEBOOK_UNSUPPORTED_VERSION'],
    ['v3.ipynb', 'NBS_NOTEBOOK_UNSUPPORTED_VERSION'],
    ['v4.99-future.ipynb', 'NBS_NOTEBOOK_UNSUPPORTED_VERSION'],
    ['invalid-structure.ipynb', 'NBS_NOTEBOOK_INVALID', /cells\.0\.source: required/],
    ['invalid-cell-id.ipynb', 'NBS_NOTEBOOK_INVALID'],
    ['duplicate-cell-ids.ipynb', 'NBS_NOTEBOOK_INVALID'],
    ['missing-cell-id.ipynb', 'NBS_NOTEBOOK_INVALID'],
    ['invalid-metadata.ipynb', 'NBS_NOTEBOOK_INVALID', /metadata\.kernelspec: expected Object/],
    ['no-minor-version.ipynb', 'NBS_NOTEBOOK_INVALID'],
    ['not-json.ipynb', 'NBS_NOTEBOOK_INVALID_JSON'],
  ];
  for (const [file, code, message] of refused) {
    it(`refuses ${file} with ${code}`, () => {
      const error = refusal(own(file));
      assert.equal(error.code, code);
      assert.ok(!error.message.includes('Error:'), error.message);
      if (message) assert.match(error.message, message);
    });
  }
  it('reads a marimo file as marimo: checked as marimo, run as one file', () => {
    const input = loadInputText('py', own('marimo_app.py'));
    assert.equal(input.kind, 'marimo');
    assert.equal(input.check.kind, 'marimo');
    assert.equal(input.cells.length, 1);
  });
  it('covers every notebook in its folder', () => {
    const onDisk = readdirSync(NOTEBOOKS).filter((name) => name.endsWith('.ipynb')).sort();
    assert.deepEqual([...accepted.map(([file]) => file), ...refused.map(([file]) => file)].sort(), onDisk);
  });
  it('refuses JSON nested deeper than it can validate, with a clear code', () => {
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    const error = refusal(`{"nbformat": 4, "nbformat_minor": 5, "metadata": {"x": ${deep}}, "cells": []}`);
    assert.equal(error.code, 'NBS_NOTEBOOK_INVALID');
    assert.match(error.message, /nested deeper than 256 levels/);
  });
});

interface Expectation {
  readonly file: string;
  readonly answer: string;
}

/** The table in EXPECTED.md: one row per file (a row may name several), with the gate's answer. */
function expectations(): Expectation[] {
  const rows = read('EXPECTED.md')
    .split('\n')
    .filter((line) => line.startsWith('| `'));
  return rows.flatMap((row) => {
    const columns = row.split('|').map((column) => column.trim());
    const files = [...(columns[1] ?? '').matchAll(/`([^`]+)`/g)].map((match) => match[1] as string);
    return files.map((file) => ({ file, answer: columns[4] ?? '' }));
  });
}

const rejection = (name: string): NbsError => refusal(read(name));

describe("parseIpynb on nbformat's own test notebooks (EXPECTED.md)", { skip: corpus.skip }, () => {
  const table = corpus.skip ? [] : expectations();
  it('covers every notebook in the corpus folder', () => {
    const onDisk = readdirSync(tests).filter((name) => name.endsWith('.ipynb')).sort();
    assert.deepEqual(table.map((row) => row.file).sort(), onDisk);
    assert.equal(onDisk.length, 20);
  });
  for (const { file, answer } of table) {
    it(`${file}: ${answer}`, () => {
      if (answer.startsWith('accept')) {
        const notebook = parseIpynb(read(file));
        assert.ok(notebook.cells.length > 0);
        assert.ok(notebook.cells.every((cell, index) => cell.index === index && typeof cell.source === 'string'));
        return;
      }
      assert.match(answer, /^reject/);
      const error = rejection(file);
      assert.match(error.code, /^NBS_NOTEBOOK_/);
      assert.ok(!error.message.includes('Error:'), error.message);
      if (answer.includes('unsupported')) assert.equal(error.code, 'NBS_NOTEBOOK_UNSUPPORTED_VERSION');
      else assert.notEqual(error.code, 'NBS_NOTEBOOK_INVALID_JSON');
    });
  }
  it('names each problem of invalid.ipynb', () => {
    const { message } = rejection('invalid.ipynb');
    assert.match(message, /cells\.0\.source: required/);
    assert.match(message, /cells\.2\.cell_type: expected/);
    assert.match(message, /cells\.3\.outputs\.0\.output_type: expected/);
  });
  it('names the wrong metadata types of v4_5_invalid_metadata.ipynb', () => {
    const { message } = rejection('v4_5_invalid_metadata.ipynb');
    assert.match(message, /metadata\.kernelspec: expected Object/);
    assert.match(message, /cells\.0\.metadata\.tags: expected Array/);
  });
});

describe('parseIpynb', () => {
  it('joins list sources and keeps ids', () => {
    const notebook = parseIpynb(
      JSON.stringify({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [{ cell_type: 'code', id: 'a-1', metadata: {}, source: ['x = 1\n', 'x'], outputs: [], execution_count: null }] }),
    );
    assert.deepEqual(notebook.cells, [{ index: 0, id: 'a-1', cellType: 'code', source: 'x = 1\nx' }]);
  });
  it('rejects JSON that is not a notebook without echoing it', () => {
    for (const text of ['[]', 'null', '"<script>"', '{"nbformat": 4, "nbformat_minor": 2, "cells": "<script>", "metadata": {}}']) {
      assert.throws(() => parseIpynb(text), (error: unknown) => error instanceof NbsError && !error.message.includes('<script>'), text);
    }
  });
});

describe('ingest limits', () => {
  const notebook = (cells: unknown[]) => JSON.stringify({ nbformat: 4, nbformat_minor: 4, metadata: {}, cells });
  const codeCell = (source: string, outputs: unknown[] = []) => ({ cell_type: 'code', metadata: {}, source, outputs, execution_count: null });

  it('refuses more cells than allowed', () => {
    assert.throws(
      () => parseIpynb(notebook([codeCell('1'), codeCell('2'), codeCell('3')]), { maxCells: 2 }),
      (error: unknown) => error instanceof NbsError && error.code === 'NBS_NOTEBOOK_TOO_MANY_CELLS',
    );
  });
  it('refuses stored outputs above the scanned-bytes limit, and accepts them below it', () => {
    const big = notebook([codeCell('1', [{ output_type: 'stream', name: 'stdout', text: 'x'.repeat(5000) }])]);
    assert.throws(
      () => parseIpynb(big, { maxOutputBytesScanned: 4096 }),
      (error: unknown) => error instanceof NbsError && error.code === 'NBS_INPUT_TOO_LARGE',
    );
    assert.equal(parseIpynb(big, { maxOutputBytesScanned: 8192 }).cells.length, 1);
  });
  it('refuses a cell larger than maxCellBytes', () => {
    assert.throws(
      () => loadInputText('ipynb', notebook([codeCell('x = 1\n'.repeat(100))]), { maxCellBytes: 100 }),
      (error: unknown) => error instanceof NbsError && error.code === 'NBS_INPUT_TOO_LARGE',
    );
  });
  it('never executes unknown cell types: a notebook with one is refused', () => {
    assert.throws(
      () => parseIpynb(notebook([{ cell_type: 'sql', metadata: {}, source: 'select 1' }])),
      (error: unknown) => error instanceof NbsError && error.code === 'NBS_NOTEBOOK_INVALID',
    );
  });
});

describe('ingest under fuzzing', () => {
  const valid = JSON.parse(own('v4.5.ipynb')) as unknown;

  /** Replaces the value at a random path of a JSON value with another JSON value. */
  function mutate(value: unknown, path: readonly number[], replacement: unknown): unknown {
    if (path.length === 0) return replacement;
    if (Array.isArray(value) && value.length > 0) {
      const position = (path[0] as number) % value.length;
      return value.map((item, index) => (index === position ? mutate(item, path.slice(1), replacement) : item));
    }
    if (value !== null && typeof value === 'object') {
      const keys = Object.keys(value);
      if (keys.length === 0) return replacement;
      const key = keys[(path[0] as number) % keys.length] as string;
      return { ...value, [key]: mutate((value as Record<string, unknown>)[key], path.slice(1), replacement) };
    }
    return replacement;
  }

  const onlyNbsErrors = (text: string) => {
    try {
      loadInputText('ipynb', text);
    } catch (error) {
      assert.ok(error instanceof NbsError, `non-NbsError for ${text.slice(0, 200)}: ${String(error)}`);
      assert.ok(!error.message.includes('\n'));
    }
  };

  it('answers random JSON with a notebook or an NbsError', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => onlyNbsErrors(JSON.stringify(value))), { numRuns: 500 });
  });
  it('answers mutated valid notebooks with a notebook or an NbsError', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 8 }), fc.jsonValue(), (path, replacement) =>
        onlyNbsErrors(JSON.stringify(mutate(valid, path, replacement))),
      ),
      { numRuns: 1000 },
    );
  });
  it('answers random text and truncated notebooks with an NbsError', () => {
    const text = own('v4.5.ipynb');
    fc.assert(fc.property(fc.string(), (garbage) => onlyNbsErrors(garbage)), { numRuns: 300 });
    fc.assert(fc.property(fc.nat({ max: text.length - 1 }), (cut) => onlyNbsErrors(text.slice(0, cut))), { numRuns: 300 });
  });
  it('answers a 100,000-deep JSON nesting with an NbsError', () => {
    onlyNbsErrors('{"nbformat":4,"nbformat_minor":4,"metadata":{},"cells":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}');
  });
});
