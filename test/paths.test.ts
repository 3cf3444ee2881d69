/** Read and write path grants: rule matching, collecting host files, accepting written files. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NbsError } from '../dist/index.js';
import { acceptWrittenFiles, checkWritablePath, collectReadGrants, compilePathRules } from '../dist/sandbox/permissions/paths.js';

function isCode(code: string) {
  return (error: unknown) => error instanceof NbsError && error.code === code;
}

const text = (value: string) => new TextEncoder().encode(value);
const lexical = (allow: string[], deny: string[] = []) => compilePathRules({ allow, deny }, { resolveSymlinks: false });
const big = { maxFiles: 1000, maxBytes: 1_000_000 };

describe('compilePathRules', () => {
  it('uses whole-component prefixes', () => {
    const rules = lexical(['/data']);
    assert.equal(rules.decide('/data'), 'allow');
    assert.equal(rules.decide('/data/x/y.csv'), 'allow');
    assert.equal(rules.decide('/database'), 'unlisted');
    assert.equal(rules.decide('/database/x'), 'unlisted');
    assert.equal(rules.decide('/dat'), 'unlisted');
    assert.equal(rules.decide('/'), 'unlisted');
  });

  it('lets deny win, whether broader or narrower than the allow', () => {
    const broader = lexical(['/data/public'], ['/data']);
    assert.equal(broader.decide('/data/public/x'), 'deny');
    assert.equal(broader.decide('/data/public'), 'deny');
    const narrower = lexical(['/data'], ['/data/secret']);
    assert.equal(narrower.decide('/data/x'), 'allow');
    assert.equal(narrower.decide('/data/secret'), 'deny');
    assert.equal(narrower.decide('/data/secret/key'), 'deny');
    assert.equal(narrower.decide('/data/secretive'), 'allow');
    assert.equal(lexical(['/data'], ['/']).decide('/data/x'), 'deny');
  });

  it('allows nothing without allow entries', () => {
    assert.equal(lexical([]).decide('/data'), 'unlisted');
    assert.equal(compilePathRules({}, { resolveSymlinks: false }).decide('/'), 'unlisted');
    assert.equal(lexical([], ['/etc']).decide('/etc/passwd'), 'deny');
  });

  it('collapses .. and repeated slashes before matching', () => {
    assert.equal(lexical(['/data']).decide('/data/../etc/passwd'), 'unlisted');
    assert.equal(lexical(['/data'], ['/etc']).decide('/data/../etc/passwd'), 'deny');
    assert.equal(lexical(['/data']).decide('/data/./x//y/'), 'allow');
    assert.equal(lexical(['/data']).decide('/../../data/x'), 'allow');
    assert.equal(lexical(['/data/../etc']).decide('/etc/passwd'), 'allow');
  });

  it('denies paths with NUL and relative paths', () => {
    const rules = lexical(['/']);
    assert.equal(rules.decide('/data/\0x'), 'deny');
    assert.equal(rules.decide('data/x'), 'deny');
    assert.equal(rules.decide(''), 'deny');
    assert.equal(rules.decide('../etc'), 'deny');
  });

  it('covers everything with the root entry', () => {
    const rules = lexical(['/']);
    assert.equal(rules.decide('/'), 'allow');
    assert.equal(rules.decide('/etc/passwd'), 'allow');
    assert.equal(lexical(['/'], ['/etc']).decide('/etc/passwd'), 'deny');
    assert.equal(lexical(['/'], ['/etc']).decide('/etcetera'), 'allow');
  });

  it('ignores trailing slashes on entries', () => {
    const rules = lexical(['/data/'], ['/data/secret//']);
    assert.equal(rules.decide('/data'), 'allow');
    assert.equal(rules.decide('/database'), 'unlisted');
    assert.equal(rules.decide('/data/secret'), 'deny');
  });

  it('rejects relative, empty, NUL and overlong entries without echoing them', () => {
    for (const entry of ['data', './data', '', 'a\0b', '/da\0ta', `/${'x'.repeat(5000)}`, '~/data']) {
      for (const rules of [{ allow: [entry] }, { deny: [entry] }]) {
        assert.throws(
          () => compilePathRules(rules, { resolveSymlinks: false }),
          (error: unknown) => isCode('NBS_OPTION_INVALID')(error) && !(error as Error).message.includes(entry || '\u0001'),
        );
      }
    }
  });
});

describe('host read grants', () => {
  let root: string;
  let data: string;
  let fifoAvailable = true;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'nbs-paths-'));
    data = join(root, 'data');
    mkdirSync(join(data, 'sub'), { recursive: true });
    mkdirSync(join(data, 'secret'));
    mkdirSync(join(root, 'outside'));
    mkdirSync(join(root, 'shared'));
    mkdirSync(join(root, 'database'));
    writeFileSync(join(data, 'a.txt'), 'a');
    writeFileSync(join(data, 'sub', 'b.txt'), 'bb');
    writeFileSync(join(data, 'secret', 'key.txt'), 'key');
    writeFileSync(join(root, 'outside', 'o.txt'), 'outside');
    writeFileSync(join(root, 'shared', 's.txt'), 'shared');
    writeFileSync(join(root, 'database', 'x.txt'), 'x');
    symlinkSync(join(root, 'outside'), join(data, 'to-outside'));
    symlinkSync(join(data, 'secret', 'key.txt'), join(data, 'to-secret'));
    symlinkSync(join(root, 'shared'), join(data, 'to-shared'));
    symlinkSync(data, join(data, 'loop'));
    symlinkSync(join(root, 'nowhere'), join(data, 'dangling'));
    symlinkSync(data, join(root, 'link-root'));
    mkdirSync(join(root, 'fifo-dir'));
    writeFileSync(join(root, 'fifo-dir', 'ok.txt'), 'ok');
    try {
      execFileSync('mkfifo', [join(root, 'fifo-dir', 'pipe')], { stdio: 'ignore' });
      symlinkSync(join(root, 'fifo-dir', 'pipe'), join(root, 'fifo-dir', 'to-pipe'));
    } catch {
      fifoAvailable = false;
    }
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  const paths = (files: readonly { path: string }[]) => files.map((file) => file.path).sort();
  const deniedEvent = (events: readonly { value: string; allowed: boolean; reason?: string }[], value: string) =>
    events.find((event) => event.value === value && !event.allowed);

  it('realpaths entries when asked, keeping missing ones as written', () => {
    const resolved = compilePathRules({ allow: [join(root, 'link-root'), join(root, 'missing/x')] }, { resolveSymlinks: true });
    assert.equal(resolved.decide(join(data, 'a.txt')), 'allow');
    assert.equal(resolved.decide(join(root, 'missing/x/y')), 'allow');
    assert.equal(lexical([join(root, 'link-root')]).decide(join(data, 'a.txt')), 'unlisted');
  });

  it('copies a granted tree, skipping links outside it, denied targets and loops', async () => {
    const result = await collectReadGrants({ allow: [data, join(root, 'shared')], deny: [join(data, 'secret')] }, big);
    assert.deepEqual(paths(result.files), [join(data, 'a.txt'), join(data, 'sub', 'b.txt'), join(data, 'to-shared', 's.txt'), join(root, 'shared', 's.txt')].sort());
    assert.equal(new TextDecoder().decode(result.files.find((file) => file.path.endsWith('b.txt'))?.bytes), 'bb');
    assert.equal(deniedEvent(result.events, join(data, 'to-outside'))?.reason, 'symlink target not granted');
    assert.equal(deniedEvent(result.events, join(data, 'to-secret'))?.reason, 'symlink target not granted');
    assert.equal(deniedEvent(result.events, join(data, 'secret'))?.reason, 'denied');
    assert.equal(deniedEvent(result.events, join(data, 'loop'))?.reason, 'symlink loop');
    assert.equal(deniedEvent(result.events, join(data, 'dangling'))?.reason, 'not found');
    assert.ok(result.events.some((event) => event.value === data && event.allowed));
    assert.deepEqual(
      [...result.refused].sort(),
      [join(data, 'secret'), join(data, 'to-outside'), join(data, 'to-secret')].sort(),
      'refused by the rules (not missing, not a loop): these fail as denials inside the run',
    );
    assert.equal(result.directories[0], data);
    assert.ok(result.directories.includes(join(data, 'to-shared')));
    assert.ok(result.directories.includes(join(data, 'sub')));
    assert.ok(!result.directories.includes(join(data, 'secret')));
    assert.ok(result.files.every((file) => !file.path.startsWith(join(root, 'database'))));
  });

  it('does not follow a link to a place only a sibling name prefix grants', async () => {
    const result = await collectReadGrants({ allow: [join(root, 'data')] }, big);
    assert.ok(!paths(result.files).some((path) => path.includes('database') || path.includes('outside')));
  });

  it('places a symlinked grant root at the path the grant names and resolves deny entries', async () => {
    const linkRoot = join(root, 'link-root');
    const result = await collectReadGrants({ allow: [linkRoot], deny: [join(linkRoot, 'sub')] }, big);
    assert.deepEqual(paths(result.files), [join(linkRoot, 'a.txt'), join(linkRoot, 'secret', 'key.txt'), join(linkRoot, 'to-secret')]);
    assert.equal(result.directories[0], linkRoot);
    assert.equal(deniedEvent(result.events, join(linkRoot, 'sub'))?.reason, 'denied');
    const denied = await collectReadGrants({ allow: [data], deny: [join(linkRoot, 'sub')] }, big);
    assert.deepEqual(paths(denied.files), [join(data, 'a.txt'), join(data, 'secret', 'key.txt'), join(data, 'to-secret')]);
  });

  it('takes a granted single file, even through a symlink at the root', async () => {
    const result = await collectReadGrants({ allow: [join(data, 'to-secret')] }, big);
    assert.deepEqual(result.files.map((file) => [file.path, new TextDecoder().decode(file.bytes)]), [[join(data, 'to-secret'), 'key']]);
    assert.deepEqual(result.directories, []);
  });

  it('treats a missing grant root as a recorded skip, not an error', async () => {
    const missing = join(root, 'missing');
    const result = await collectReadGrants({ allow: [missing] }, big);
    assert.deepEqual(result.files, []);
    assert.deepEqual(result.events, [{ kind: 'read', value: missing, allowed: false, reason: 'not found' }]);
  });

  it('skips a FIFO, directly or through a symlink, without opening it', { timeout: 5000 }, async (t) => {
    if (!fifoAvailable) return t.skip('mkfifo is not available');
    const dir = join(root, 'fifo-dir');
    const result = await collectReadGrants({ allow: [dir] }, big);
    assert.deepEqual(paths(result.files), [join(dir, 'ok.txt')]);
    assert.equal(deniedEvent(result.events, join(dir, 'pipe'))?.reason, 'not a regular file or directory');
    assert.equal(deniedEvent(result.events, join(dir, 'to-pipe'))?.reason, 'not a regular file or directory');
    const direct = await collectReadGrants({ allow: [join(dir, 'pipe')] }, big);
    assert.deepEqual(direct.files, []);
  });

  it('fails the whole collection over the caps', async () => {
    const rules = { allow: [join(data, 'sub'), join(data, 'a.txt')] };
    assert.equal((await collectReadGrants(rules, { maxFiles: 2, maxBytes: 3, maxFileBytes: 2 })).files.length, 2);
    await assert.rejects(collectReadGrants(rules, { maxFiles: 1, maxBytes: 100 }), isCode('NBS_PERMISSION_TOO_LARGE'));
    await assert.rejects(collectReadGrants(rules, { maxFiles: 10, maxBytes: 2 }), isCode('NBS_PERMISSION_TOO_LARGE'));
    await assert.rejects(collectReadGrants(rules, { maxFiles: 10, maxBytes: 100, maxFileBytes: 1 }), isCode('NBS_PERMISSION_TOO_LARGE'));
    await assert.rejects(collectReadGrants(rules, { maxFiles: -1, maxBytes: 100 }), isCode('NBS_OPTION_INVALID'));
  });

  it('caps the number of skip events', async () => {
    const many = join(root, 'many');
    mkdirSync(join(many, 'keep'), { recursive: true });
    for (let index = 0; index < 150; index += 1) symlinkSync(join(root, 'outside'), join(many, 'keep', `l${index}`));
    const result = await collectReadGrants({ allow: [many] }, big);
    assert.equal(result.events.filter((event) => !event.allowed).length, 101);
    assert.match(result.events.at(-1)?.reason ?? '', /^50 more/);
  });
});

describe('write grants', () => {
  const rules = { allow: ['/out'], deny: ['/out/private'] };

  it('checks virtual paths lexically', () => {
    assert.equal(checkWritablePath(rules, '/out/a.csv'), true);
    assert.equal(checkWritablePath(rules, '/out/../etc/passwd'), false);
    assert.equal(checkWritablePath(rules, '/out/private/x'), false);
    assert.equal(checkWritablePath(rules, '/outside/x'), false);
    assert.equal(checkWritablePath(rules, 'out/a'), false);
    assert.equal(checkWritablePath(rules, '/out/a\0'), false);
  });

  it('keeps granted files at their normalised path and drops the rest', () => {
    const result = acceptWrittenFiles(
      rules,
      [
        { path: '/out/a.txt', bytes: text('a') },
        { path: '/out//sub/./b.txt', bytes: text('b') },
        { path: '/out/private/k', bytes: text('k') },
        { path: '/etc/passwd', bytes: text('p') },
        { path: '/out/../etc/x', bytes: text('x') },
        { path: 'out/rel', bytes: text('r') },
        { path: '/out/n\0ul', bytes: text('n') },
        { path: '/out/a.txt', bytes: text('again') },
      ],
      big,
    );
    assert.deepEqual(result.files, [
      { path: '/out/a.txt', bytes: text('a') },
      { path: '/out/sub/b.txt', bytes: text('b') },
    ]);
    assert.equal(result.truncated, false);
    assert.deepEqual(
      result.events.map((event) => [event.value, event.allowed]),
      [
        ['/out/a.txt', true],
        ['/out/sub/b.txt', true],
        ['/out/private/k', false],
        ['/etc/passwd', false],
        ['/etc/x', false],
        ['out/rel', false],
        ['/out/n?ul', false],
        ['/out/a.txt', false],
      ],
    );
  });

  it('drops files over the caps and reports truncation without throwing', () => {
    const files = [
      { path: '/out/1', bytes: text('1234') },
      { path: '/out/2', bytes: text('123456') },
      { path: '/out/3', bytes: text('1') },
      { path: '/out/4', bytes: text('1') },
    ];
    const byBytes = acceptWrittenFiles(rules, files, { maxFiles: 10, maxBytes: 5 });
    assert.deepEqual(byBytes.files.map((file) => file.path), ['/out/1', '/out/3']);
    assert.equal(byBytes.truncated, true);
    const byCount = acceptWrittenFiles(rules, files, { maxFiles: 1, maxBytes: 100 });
    assert.deepEqual(byCount.files.map((file) => file.path), ['/out/1']);
    assert.equal(byCount.truncated, true);
    assert.ok(byCount.events.some((event) => event.value === '/out/4' && event.reason === 'over the output caps'));
  });

  it('allows nothing without write grants', () => {
    const result = acceptWrittenFiles({}, [{ path: '/tmp/x', bytes: text('x') }], big);
    assert.deepEqual(result.files, []);
    assert.equal(result.truncated, false);
  });
});
