/**
 * The static check through the real in-wasm checker: bypass forms, the benign corpus under
 * the default policy, hostile sources that break the parser, and the shipped fixtures.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Checker, loadInputText, loadPolicy, NbsError, type CheckInput, type CheckResult, type Policy } from '../dist/index.js';
import { runFixtures } from '../dist/check/fixtures.js';
import { VerdictCache } from '../dist/check/verdict-cache.js';
import { sharedCorpus } from './helpers.js';
import { parsePolicyText, resolvePolicy, SHIPPED_POLICY_DIR } from '../dist/policy/load.js';

const benign = sharedCorpus('benign');
const corpus = benign.dir;

function notebooksUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? notebooksUnder(join(dir, entry.name)) : entry.name.endsWith('.ipynb') ? [join(dir, entry.name)] : [],
  );
}

describe('static check in wasm', { concurrency: 1 }, () => {
  let checker: Checker;
  let standard: Policy;
  let strict: Policy;
  let permissive: Policy;
  const check = (source: string, policy = standard): Promise<CheckResult> =>
    checker.check({ kind: 'cells', cells: [{ index: 0, source }] }, policy);
  const ruleIds = (result: CheckResult) => result.findings.map((finding) => finding.ruleId);

  before(async () => {
    checker = new Checker({ workers: 1 });
    [standard, strict, permissive] = await Promise.all([loadPolicy('default'), loadPolicy('strict'), loadPolicy('permissive')]);
    await checker.warmUp();
  });
  after(() => checker.close());

  const bypasses: [string, string][] = [
    ['import os as o; o.system(...)', "import os as o\no.system('id')"],
    ['from os import system', "from os import system\nsystem('id')"],
    ['an alias by assignment', "import os\nrun = os.system\nrun('id')"],
    ['builtins.eval', "import builtins\nbuiltins.eval('1')"],
    ["__builtins__['exec']", "__builtins__['exec']('1')"],
    ["getattr(os, 'sys'+'tem')", "import os\ngetattr(os, 'sys' + 'tem')('id')"],
    ['importlib.import_module', "import importlib\nimportlib.import_module('subprocess')"],
    ['__import__', "__import__('os').system('id')"],
    ['exec(compile(...))', "exec(compile('1', 'x', 'exec'))"],
    ['sys.modules[...]', "import sys\nsys.modules['os'].system('id')"],
    ['a __subclasses__ walk', '().__class__.__mro__[1].__subclasses__()'],
    ['a frame walk', 'def g():\n    yield 1\ng().gi_frame.f_back.f_globals'],
    ['ctypes', 'import ctypes\nctypes.CDLL(None)'],
    ['subprocess', "import subprocess\nsubprocess.run(['id'])"],
    ['os.execv', "import os\nos.execv('/bin/sh', ['sh'])"],
    ['pty', "import pty\npty.spawn('/bin/sh')"],
    ['socket', "import socket\nsocket.create_connection(('example.com', 80))"],
    ['pickle.loads', 'import pickle\npickle.loads(data)'],
    ['torch.load without weights_only', "import torch\ntorch.load('model.pt')"],
    ['yaml.load unsafe', 'import yaml\nyaml.load(text)'],
    ['the JS bridge', 'import js\njs.fetch'],
    ['pyodide.code.run_js', "from pyodide.code import run_js\nrun_js('1')"],
    ['micropip', "import micropip\nmicropip.install('x')"],
  ];
  for (const [label, source] of bypasses) {
    it(`detects ${label} and denies it under default`, async () => {
      const result = await check(source);
      assert.equal(result.verdict, 'deny', JSON.stringify(result.findings));
      assert.ok(result.findings.every((finding) => finding.line >= 1 && finding.column >= 1));
    });
  }

  it('answers a repeated check from the verdict cache, keyed by code and policy', async () => {
    const source = `import os\nos.system("cache-${Date.now()}")`;
    const before = checker.cacheStats();
    const first = await check(source);
    const again = await check(source);
    const strictPolicy = await loadPolicy('strict');
    const otherPolicy = await check(source, strictPolicy);
    const after = checker.cacheStats();
    assert.equal(after.hits - before.hits, 1);
    assert.equal(after.misses - before.misses, 2);
    assert.deepEqual({ ...again, durationMs: 0 }, { ...first, durationMs: 0 });
    assert.equal(otherPolicy.policy.id, 'strict');
  });

  it('never answers from the cache once the policy changed, even under the same id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nbs-cache-policy-'));
    const file = join(dir, 'team.json');
    const source = `import subprocess\nsubprocess.run(["ls", "${Date.now()}"])`;
    writeFileSync(file, JSON.stringify({ id: 'team', version: '1.0.0', extends: 'default' }));
    const before = await check(source, await loadPolicy(file));
    writeFileSync(file, JSON.stringify({ id: 'team', version: '1.0.0', extends: 'default', rules: { 'NBS-PROC-001': 'off' } }));
    const edited = await loadPolicy(file);
    const after = await check(source, edited);
    assert.equal(before.verdict, 'deny');
    assert.ok(!ruleIds(after).includes('NBS-PROC-001'), 'the edited policy turned the rule off');
    assert.notEqual(after.policy.hash, before.policy.hash);
    assert.equal((await check(source, edited)).verdict, after.verdict, 'and the edited answer is cached in turn');
  });

  it('hands queued checks to a worker as soon as it is free (no check waits for the next caller)', async () => {
    await using single = new Checker({ workers: 1, cache: false });
    await single.warmUp();
    const sources = ['import os\nos.system("a")', 'x = 1', 'import socket\nsocket.socket()'];
    const all = Promise.all(sources.map((source) => single.check({ kind: 'cells', cells: [{ index: 0, source }] }, standard)));
    const results = await Promise.race([all, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('a queued check hung')), 20_000))]);
    assert.deepEqual(results.map((result) => result.verdict), ['deny', 'allow', 'deny']);
  });

  it('keeps the verdict cache within its entry and byte budgets, least recently used out first', () => {
    const cache = new VerdictCache({ maxEntries: 2, maxBytes: 1000 });
    cache.set('a', 'x');
    cache.set('b', 'y');
    assert.equal(cache.get('a'), 'x');
    cache.set('c', 'z');
    assert.equal(cache.get('b'), undefined, 'b was least recently used');
    assert.equal(cache.get('a'), 'x');
    cache.set('big', 'w'.repeat(200));
    assert.ok(cache.size <= 2);
    cache.set('huge', 'h'.repeat(400));
    assert.equal(cache.get('huge'), undefined, 'an answer larger than a quarter of the budget is not kept');
  });

  it('reports findings with positions, ids and Bandit mapping', async () => {
    const result = await check("x = 1\nimport subprocess\nsubprocess.call('ls', shell=True)");
    const finding = result.findings.find((item) => item.ruleId === 'NBS-PROC-001');
    assert.ok(finding, JSON.stringify(result.findings));
    assert.equal(finding.line, 3);
    assert.equal(finding.column, 1);
    assert.equal(finding.cell, 0);
    assert.match(finding.bandit ?? '', /^B6\d\d$/);
    assert.equal(result.policy.id, 'default');
    assert.equal(result.policy.hash, standard.hash);
  });

  it('never echoes a hard-coded secret', async () => {
    const secret = 'AKIA' + 'ABCDEFGHIJKLMNOP';
    const result = await check(`aws_key = "${secret}"`);
    assert.ok(ruleIds(result).includes('NBS-SECRET-001'), JSON.stringify(result));
    assert.ok(!JSON.stringify(result).includes(secret));
  });

  it('lets plain data-science code through without warnings of medium or more', async () => {
    const result = await check(
      "import numpy as np\nimport pandas as pd\nimport requests\nimport os\ndf = pd.DataFrame({'a': np.arange(3)})\nr = requests.get('https://example.com', timeout=5)\ntoken = os.environ['HF_TOKEN']\nwith open('out.txt', 'w') as f:\n    f.write(df.to_csv())\ndf.describe()",
    );
    assert.equal(result.verdict, 'allow', JSON.stringify(result.findings));
  });

  it('understands magics without making the cell unparsable', async () => {
    const result = await check('%matplotlib inline\n!pip install transformers\nimport numpy\nfor i in range(2):\n    !echo hi\nx = 1');
    assert.ok(!ruleIds(result).includes('NBS-PARSE-001'), JSON.stringify(result.findings));
    assert.ok(ruleIds(result).includes('NBS-SHELL-001'));
    assert.deepEqual(result.cells[0]?.dependencies, ['transformers']);
    assert.notEqual(result.verdict, 'deny');
    const strictResult = await check('%%bash\nrm -rf /', strict);
    assert.equal(strictResult.verdict, 'deny');
  });

  it('fails closed on unparsable Python under default and strict, not under permissive', async () => {
    assert.equal((await check('def (:')).verdict, 'deny');
    assert.equal((await check('def (:', strict)).verdict, 'deny');
    assert.notEqual((await check('def (:', permissive)).verdict, 'deny');
    assert.notEqual((await check('import os\nos.system("x")', permissive)).verdict, 'deny');
  });

  for (const [label, source] of [
    ["'not ' * 100000 + 'x'", 'not '.repeat(100_000) + 'x'],
    ["'(' * 100000", '('.repeat(100_000)],
    ['a 200,000-deep attribute chain', 'a' + '.b'.repeat(200_000)],
    ['a 200,000-term sum', 'x' + '+x'.repeat(200_000)],
  ] as const) {
    it(`answers ${label} with a finding and keeps working`, async () => {
      const result = await check(source);
      assert.equal(result.verdict, 'deny');
      assert.ok(ruleIds(result).includes('NBS-PARSE-001'), JSON.stringify(result.findings).slice(0, 500));
      assert.equal((await check('print(1)')).verdict, 'allow');
    });
  }

  it('analyses 20,000-deep chains instead of giving up on them', async () => {
    const sum = await check('x' + '+x'.repeat(20_000) + '+eval(y)');
    assert.ok(ruleIds(sum).includes('NBS-EXEC-001'), JSON.stringify(sum.findings));
    const chain = await check("import os\nos.system('id')" + '.b'.repeat(20_000));
    assert.ok(ruleIds(chain).includes('NBS-PROC-001'), JSON.stringify(chain.findings));
  });

  it('checks code passed to exec, eval and compile as string literals', async () => {
    const hidden = await check("exec('import os; os.system(1)')");
    assert.equal(hidden.verdict, 'deny');
    assert.ok(ruleIds(hidden).includes('NBS-PROC-001'));
    const nested = await check('exec("exec(\'import ctypes\')")');
    assert.ok(ruleIds(nested).includes('NBS-FFI-001'), JSON.stringify(nested.findings));
    assert.equal((await check("eval('1 + 1')")).verdict, 'allow');
    assert.ok(ruleIds(await check("compile('def (:', 'c', 'exec')")).includes('NBS-EXEC-001'));
  });

  it('checks marimo files without importing them, with file line numbers', async () => {
    const source = [
      'import marimo',
      '',
      'app = marimo.App()',
      '',
      '@app.cell',
      'def _():',
      '    import os',
      "    os.system('id')",
      '    return',
      '',
      "app._unparsable_cell(r'''x = (''')",
      '',
      "if __name__ == '__main__':",
      '    app.run()',
    ].join('\n');
    const input = loadInputText('py', source);
    assert.equal(input.kind, 'marimo');
    const result = await checker.check(input.check, standard);
    const proc = result.findings.find((finding) => finding.ruleId === 'NBS-PROC-001');
    assert.equal(proc?.line, 8, JSON.stringify(result.findings));
    assert.ok(ruleIds(result).includes('NBS-MARIMO-001'));
  });

  it('never denies a benign corpus notebook under default, and finishes each', { skip: benign.skip }, async () => {
    const files = notebooksUnder(corpus);
    assert.ok(files.length >= 40, `${files.length} notebooks`);
    const verdicts: Record<string, number> = {};
    let refusedAtIngest = 0;
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      let input: CheckInput;
      try {
        input = loadInputText('ipynb', text, standard.limits).check;
      } catch (error) {
        // nbformat's validator refuses 4.5 notebooks whose cell ids repeat, and so does ingest;
        // any other refusal of a benign notebook is a bug. Its code is still checked below.
        assert.ok(error instanceof NbsError && /id: not unique/.test(error.message), `${file}: ${String(error)}`);
        const raw = JSON.parse(text) as { cells: { cell_type: string; id: string; source: string | string[] }[] };
        const ids = raw.cells.map((cell) => cell.id);
        assert.notEqual(new Set(ids).size, ids.length, `${file} was refused but its ids are unique`);
        refusedAtIngest += 1;
        const code = raw.cells.flatMap((cell, index) =>
          cell.cell_type === 'code' ? [{ index, source: Array.isArray(cell.source) ? cell.source.join('') : cell.source }] : [],
        );
        input = { kind: 'cells', cells: code };
      }
      const result = await checker.check(input, standard);
      verdicts[result.verdict] = (verdicts[result.verdict] ?? 0) + 1;
      assert.notEqual(result.verdict, 'deny', `${file}: ${JSON.stringify(result.findings.filter((f) => f.severity === 'high' || f.severity === 'critical'))}`);
    }
    console.log(`benign corpus under default: ${files.length} notebooks, verdicts ${JSON.stringify(verdicts)}, refused at ingest for repeated cell ids: ${refusedAtIngest}`);
  });

  it('passes the shipped fixtures under the default policy', async () => {
    const report = await runFixtures(join(SHIPPED_POLICY_DIR, 'fixtures'), standard, checker);
    assert.deepEqual(report.failures, []);
    const catalogue = readFileSync(join(SHIPPED_POLICY_DIR, '..', 'wasm', 'checker', 'catalogue.py'), 'utf8');
    const catalogued = [...catalogue.matchAll(/Rule\("(NBS-[A-Z]+-\d{3})"/g)].map((match) => match[1]).sort();
    assert.equal(catalogued.length, 20);
    assert.deepEqual(report.rules.map((rule) => rule.ruleId), catalogued);
    for (const rule of report.rules) {
      assert.ok(rule.positive > 0 && rule.negative > 0, `${rule.ruleId} needs ruleid and ok fixtures`);
    }
  });

  it('never fails on random sources (fuzz)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.lorem(), fc.constantFrom('%%', '!', '%', '?', '"""', "'''", '\\', '\t', '\0')), async (source) => {
        const result = await check(source);
        assert.ok(['allow', 'warn', 'deny'].includes(result.verdict));
      }),
      { numRuns: 150 },
    );
  });

  it('never fails on random notebooks under random policies (fuzz)', async () => {
    const severity = fc.constantFrom('info', 'low', 'medium', 'high', 'critical');
    const line = fc.oneof(
      fc.string(),
      fc.constantFrom('%matplotlib inline', '%%bash', '!pip install x', 'import os', "os.system('id')", 'x = !ls', 'exec(y)', '    !echo', 'def f(:'),
    );
    const source = fc.oneof(fc.string(), fc.array(line, { maxLength: 6 }).map((lines) => lines.join('\n')));
    const mostly = <T,>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 19, arbitrary: valid }, { weight: 1, arbitrary: fc.string() });
    const names = fc.array(mostly(fc.constantFrom('os', 'subprocess', 'socket', 'numpy', 'matplotlib', '%%bash', 'pip', 'js')), { maxLength: 4 });
    const policyText = fc
      .record(
        {
          id: fc.constantFrom('fuzz', 'x-1'),
          version: fc.constant('1.0.0'),
          magics: fc.record({ allow: names, deny: names, unknown: severity, shell: fc.oneof({ weight: 9, arbitrary: severity }, { weight: 1, arbitrary: fc.anything() }) }, { requiredKeys: [] }),
          imports: fc.record({ allow: names.map((items) => items.map((item) => item.replace(/%/g, ''))), deny: names.map((items) => items.map((item) => item.replace(/%/g, ''))), severity }, { requiredKeys: [] }),
          rules: fc.dictionary(mostly(fc.constantFrom('NBS-PROC-001', 'NBS-EXEC-001', 'NBS-PARSE-001', 'NBS-SHELL-001')), fc.oneof({ weight: 4, arbitrary: fc.oneof(severity, fc.constant('off')) }, { weight: 1, arbitrary: fc.jsonValue() })),
          verdict: fc.record({ denyAt: fc.oneof(severity, fc.constant('never')), warnAt: severity, unparsable: severity }, { requiredKeys: [] }),
        },
        { requiredKeys: ['id', 'version'] },
      )
      .map((value) => JSON.stringify(value));
    const notebookText = fc
      .record({
        minor: fc.oneof({ weight: 1, arbitrary: fc.integer({ min: -1, max: 6 }) }, { weight: 4, arbitrary: fc.constantFrom(4, 5) }),
        cells: fc.array(fc.record({ cell_type: fc.constantFrom('code', 'code', 'code', 'markdown', 'raw', 'heading'), source: fc.oneof(source, fc.array(source)), id: fc.option(fc.string(), { freq: 5 }) }), { maxLength: 4 }),
      })
      .map(({ minor, cells }) =>
        JSON.stringify({
          nbformat: 4,
          nbformat_minor: minor,
          metadata: {},
          cells: cells.map((cell, index) => ({ ...cell, id: cell.id ?? `c${index}`, metadata: {}, ...(cell.cell_type === 'code' ? { outputs: [], execution_count: null } : {}) })),
        }),
      );
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(notebookText, policyText, async (notebook, policy) => {
        let resolved: Policy;
        let input: CheckInput;
        try {
          resolved = resolvePolicy([parsePolicyText(policy)]);
          input = loadInputText('ipynb', notebook, resolved.limits).check;
        } catch (error) {
          assert.ok(error instanceof NbsError, String(error));
          return;
        }
        const result = await checker.check(input, resolved);
        checked += 1;
        assert.ok(['allow', 'warn', 'deny'].includes(result.verdict));
        for (const finding of result.findings) assert.ok(finding.line >= 1 && finding.column >= 1, JSON.stringify(finding));
      }),
      { numRuns: 300 },
    );
    assert.ok(checked > 20, `only ${checked} of the random inputs reached the checker`);
  });
});

describe('checker workers that time out', () => {
  it('hand the next queued check to a fresh worker, never to the one being retired', { timeout: 120_000 }, async () => {
    const policy = await loadPolicy('default');
    await using checker = new Checker({ workers: 1, timeoutMs: 700, cache: false });
    await checker.warmUp();
    const slow = Array.from({ length: 20_000 }, (_, line) => `v${line} = [x * ${line} for x in range(3) if x]`).join('\n');
    const [timedOut, queued] = await Promise.all([
      checker.check({ kind: 'cells', cells: [{ index: 0, source: slow }] }, policy),
      checker.check({ kind: 'cells', cells: [{ index: 0, source: 'import os\nos.system("id")' }] }, policy),
    ]);
    assert.deepEqual(timedOut.findings.map((finding) => finding.ruleId), ['NBS-PARSE-001']);
    assert.ok(queued.findings.some((finding) => finding.ruleId === 'NBS-PROC-001'), 'the queued check was answered by a fresh worker');
  });
});

describe('the checker answer on the host', () => {
  it('is validated, and an answer of the wrong shape is refused', async () => {
    const { parseCheckAnswer } = await import('../dist/check/answer.js');
    const good = { verdict: 'warn', findings: [], cells: [], rulesetVersion: '3' };
    assert.deepEqual(parseCheckAnswer(JSON.stringify(good)), good);
    for (const bad of ['not json', '{}', JSON.stringify({ ...good, verdict: 'maybe' }), JSON.stringify({ ...good, findings: [{ ruleId: 'X' }] }), JSON.stringify({ ...good, extra: 1 })]) {
      assert.equal(parseCheckAnswer(bad), null, bad);
    }
  });
});
