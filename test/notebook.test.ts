/** Notebook ingest against nbformat's own test notebooks (read from ../shared/corpus). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NbsError } from '../dist/index.js';
import { parseIpynb } from '../dist/notebook/index.js';

const tests = join(fileURLToPath(new URL('..', import.meta.url)), '..', 'shared', 'corpus', 'nbformat-tests');
const read = (name: string) => readFileSync(join(tests, name), 'utf8');

function rejectsWith(name: string, code: string): void {
  assert.throws(() => parseIpynb(read(name)), (error: unknown) => error instanceof NbsError && error.code === code, name);
}

describe('parseIpynb', () => {
  for (const name of ['test4.ipynb', 'test4.5.ipynb', 'test4docinfo.ipynb', 'test4custom.ipynb', 'test4jupyter_metadata.ipynb', 'test4jupyter_metadata_timings.ipynb', 'many_tracebacks.ipynb']) {
    it(`accepts ${name}`, () => {
      const notebook = parseIpynb(read(name));
      assert.ok(notebook.cells.length > 0);
      assert.ok(notebook.cells.every((cell, index) => cell.index === index && typeof cell.source === 'string'));
    });
  }
  for (const name of ['test2.ipynb', 'test3.ipynb', 'test3_no_metadata.ipynb', 'test4plus.ipynb']) {
    it(`rejects ${name} as an unsupported version`, () => rejectsWith(name, 'NBS_NOTEBOOK_UNSUPPORTED_VERSION'));
  }
  for (const name of ['v4_5_no_cell_id.ipynb', 'invalid_unique_cell_id.ipynb', 'invalid_cell_id.ipynb', 'no_min_version.ipynb']) {
    it(`rejects ${name} as invalid`, () => rejectsWith(name, 'NBS_NOTEBOOK_INVALID'));
  }
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
