/**
 * The outer layer on its own: arbitrary JavaScript inside a sandbox process (through a test-only
 * probe module) finds no host files, env, processes or network — also without a network
 * namespace, as on a machine without root.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { networkNamespacePrefix } from '../dist/sandbox/isolation.js';
import { locateRuntime } from '../dist/sandbox/locate.js';
import { SandboxProcess } from '../dist/sandbox/process.js';
import { makeCanaries, type Canaries } from './helpers.js';

const probeModule = fileURLToPath(new URL('../test/fixtures/js-probe.mjs', import.meta.url));

async function probeOnce(networkNamespace: readonly string[] | null, params: Record<string, string>): Promise<Record<string, string>> {
  const sandboxProcess = new SandboxProcess({ files: locateRuntime(), networkNamespace, maxMessageBytes: 1 << 20, probeModule });
  try {
    await sandboxProcess.ready;
    return await new Promise((resolve, reject) => {
      sandboxProcess.onMessage((message) => {
        if (message.t === 'probe') resolve(message.results);
        if (message.t === 'fatal') reject(new Error(message.message));
      });
      sandboxProcess.send({ t: 'probe', params });
    });
  } finally {
    await sandboxProcess.kill();
  }
}

describe('arbitrary JavaScript inside the sandbox process', { concurrency: 2 }, () => {
  let canaries: Canaries;
  let server: Server;
  let connections = 0;
  let params: Record<string, string>;

  before(async () => {
    canaries = makeCanaries();
    server = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    params = {
      file: canaries.file,
      dir: canaries.dir,
      envName: canaries.envName,
      marker: join(canaries.dir, 'spawned'),
      port: String(typeof address === 'object' && address ? address.port : 0),
    };
  });

  after(() => server.close());

  const layers: [string, () => readonly string[] | null][] = [
    ['without a network namespace', () => null],
    ['in a network namespace where the OS allows one', () => networkNamespacePrefix()],
  ];
  for (const [label, namespace] of layers) {
    it(`is denied fs, env, processes and network ${label}`, async () => {
      const before = connections;
      const results = await probeOnce(namespace(), params);
      assert.ok(Object.keys(results).length >= 22, JSON.stringify(results));
      const allowed = Object.entries(results).filter(([, value]) => !value.startsWith('denied'));
      assert.deepEqual(allowed, [], 'these were allowed');
      assert.equal(connections, before, 'the host server saw a connection');
      assert.equal(existsSync(params['marker'] ?? ''), false, 'a process was spawned');
      assert.equal(existsSync(join(canaries.dir, 'written')), false, 'a host file was written');
      assert.ok(!JSON.stringify(results).includes(canaries.fileSecret));
      assert.ok(!JSON.stringify(results).includes(canaries.envSecret));
    });
  }

  for (const [label, send, times] of [
    ['a line that is not JSON', 'not json\n', '1'],
    ['a message of an unknown kind', '{"t":"exec","code":"x"}\n', '1'],
    ['more bytes than its limits allow', 'x', String(2 << 20)],
  ] as const) {
    it(`is killed for sending ${label}`, async () => {
      const sandboxProcess = new SandboxProcess({ files: locateRuntime(), networkNamespace: null, maxMessageBytes: 1 << 20, probeModule });
      await sandboxProcess.ready;
      sandboxProcess.send({ t: 'probe', params: { send, times } });
      await sandboxProcess.exited;
      assert.equal(sandboxProcess.failureReason?.code, 'NBS_SANDBOX_PROTOCOL');
    });
  }

  it('finds nothing a previous process stored in web storage', async () => {
    await probeOnce(null, { ...params, storage: 'write' });
    const second = await probeOnce(null, params);
    assert.match(second['storage from an earlier run'] ?? '', /^denied/);
  });
});
