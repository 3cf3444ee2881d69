/** Policy files: shipped policies, the published JSON Schema, extends, and hostile files. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { NbsError } from '../dist/index.js';
import { policyJsonSchemaText } from '../dist/policy/json-schema.js';
import { loadPolicy, parsePolicyText, SHIPPED_POLICY_DIR, shippedPolicyNames } from '../dist/policy/load.js';

function isPolicyError(code: string) {
  return (error: unknown) => error instanceof NbsError && error.code === code;
}

describe('shipped policies', () => {
  it('are strict, default and permissive, and all load', async () => {
    assert.deepEqual(shippedPolicyNames(), ['default', 'permissive', 'strict']);
    const hashes = new Set<string>();
    for (const name of shippedPolicyNames()) {
      const policy = await loadPolicy(name);
      assert.equal(policy.id, name);
      assert.match(policy.hash, /^[0-9a-f]{64}$/);
      hashes.add(policy.hash);
    }
    assert.equal(hashes.size, 3);
  });

  it('order their verdict thresholds from strict to permissive', async () => {
    const [strict, standard, permissive] = await Promise.all(['strict', 'default', 'permissive'].map((name) => loadPolicy(name)));
    assert.equal(strict?.verdict.denyAt, 'medium');
    assert.equal(standard?.verdict.denyAt, 'high');
    assert.equal(permissive?.verdict.denyAt, 'never');
  });

  it('match the committed JSON Schema (run `npm run build:schema` after changing the schema)', () => {
    assert.equal(readFileSync(join(SHIPPED_POLICY_DIR, 'schema.json'), 'utf8'), policyJsonSchemaText());
  });
});

describe('loadPolicy', () => {
  let dir: string;
  const write = (name: string, content: unknown) => {
    const file = join(dir, name);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };
  const minimal = (id: string, extra: Record<string, unknown> = {}) => ({ id, version: '1.0.0', ...extra });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nbs-policy-'));
  });

  it('merges a child over a shipped parent, objects by key and lists replaced', async () => {
    const file = write('child.json', minimal('child', { extends: 'strict', verdict: { denyAt: 'high' }, imports: { deny: ['requests'] } }));
    const policy = await loadPolicy(file);
    const strict = await loadPolicy('strict');
    assert.equal(policy.id, 'child');
    assert.equal(policy.verdict.denyAt, 'high');
    assert.equal(policy.verdict.unparsable, strict.verdict.unparsable);
    assert.deepEqual(policy.imports.deny, ['requests']);
    assert.equal(policy.magics.shell, strict.magics.shell);
    assert.notEqual(policy.hash, strict.hash);
  });

  it('resolves extends relative to the extending file', async () => {
    write('base.json', minimal('base', { limits: { timeoutMs: 1234 } }));
    const file = write('derived.json', minimal('derived', { extends: './base.json' }));
    assert.equal((await loadPolicy(file)).limits.timeoutMs, 1234);
  });

  it('refuses extends cycles and chains that are too deep', async () => {
    write('a.json', minimal('a', { extends: './b.json' }));
    const b = write('b.json', minimal('b', { extends: './a.json' }));
    await assert.rejects(loadPolicy(b), isPolicyError('NBS_POLICY_CYCLE'));
    const self = write('self.json', minimal('self', { extends: './self.json' }));
    await assert.rejects(loadPolicy(self), isPolicyError('NBS_POLICY_CYCLE'));
    for (let level = 0; level < 10; level += 1) write(`chain${level}.json`, minimal(`chain${level}`, level < 9 ? { extends: `./chain${level + 1}.json` } : {}));
    await assert.rejects(loadPolicy(join(dir, 'chain0.json')), isPolicyError('NBS_POLICY_INVALID'));
  });

  it('answers unknown names and missing files with NBS_POLICY_UNKNOWN', async () => {
    await assert.rejects(loadPolicy('lenient'), isPolicyError('NBS_POLICY_UNKNOWN'));
    await assert.rejects(loadPolicy(join(dir, 'missing.json')), isPolicyError('NBS_POLICY_UNKNOWN'));
    await assert.rejects(loadPolicy(''), isPolicyError('NBS_POLICY_UNKNOWN'));
  });

  const hostile: [string, () => string][] = [
    ['a file over 256 KiB', () => JSON.stringify(minimal('big', { description: 'x'.repeat(300 * 1024) }))],
    ['JSON nested 100,000 deep', () => '['.repeat(100_000) + ']'.repeat(100_000)],
    ['a valid document nested past the format', () => JSON.stringify(minimal('deep', { rules: { 'NBS-X-001': JSON.parse('{"a":'.repeat(40) + '1' + '}'.repeat(40)) } }))],
    ['wrong types', () => JSON.stringify({ id: 42, version: ['1'], limits: 'all' })],
    ['unknown keys', () => JSON.stringify(minimal('extra', { allowEverything: true }))],
    ['a __proto__ key', () => '{"id":"p","version":"1.0.0","limits":{"__proto__":{"polluted":true}}}'],
    ['a constructor key', () => '{"id":"p","version":"1.0.0","rules":{"constructor":{"prototype":{"polluted":true}}}}'],
    ['a rule id that is not one', () => JSON.stringify(minimal('r', { rules: { '<script>SECRET': 'off' } }))],
    ['a severity that does not exist', () => JSON.stringify(minimal('s', { verdict: { denyAt: 'SECRET-severe' } }))],
    ['not JSON', () => '{ id: strict }'],
  ];
  for (const [label, text] of hostile) {
    it(`rejects ${label} with NBS_POLICY_INVALID and echoes nothing`, async () => {
      const file = write('hostile.json', text());
      await assert.rejects(loadPolicy(file), (error: unknown) => {
        assert.ok(error instanceof NbsError && error.code === 'NBS_POLICY_INVALID', String(error));
        assert.ok(!error.message.includes('SECRET') && !error.message.includes('polluted') && error.message.length < 1000, error.message);
        return true;
      });
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    });
  }

  it('rejects a policy file that is not UTF-8', async () => {
    writeFileSync(join(dir, 'latin1.json'), Buffer.from([0x7b, 0xe9, 0x7d]));
    await assert.rejects(loadPolicy(join(dir, 'latin1.json')), isPolicyError('NBS_POLICY_INVALID'));
  });

  it('never throws anything but NbsError for random JSON (fuzz)', () => {
    const arbitraryPolicyish = fc.oneof(
      fc.json(),
      fc.record({ id: fc.string(), version: fc.string(), rules: fc.dictionary(fc.string(), fc.jsonValue()), limits: fc.jsonValue() }).map((value) => JSON.stringify(value)),
      fc.string(),
    );
    fc.assert(
      fc.property(arbitraryPolicyish, (text) => {
        try {
          parsePolicyText(text);
        } catch (error) {
          if (!(error instanceof NbsError)) throw error;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
