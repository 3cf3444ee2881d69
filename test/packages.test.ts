/**
 * Packages from an operator's Pyodide package directory: a run imports only what its `import`
 * permission grants (dependencies come along), wheels are integrity-checked, and nothing is
 * downloaded. The wheels are built here (pure Python) with the machine's python3.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createSandbox, NbsError, type Sandbox } from '../dist/index.js';

const BUILD_WHEELS = `
import base64, hashlib, json, sys, zipfile
out, info_path = sys.argv[1], sys.argv[2]
def wheel(name, files, deps):
    file_name = f"{name}-1.0-py3-none-any.whl"
    dist = f"{name}-1.0.dist-info"
    entries = dict(files)
    entries[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\\nName: {name}\\nVersion: 1.0\\n"
    entries[f"{dist}/WHEEL"] = "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},{len(text.encode())}" for path, text in entries.items()]
    entries[f"{dist}/RECORD"] = "\\n".join(record + [f"{dist}/RECORD,,"]) + "\\n"
    with zipfile.ZipFile(f"{out}/{file_name}", "w") as archive:
        for path, text in entries.items():
            archive.writestr(path, text)
    digest = hashlib.sha256(open(f"{out}/{file_name}", "rb").read()).hexdigest()
    return {"name": name, "version": "1.0", "file_name": file_name, "install_dir": "site", "sha256": digest,
            "package_type": "package", "imports": [name], "depends": deps, "unvendored_tests": False}
packages = {
    "nbsdep": wheel("nbsdep", {"nbsdep/__init__.py": "VALUE = 21\\n"}, []),
    "nbsdemo": wheel("nbsdemo", {"nbsdemo/__init__.py": "import nbsdep\\ndef answer():\\n    return nbsdep.VALUE * 2\\n"}, ["nbsdep"]),
    "nbsother": wheel("nbsother", {"nbsother/__init__.py": "VALUE = 1\\n"}, []),
}
info = json.load(open(info_path))["info"]
json.dump({"info": info, "packages": packages}, open(f"{out}/pyodide-lock.json", "w"))
`;

describe('packages from a local package directory', () => {
  let dir: string;
  let sandbox: Sandbox;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbs-packages-'));
    const pyodideLock = fileURLToPath(new URL('../node_modules/pyodide/pyodide-lock.json', import.meta.url));
    execFileSync('python3', ['-c', BUILD_WHEELS, dir, pyodideLock]);
    sandbox = await createSandbox({ packageDir: dir, warmProcesses: 2, maxConcurrentRuns: 2 });
  });
  after(async () => {
    await sandbox.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs a granted package with its dependencies and nothing else', async () => {
    const result = await sandbox.run(
      'import nbsdemo\nprint(nbsdemo.answer())\ntry:\n    import nbsother\nexcept ImportError as error:\n    print(type(error).__name__)',
      { permissions: { import: { allow: ['nbsdemo'] } } },
    );
    assert.equal(result.status, 'ok', JSON.stringify(result));
    assert.equal(result.stdout, '42\nModuleNotFoundError\n');
  });

  it('installs nothing without a grant, and a deny beats the allow', async () => {
    const ungranted = await sandbox.run('import nbsdemo', {});
    assert.match(JSON.stringify(ungranted.cells[0]?.outputs), /ModuleNotFoundError/);
    const denied = await sandbox.run('import nbsdemo', { permissions: { import: { allow: ['nbsdemo'], deny: ['nbsdemo'] } } });
    assert.match(JSON.stringify(denied.cells[0]?.outputs), /PermissionError.*Requires import access to \\"nbsdemo\\"/);
  });

  it('refuses a wheel that does not match its recorded hash', async () => {
    const tampered = mkdtempSync(join(tmpdir(), 'nbs-tampered-'));
    try {
      for (const name of ['pyodide-lock.json', 'nbsother-1.0-py3-none-any.whl']) writeFileSync(join(tampered, name), readFileSync(join(dir, name)));
      appendFileSync(join(tampered, 'nbsother-1.0-py3-none-any.whl'), 'tampered');
      await using local = await createSandbox({ packageDir: tampered, warmProcesses: 1 });
      await assert.rejects(
        local.run('import nbsother', { permissions: { import: { allow: ['nbsother'] } } }),
        (error: unknown) => error instanceof NbsError && error.code === 'NBS_PACKAGE_INVALID',
      );
    } finally {
      rmSync(tampered, { recursive: true, force: true });
    }
  });

  it('rejects a package directory without a lock file', async () => {
    await assert.rejects(createSandbox({ packageDir: tmpdir() }), (error: unknown) => error instanceof NbsError && error.code === 'NBS_OPTION_INVALID');
  });
});
