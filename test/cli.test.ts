/** The CLI contract: one JSON object with --json, exit codes, one-line errors for bad input. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NOTEBOOKS } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist', 'cli.js');

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function nbsandbox(...args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function assertOneLineError(outcome: Outcome, code: string): void {
  assert.equal(outcome.code, 2, outcome.stderr);
  const lines = outcome.stderr.trim().split('\n');
  assert.match(lines[0] ?? '', new RegExp(`^nbsandbox: ${code}: `));
  assert.ok(!outcome.stderr.includes('    at '), 'stack trace printed');
  assert.ok(!outcome.stderr.includes(tmpdir()), 'host path printed');
}

describe('nbsandbox CLI', { concurrency: 2 }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nbs-cli-'));
    writeFileSync(join(dir, 'hello.py'), 'print("hello")\n6 * 7\n');
    writeFileSync(join(dir, 'fails.py'), 'def broken():\n    raise ValueError("nope")\nbroken()\n');
    writeFileSync(join(dir, 'loop.py'), 'while True:\n    pass\n');
    writeFileSync(join(dir, 'latin1.py'), Buffer.from([0x70, 0x72, 0x69, 0x6e, 0x74, 0x28, 0xe9, 0x29]));
    writeFileSync(join(dir, 'broken.ipynb'), '{"cells": [');
    writeFileSync(join(dir, 'notes.txt'), 'print(1)');
    mkdirSync(join(dir, 'folder.py'));
    writeFileSync(join(dir, 'huge.py'), '');
    truncateSync(join(dir, 'huge.py'), 17 * 1024 * 1024);
  });

  it('--json prints exactly one result object and exits 0 for ok', async () => {
    const outcome = await nbsandbox('run', join(dir, 'hello.py'), '--json');
    assert.equal(outcome.code, 0, outcome.stderr);
    const lines = outcome.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const result = JSON.parse(lines[0] ?? '');
    assert.deepEqual(Object.keys(result).sort(), ['cells', 'check', 'durationMs', 'isolation', 'peakMemoryMb', 'runId', 'status', 'stderr', 'stdout', 'truncated']);
    assert.equal(result.status, 'ok');
    assert.equal(result.stdout, 'hello\n');
    assert.deepEqual(result.cells[0].outputs, [
      { output_type: 'stream', name: 'stdout', text: 'hello\n' },
      { output_type: 'execute_result', execution_count: 1, data: { 'text/plain': '42' }, metadata: {} },
    ]);
    assert.equal(result.isolation.permissionModel, true);
  });

  it('exits 1 with a traceback of the user cell only for a Python error', async () => {
    const outcome = await nbsandbox('run', join(dir, 'fails.py'), '--json');
    assert.equal(outcome.code, 1);
    const result = JSON.parse(outcome.stdout);
    assert.equal(result.status, 'error');
    const error = result.cells[0].outputs[0];
    assert.equal(error.ename, 'ValueError');
    assert.deepEqual(error.traceback, [
      'Traceback (most recent call last):\n',
      '  Cell [0], line 3, in <module>\n',
      '    broken()\n',
      '  Cell [0], line 2, in broken\n',
      '    raise ValueError("nope")\n',
      'ValueError: nope\n',
    ]);
    assert.ok(!outcome.stdout.includes('/lib/python') && !outcome.stdout.includes('node_modules'));
  });

  it('prints outputs for people and the traceback on stderr', async () => {
    const outcome = await nbsandbox('run', join(dir, 'fails.py'));
    assert.equal(outcome.code, 1);
    assert.match(outcome.stderr, /ValueError: nope/);
    assert.match(outcome.stderr, /run ended with status error/);
    const ok = await nbsandbox('run', join(dir, 'hello.py'));
    assert.equal(ok.stdout, 'hello\nOut[1]: 42\n');
  });

  it('exits 1 with status timeout for --timeout', async () => {
    const outcome = await nbsandbox('run', join(dir, 'loop.py'), '--timeout', '500', '--json');
    assert.equal(outcome.code, 1);
    assert.equal(JSON.parse(outcome.stdout).status, 'timeout');
  });

  it('runs the code cells of a real nbformat 4.5 notebook and echoes cell ids', async () => {
    const outcome = await nbsandbox('run', join(NOTEBOOKS, 'v4.5.ipynb'), '--json');
    const result = JSON.parse(outcome.stdout);
    assert.equal(result.cells[0].status, 'ok');
    assert.equal(result.cells[0].outputs[0].text, 'hello\n');
    assert.equal(result.cells[0].id, 'say-hello');
    assert.ok(result.cells[0].index > 0, 'index counts markdown cells');
    assert.equal(result.cells[1].outputs[0].ename, 'ModuleNotFoundError');
    assert.equal(result.cells[2].status, 'skipped');
    assert.equal(outcome.code, 1);
  });

  const badInputs: [string, () => string[], string][] = [
    ['a missing file', () => ['run', join(dir, 'missing.py')], 'NBS_INPUT_NOT_FOUND'],
    ['a directory', () => ['run', join(dir, 'folder.py')], 'NBS_INPUT_NOT_FILE'],
    ['non-UTF-8 source', () => ['run', join(dir, 'latin1.py')], 'NBS_INPUT_NOT_UTF8'],
    ['a notebook that is not JSON', () => ['run', join(dir, 'broken.ipynb')], 'NBS_NOTEBOOK_INVALID_JSON'],
    ['an nbformat v3 notebook', () => ['run', join(NOTEBOOKS, 'v3.ipynb')], 'NBS_NOTEBOOK_UNSUPPORTED_VERSION'],
    ['a 17 MiB file', () => ['run', join(dir, 'huge.py')], 'NBS_INPUT_TOO_LARGE'],
    ['an unknown file type', () => ['run', join(dir, 'notes.txt')], 'NBS_INPUT_UNSUPPORTED_TYPE'],
    ['an unknown option', () => ['run', join(dir, 'hello.py'), '--frobnicate'], 'NBS_USAGE'],
    ['a missing file argument', () => ['run'], 'NBS_USAGE'],
    ['an unknown command', () => ['explode'], 'NBS_USAGE'],
    ['a policy that does not exist', () => ['run', join(dir, 'hello.py'), '--policy', 'lenient'], 'NBS_POLICY_UNKNOWN'],
    ['a timeout that is not a number', () => ['run', join(dir, 'hello.py'), '--timeout', 'soon'], 'NBS_USAGE'],
    ['a memory limit out of range', () => ['run', join(dir, 'hello.py'), '--memory', '1'], 'NBS_OPTION_INVALID'],
  ];
  for (const [label, args, code] of badInputs) {
    it(`answers ${label} with ${code} and exit 2`, async () => {
      assertOneLineError(await nbsandbox(...args()), code);
    });
  }

  it('answers bad input with one JSON error object under --json', async () => {
    const outcome = await nbsandbox('run', join(dir, 'missing.py'), '--json');
    assert.equal(outcome.code, 2);
    assert.deepEqual(JSON.parse(outcome.stdout), { error: { code: 'NBS_INPUT_NOT_FOUND', message: 'The input file does not exist' } });
  });

  it('check prints findings like a linter and exits 1 for deny, 0 for warn', async () => {
    const notebook = {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: {},
      cells: [
        { id: 'intro', cell_type: 'markdown', metadata: {}, source: '# notes' },
        { id: 'spawn', cell_type: 'code', metadata: {}, outputs: [], execution_count: null, source: 'import os\nos.system("id")' },
      ],
    };
    writeFileSync(join(dir, 'spawn.ipynb'), JSON.stringify(notebook));
    writeFileSync(join(dir, 'pip.py'), 'import numpy\n!pip install torch\n');
    const [denied, warned] = await Promise.all([nbsandbox('check', join(dir, 'spawn.ipynb')), nbsandbox('check', join(dir, 'pip.py'))]);
    assert.equal(denied.code, 1, denied.stderr);
    assert.match(denied.stdout, /spawn\.ipynb cell\[1\]:2:1 critical NBS-PROC-001 calls os\.system\n/);
    assert.match(denied.stdout, /verdict deny \(1 finding, policy default\)/);
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stdout, /pip\.py:2:1 low NBS-PIP-001 /);
    assert.match(warned.stdout, /verdict warn/);
  });

  it('snapshot reports the start-up snapshot npm run build made, and takes no file', async () => {
    const outcome = await nbsandbox('snapshot');
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.match(outcome.stdout, /^snapshot up to date \(\d+\.\d MiB, Pyodide \d+\.\d+\.\d+\)\n$/);
    assertOneLineError(await nbsandbox('snapshot', 'file.py'), 'NBS_USAGE');
  });

  it('check --json prints one object with verdict, findings, cells, policy and duration', async () => {
    writeFileSync(join(dir, 'spawn.py'), 'import subprocess\nsubprocess.run(["id"])\n');
    const outcome = await nbsandbox('check', join(dir, 'spawn.py'), '--json', '--policy', 'strict');
    assert.equal(outcome.code, 1, outcome.stderr);
    const result = JSON.parse(outcome.stdout) as Record<string, unknown> & { findings: { ruleId: string; cell: number; line: number }[]; policy: { id: string; hash: string } };
    assert.deepEqual(Object.keys(result).sort(), ['cells', 'durationMs', 'findings', 'policy', 'rulesetVersion', 'verdict']);
    assert.equal(result['verdict'], 'deny');
    assert.equal(result.policy.id, 'strict');
    assert.match(result.policy.hash, /^[0-9a-f]{64}$/);
    assert.ok(result.findings.some((finding) => finding.ruleId === 'NBS-PROC-001' && finding.line === 2));
  });

  it('run refuses a denied notebook with status denied and runs none of it', async () => {
    writeFileSync(join(dir, 'denied.py'), 'print("user code ran")\nimport os\nos.system("id")\n');
    const outcome = await nbsandbox('run', join(dir, 'denied.py'), '--json');
    assert.equal(outcome.code, 1, outcome.stderr);
    const result = JSON.parse(outcome.stdout) as { status: string; cells: unknown[]; stdout: string; check: { verdict: string; findings: { ruleId: string }[] } };
    assert.equal(result.status, 'denied');
    assert.equal(result.check.verdict, 'deny');
    assert.ok(result.check.findings.some((finding) => finding.ruleId === 'NBS-PROC-001'));
    assert.ok(!outcome.stdout.includes('user code ran'));
  });

  it('test passes good fixtures and fails on a missing or unannotated finding', async () => {
    const fixtures = join(dir, 'fixtures');
    mkdirSync(join(fixtures, 'NBS-PROC-001'), { recursive: true });
    writeFileSync(join(fixtures, 'NBS-PROC-001', 'good.py'), 'import os\n# ruleid: NBS-PROC-001\nos.system("id")\n# ok: NBS-PROC-001\nsystem = 1\n');
    const good = await nbsandbox('test', fixtures);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /NBS-PROC-001/);
    writeFileSync(join(fixtures, 'NBS-PROC-001', 'bad.py'), 'import os\n# ruleid: NBS-PROC-001\nprint("nothing here")\nos.system("unannotated")\n');
    const bad = await nbsandbox('test', fixtures);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /^NBS-PROC-001\/bad\.py:3 NBS-PROC-001: expected a finding, got none$/m);
    assert.match(bad.stdout, /^NBS-PROC-001\/bad\.py:4 NBS-PROC-001: finding without a ruleid annotation$/m);
  });

  it('refuses --allow-* without an explicit --policy, and takes it with one, printing audit lines', async () => {
    writeFileSync(join(dir, 'env.py'), 'import os\nprint(os.environ.get("NBS_CLI_GRANT"), os.environ.get("NBS_CLI_OTHER"))\n');
    process.env['NBS_CLI_GRANT'] = 'granted';
    process.env['NBS_CLI_OTHER'] = 'hidden';
    const widening = await nbsandbox('run', join(dir, 'env.py'), '--allow-env=NBS_CLI_GRANT');
    assertOneLineError(widening, 'NBS_USAGE');
    assert.match(widening.stderr, /--allow-env needs an explicit --policy/);
    const granted = await nbsandbox('run', join(dir, 'env.py'), '--policy', 'default', '--allow-env=NBS_CLI_*', '--deny-env=NBS_CLI_OTHER', '--audit', '--json');
    assert.equal(granted.code, 0, granted.stderr);
    assert.equal(JSON.parse(granted.stdout).stdout, 'granted None\n');
    const audit = granted.stderr.trim().split('\n').map((line) => JSON.parse(line) as { kind: string; value: string; allowed: boolean; runId: string });
    assert.deepEqual(audit.map((event) => [event.kind, event.value, event.allowed]), [['env', 'NBS_CLI_GRANT', true]]);
    assert.equal(audit[0]?.runId, JSON.parse(granted.stdout).runId);
  });

  it('takes the permissions of a policy file, and its static import deny list binds at run time', async () => {
    const policyFile = join(dir, 'grants.json');
    writeFileSync(
      policyFile,
      JSON.stringify({
        id: 'grants',
        version: '1.0.0',
        extends: 'default',
        imports: { deny: ['sqlite3'] },
        // The check would refuse the computed import; off, so that the run-time layer is what holds.
        rules: { 'NBS-EXEC-002': 'off' },
        execution: { permissions: { env: { allow: ['NBS_POLICY_*'] }, write: { allow: ['/results'] } } },
      }),
    );
    writeFileSync(
      join(dir, 'grants.py'),
      [
        'import os',
        'print(os.environ.get("NBS_POLICY_GRANT"), os.environ.get("NBS_CLI_OTHER"))',
        'open("/results/out.txt", "w").write("kept")',
        'name = "sqlite" + "3"',
        'try:',
        '    __import__(name)',
        'except PermissionError as error:',
        '    print(error)',
      ].join('\n'),
    );
    process.env['NBS_POLICY_GRANT'] = 'from-policy';
    const outcome = await nbsandbox('run', join(dir, 'grants.py'), '--policy', policyFile, '--json');
    const result = JSON.parse(outcome.stdout) as { status: string; stdout: string; files: { path: string; data: string }[]; check: { verdict: string } };
    assert.equal(result.status, 'ok', outcome.stdout + outcome.stderr);
    assert.equal(result.stdout, 'from-policy None\nRequires import access to "sqlite3", run again with --allow-import\n');
    assert.deepEqual(result.files.map((file) => [file.path, Buffer.from(file.data, 'base64').toString()]), [['/results/out.txt', 'kept']]);
  });

  it('shows control characters escaped in text output (findings, outputs, file names, errors) and exact in JSON', async () => {
    const file = join(dir, 'evil\x1b[2J.py');
    writeFileSync(file, ['open("/etc/\\x1b]0;title\\x07", "w") if False else None', 'print("\\x1b]0;title\\x07\\x1b]52;c;aGk=\\x07\\x1b[2J\\u202eexe.txt")', 'raise ValueError("\\x1b[1A\\x1b[2K")'].join('\n'));
    const unsafe = /[\x00-\x08\x0b-\x1f\x7f\u202e]/;
    const run = await nbsandbox('run', file);
    assert.equal(run.code, 1);
    assert.doesNotMatch(run.stdout + run.stderr, unsafe, 'nothing reaches the terminal raw');
    assert.match(run.stdout, /\\x1b\]0;title\\x07\\x1b\]52;c;aGk=\\x07\\x1b\[2J\\u202eexe\.txt/);
    assert.match(run.stderr, /ValueError: \\x1b\[1A\\x1b\[2K/);
    const check = await nbsandbox('check', file);
    assert.doesNotMatch(check.stdout + check.stderr, unsafe);
    assert.match(check.stdout, /evil\\x1b\[2J\.py:1:/);
    const json = await nbsandbox('run', file, '--json');
    assert.equal(JSON.parse(json.stdout).stdout, '\x1b]0;title\x07\x1b]52;c;aGk=\x07\x1b[2J\u202eexe.txt\n', 'JSON keeps the exact text');
  });

  it('--deny-import refuses a module the runtime had loaded already', async () => {
    writeFileSync(join(dir, 'json-use.py'), 'import json\nprint(json.dumps([1]))\n');
    const outcome = await nbsandbox('run', join(dir, 'json-use.py'), '--deny-import=json', '--audit', '--json');
    const result = JSON.parse(outcome.stdout) as { status: string; cells: { outputs: { ename?: string; evalue?: string }[] }[] };
    assert.equal(result.status, 'error');
    const error = result.cells[0]?.outputs.find((output) => output.ename);
    assert.equal(error?.ename, 'PermissionError');
    assert.match(error?.evalue ?? '', /Requires import access to "json"/);
    assert.ok(outcome.stderr.split('\n').some((line) => line.includes('"kind":"import"') && line.includes('"value":"json"') && line.includes('"allowed":false')), 'an audit line for the denial');
  });
});
