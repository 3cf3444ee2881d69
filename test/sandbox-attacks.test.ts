/**
 * Every escape route of ../shared/notes/sandbox-facts.md, tried against the real sandbox with no
 * static check in front. Each attack tries to read a host canary file, read a host env canary,
 * start a host process, or use the host network; the assertions are on the host side effects.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunResult, Sandbox } from '../dist/index.js';
import { networkNamespacePrefix } from '../dist/sandbox/isolation.js';
import { everything, makeCanaries, sharedSandbox, type Canaries } from './helpers.js';

/** Python that finds the Pyodide JS API although the hardening hid it (the JsFinder route). */
const FIND_PYODIDE_JS = `
import importlib.abc
api = None
for finder_class in importlib.abc.MetaPathFinder.__subclasses__():
    for member in vars(finder_class).values():
        module_globals = getattr(member, '__globals__', None)
        if module_globals and 'jsfinder' in module_globals:
            api = module_globals['jsfinder'].jsproxies['pyodide_js']
assert api is not None, 'route to pyodide_js not found'
`;

/** Runs each attempt and prints what it got, so a success would show in the output. */
function attempts(setup: string, tries: Record<string, string>): string {
  const body = Object.entries(tries)
    .map(
      ([name, code]) => `
try:
${code
  .trim()
  .split('\n')
  .map((line) => `    ${line}`)
  .join('\n')}
    print(${JSON.stringify(name)}, 'got:', repr(_result)[:400])
except BaseException as error:
    print(${JSON.stringify(name)}, 'failed:', type(error).__name__, str(error)[:200])
`,
    )
    .join('');
  return `${setup}\n_result = None\n${body}`;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const client = connect({ host: '127.0.0.1', port });
    client.once('connect', () => {
      client.destroy();
      resolve(true);
    });
    client.once('error', () => resolve(false));
  });
}

function failedLines(result: RunResult): string[] {
  return result.stdout.split('\n').filter((line) => line.includes(' failed:'));
}

describe('escape routes with static checks off', { concurrency: 2 }, () => {
  let sandbox: Sandbox;
  let noNamespaceSandbox: Sandbox;
  let canaries: Canaries;
  let server: Server;
  let serverPort = 0;
  const connections: Socket[] = [];

  before(async () => {
    canaries = makeCanaries();
    sandbox = await sharedSandbox();
    noNamespaceSandbox = await sharedSandbox({ networkNamespace: false, warmProcesses: 1 });
    server = createServer((socket) => {
      connections.push(socket);
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    serverPort = typeof address === 'object' && address ? address.port : 0;
  });

  after(async () => {
    await Promise.all([sandbox.close(), noNamespaceSandbox.close()]);
    server.close();
  });

  function assertNoLeak(result: RunResult): void {
    const text = everything(result);
    assert.ok(!text.includes(canaries.fileSecret), 'host file content leaked');
    assert.ok(!text.includes(canaries.envSecret), 'host env leaked');
  }

  it('the JS bridge modules cannot be imported', async () => {
    const result = await sandbox.run(
      attempts('import importlib', {
        'import js': 'import js\n_result = js.process.env',
        'import pyodide_js': 'import pyodide_js\n_result = pyodide_js.FS',
        '_pyodide_core': "import _pyodide_core\n_result = _pyodide_core",
        'builtin importer': "import importlib._bootstrap as b\n_result = b._builtin_from_name('_pyodide_core')",
        'BuiltinImporter': "from importlib.machinery import BuiltinImporter\n_result = BuiltinImporter.find_spec('_pyodide_core')",
        'pyodide.ffi': 'from pyodide.ffi import to_js\n_result = to_js',
        'pyodide.code.run_js': "from pyodide.code import run_js\n_result = run_js('process.env')",
        'importlib js': "_result = importlib.import_module('js').process",
        '__import__': "_result = __import__('pyodide_js')",
        'ctypes': "import ctypes\n_result = ctypes.CDLL(None).emscripten_run_script_string(b'JSON.stringify(process.env)')",
        '_ctypes': 'import _ctypes\n_result = _ctypes',
      }),
    );
    assertNoLeak(result);
    assert.equal(failedLines(result).length, 11, result.stdout);
  });

  it('a JS object found by a subclass walk gives no code generation', async () => {
    const result = await sandbox.run(
      attempts(FIND_PYODIDE_JS, {
        'Function constructor': "_result = api.constructor.constructor('return globalThis.Deno.env.toObject()')()",
        'Function via FS': "_result = api.FS.constructor.constructor('return 1')()",
        'getter chain': "_result = api.__proto__.constructor.constructor('return 1')()",
      }),
    );
    assertNoLeak(result);
    assert.equal(failedLines(result).length, 3, result.stdout);
    assert.match(result.stdout, /EvalError|Code generation/);
  });

  it('host files stay out of reach, also through NODEFS from the JS API', async () => {
    const result = await sandbox.run(
      attempts(`${FIND_PYODIDE_JS}\nimport os, io\nclass Options: root = ${JSON.stringify(canaries.dir)}`, {
        'open': `_result = open(${JSON.stringify(canaries.file)}).read()`,
        'io.open': `_result = io.open(${JSON.stringify(canaries.file)}).read()`,
        'etc passwd': "_result = open('/etc/passwd').read()",
        'listdir host': `_result = os.listdir(${JSON.stringify(canaries.dir)})`,
        'NODEFS mount': `api.FS.mkdir('/host')\napi.FS.mount(api._module.NODEFS, Options(), '/host')\n_result = open('/host/secret.txt').read()`,
        'mountNodeFS': `_result = api.mountNodeFS('/host2', ${JSON.stringify(canaries.dir)})`,
        'FS.readFile': `_result = bytes(api.FS.readFile(${JSON.stringify(canaries.file)}).to_py())`,
      }),
    );
    assertNoLeak(result);
    assert.equal(failedLines(result).length, 7, result.stdout);
    assert.match(result.stdout, /NODEFS mount failed: JsException NotCapable/);
  });

  it('the host environment is not visible', async () => {
    const result = await sandbox.run(
      attempts(`${FIND_PYODIDE_JS}\nimport os, sys`, {
        'os.environ': `_result = os.environ[${JSON.stringify(canaries.envName)}]`,
        'getenv': `_result = os.getenv(${JSON.stringify(canaries.envName)}) or 1/0`,
        'sys.executable': "_result = sys.executable or 1/0",
        'underscore': "_result = os.environ['_']",
        'Emscripten ENV': '_result = api._module.ENV.to_py()',
      }),
    );
    assertNoLeak(result);
    assert.ok(!result.stdout.includes('/work/') && !result.stdout.includes('node_modules'), result.stdout);
    const environment = await sandbox.run('import os\nprint(sorted(os.environ))');
    assert.equal(environment.stdout.trim(), "['HOME', 'LANG', 'PATH', 'PWD']");
  });

  it('no host process can be started', async () => {
    const marker = join(canaries.dir, 'spawned');
    const result = await sandbox.run(
      attempts(`${FIND_PYODIDE_JS}\nimport os, posix, subprocess, pty`, {
        'os.system': `_result = os.system('touch ${marker}')`,
        'posix.system': `_result = posix.system('touch ${marker}')`,
        'os.popen': `_result = os.popen('touch ${marker}').read()`,
        'subprocess': `_result = subprocess.run(['/usr/bin/touch', '${marker}'])`,
        'os.execv': `_result = os.execv('/usr/bin/touch', ['touch', '${marker}'])`,
        'os.posix_spawn': `_result = os.posix_spawn('/usr/bin/touch', ['touch', '${marker}'], {})`,
        'os.fork': '_result = os.fork()',
        'pty.spawn': `_result = pty.spawn(['/usr/bin/touch', '${marker}'])`,
      }),
    );
    assertNoLeak(result);
    assert.equal(failedLines(result).length, 8, result.stdout);
    // Emscripten's system() reaches child_process in the runtime: Deno refuses it, which kills
    // this sandbox process; the host must see a clean `killed` result.
    const direct = await sandbox.run(`${FIND_PYODIDE_JS}\napi._module.ccall('system', 'number', ['string'], ['touch ${marker}'])`);
    assertNoLeak(direct);
    assert.ok(['killed', 'error'].includes(direct.status), direct.status);
    assert.equal(existsSync(marker), false, 'a host process ran');
  });

  for (const [label, pick] of [
    ['in a network namespace', () => sandbox],
    ['without a network namespace (Deno permissions alone)', () => noNamespaceSandbox],
  ] as const) {
    it(`sockets reach nothing on the host, ${label}`, async () => {
      const before = connections.length;
      const result = await pick().run(
        attempts(`${FIND_PYODIDE_JS}\nimport socket, urllib.request, http.client`, {
          'socket.connect': `_result = socket.create_connection(('127.0.0.1', ${serverPort}), timeout=2)`,
          'urllib': `_result = urllib.request.urlopen('http://127.0.0.1:${serverPort}/', timeout=2).read()`,
          'http.client': `c = http.client.HTTPConnection('127.0.0.1', ${serverPort}, timeout=2)\nc.request('GET', '/')\n_result = c.getresponse()`,
          'pyfetch': `from pyodide.http import pyfetch\n_result = pyfetch`,
          'open_url': `from pyodide.http import open_url\n_result = open_url('http://127.0.0.1:${serverPort}/')`,
          'micropip': `import micropip\n_result = micropip`,
        }),
      );
      assertNoLeak(result);
      assert.equal(result.isolation.networkNamespace, pick() === sandbox && networkNamespacePrefix() !== null);
      assert.equal(result.isolation.permissionModel, true);
      assert.equal(connections.length, before, 'the sandbox connected to a host port');
      assert.match(result.stdout, /socket\.connect failed: PermissionError/);
    });

    it(`a listening socket opens no host port, ${label}`, async () => {
      const port = 20000 + Math.floor(Math.random() * 20000);
      const running = pick().run(
        `import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', ${port}))\ntry:\n    s.listen()\n    print('listening')\nexcept OSError as e:\n    print('listen failed:', type(e).__name__)\ntime.sleep(4)`,
        { timeoutMs: 20_000 },
      );
      let finished = false;
      let reached = false;
      void running.finally(() => (finished = true));
      while (!finished) {
        reached ||= await canConnect(port);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      const result = await running;
      assert.equal(reached, false, 'a host port was opened by the sandbox');
      assert.match(result.stdout, /listen failed: PermissionError/);
    });
  }
});
