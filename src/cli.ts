#!/usr/bin/env node
/**
 * The nbsandbox command line. Exit codes: 0 the run ended `ok`; 1 it did not; 2 usage errors or
 * input that cannot be read. Errors are one line with a stable code, never a stack trace.
 */
import { parseArgs } from 'node:util';
import { NbsError, isNbsError } from './errors.js';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Checker, checkNotebook, type CheckResult } from './check/index.js';
import { runFixtures } from './check/fixtures.js';
import { printable, printableLine } from './cli/printable.js';
import { loadInputFile, type LoadedInput } from './notebook/index.js';
import { loadPolicy, SHIPPED_POLICY_DIR, shippedPolicyNames } from './policy/load.js';
import { deniedResult } from './sandbox/denied.js';
import { createSandbox } from './sandbox/sandbox.js';
import { PERMISSION_KINDS, PermissionWideningError, policyPermissions, withFlags, type PermissionFlags } from './sandbox/permissions/from-policy.js';
import type { AuditEvent, NotebookOutput, PermissionKind, RunResult } from './sandbox/types.js';

const USAGE = `Usage:
  nbsandbox check <file.py|file.ipynb> [--policy <name|path>] [--json]
  nbsandbox run <file.py|file.ipynb> [--policy <name|path>] [--timeout <ms>] [--memory <MiB>]
                [--allow-read=<paths>] [--deny-read=…] [--allow-write=…] [--deny-write=…]
                [--allow-net=<hosts>] [--deny-net=…] [--allow-env=<names>] [--deny-env=…]
                [--allow-import=<modules>] [--deny-import=…] [--package-dir <dir>] [--audit] [--json]
  nbsandbox test <policy|policy.json|fixtures-dir> [--policy <name|path>] [--json]
  nbsandbox serve
  nbsandbox snapshot [--force]
  nbsandbox demo
  nbsandbox --help | --version

check   Analyse the code statically against a policy; nothing is executed.
run     Check first, then (unless the verdict is deny) execute the code cells in a fresh,
        isolated Pyodide interpreter.
        --policy   shipped policy (strict, default, permissive) or a policy file (default: default)
        --timeout  wall-clock limit in milliseconds (default: the policy's, 30000)
        --memory   Python heap limit in MiB (default: the policy's, 512)
        --json     print exactly one JSON object: the result, or { "error": ... }
        --allow-<kind>=a,b / --deny-<kind>=a,b  Deno-style permissions (read, write, net, env,
                   import) on top of the policy's; deny wins. --allow-* needs an explicit --policy.
        --package-dir  a Pyodide package directory (pyodide-lock.json and wheels) whose packages
                   --allow-import may grant
        --audit    print every grant used and every denial to stderr as JSON lines
test    Run the annotated rule fixtures (# ruleid: / # ok: …) of a policy: policies/fixtures for
        a shipped policy, fixtures/ beside a policy file, or a fixtures directory.
serve   Serve the HTTP API and web page (configured by environment variables: PORT, HOST,
        NBS_POLICY, REDIS_URL, NBS_API_KEYS, … — see the README).
snapshot  Build the start-up snapshot sandboxes restore (npm run build does this), unless the
        one there matches this installation; --force rebuilds it.
demo    Run a small built-in notebook that prints, computes and tries to escape.

Exit status of check: 0 allow or warn; 1 deny; 2 usage or input error.
Exit status of test: 0 every fixture passed; 1 a fixture failed; 2 usage or input error.
Exit status of run: 0 run ok; 1 run not ok (error, timeout, memory, killed, denied); 2 usage or input error.`;

const DEMO = {
  cells: [
    { source: 'import sys\nprint("Python", sys.version.split()[0], "in nbsandbox")' },
    { source: 'squares = [n * n for n in range(10)]\nsum(squares)' },
    { source: 'try:\n    open("/etc/passwd")\nexcept OSError as error:\n    print("host files are out of reach:", type(error).__name__)' },
    { source: 'import socket\ntry:\n    socket.create_connection(("127.0.0.1", 22), timeout=1)\nexcept OSError as error:\n    print("the network is out of reach:", type(error).__name__)' },
  ],
} as const;

class UsageError extends NbsError {
  constructor(detail: string) {
    super('NBS_USAGE', detail);
  }
}

function integerOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} takes a whole number`);
  return Number(value);
}

function renderOutput(output: NotebookOutput, write: { out(text: string): void; err(text: string): void }): void {
  switch (output.output_type) {
    case 'stream':
      (output.name === 'stdout' ? write.out : write.err)(printable(output.text));
      return;
    case 'execute_result':
      write.out(`Out[${output.execution_count}]: ${printable(output.data['text/plain'])}\n`);
      return;
    case 'error':
      write.err(printable(output.traceback.join('')));
      return;
  }
}

function printHuman(result: RunResult): void {
  const write = { out: (text: string) => process.stdout.write(text), err: (text: string) => process.stderr.write(text) };
  for (const cell of result.cells) for (const output of cell.outputs) renderOutput(output, write);
  if (result.status !== 'ok') {
    const reason = result.error ? ` (${result.error.code}: ${printableLine(result.error.message)})` : '';
    process.stderr.write(`nbsandbox: run ended with status ${result.status}${reason}\n`);
  }
  if (result.truncated) process.stderr.write('nbsandbox: output was truncated at its cap\n');
}

/** Linter-style lines; notebook findings name their cell, .py and marimo ones carry file lines. */
function printFindings(file: string, kind: LoadedInput['kind'], result: CheckResult, stream: NodeJS.WriteStream): void {
  for (const finding of result.findings) {
    const where = kind === 'ipynb' ? `${printableLine(file)} cell[${finding.cell}]` : printableLine(file);
    stream.write(`${where}:${finding.line}:${finding.column} ${finding.severity} ${printableLine(finding.ruleId)} ${printableLine(finding.message)}\n`);
  }
}

function verdictLine(result: CheckResult): string {
  return `verdict ${result.verdict} (${result.findings.length} finding${result.findings.length === 1 ? '' : 's'}, policy ${printableLine(result.policy.id)})\n`;
}

async function checkCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { policy: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new UsageError('check takes exactly one file');
  const file = positionals[0] ?? '';
  const policy = await loadPolicy(values.policy ?? 'default');
  const input = await loadInputFile(file, policy.limits);
  const result = await checkNotebook(input.check, { policy });
  if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    printFindings(file, input.kind, result, process.stdout);
    process.stdout.write(verdictLine(result));
  }
  return result.verdict === 'deny' ? 1 : 0;
}

async function testCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { policy: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new UsageError('test takes a policy or a fixtures directory');
  const target = positionals[0] ?? '';
  const isDirectory = existsSync(target) && statSync(target).isDirectory();
  const policy = await loadPolicy(isDirectory ? (values.policy ?? 'default') : target);
  const dir = isDirectory ? target : shippedPolicyNames().includes(target) ? join(SHIPPED_POLICY_DIR, 'fixtures') : join(dirname(target), 'fixtures');
  if (!existsSync(dir)) throw new NbsError('NBS_INPUT_NOT_FOUND', 'no fixtures directory');
  const checker = new Checker({ workers: 1 });
  try {
    const report = await runFixtures(dir, policy, checker);
    if (values.json) process.stdout.write(JSON.stringify(report) + '\n');
    else {
      for (const rule of report.rules) {
        process.stdout.write(`${rule.failures === 0 ? 'ok  ' : 'FAIL'} ${printableLine(rule.ruleId).padEnd(16)} ${rule.positive} positive, ${rule.negative} negative\n`);
      }
      for (const failure of report.failures) {
        const where = `${printableLine(failure.file)}${failure.cell === null ? '' : ` cell[${failure.cell}]`}${failure.line === null ? '' : `:${failure.line}`}`;
        process.stdout.write(`${where} ${printableLine(failure.ruleId)}: ${printableLine(failure.problem)}\n`);
      }
      process.stdout.write(`fixtures: ${report.files} files, ${report.rules.length} rules, ${report.failures.length} failures (policy ${printableLine(policy.id)})\n`);
    }
    return report.failures.length === 0 && report.files > 0 ? 0 : 1;
  } finally {
    await checker.close();
  }
}

function permissionOptions(): Record<string, { type: 'string'; multiple: true }> {
  const options: Record<string, { type: 'string'; multiple: true }> = {};
  for (const kind of PERMISSION_KINDS) {
    options[`allow-${kind}`] = { type: 'string', multiple: true };
    options[`deny-${kind}`] = { type: 'string', multiple: true };
  }
  return options;
}

/** `--allow-net=a,b --allow-net=c` → { allow: { net: [a, b, c] } }. */
function permissionFlags(values: Record<string, unknown>): PermissionFlags {
  const pick = (prefix: 'allow' | 'deny') => {
    const lists: Partial<Record<PermissionKind, string[]>> = {};
    for (const kind of PERMISSION_KINDS) {
      const given = values[`${prefix}-${kind}`];
      if (!Array.isArray(given)) continue;
      const entries = given.flatMap((value) => String(value).split(',')).map((entry) => entry.trim());
      if (entries.some((entry) => entry === '')) throw new UsageError(`--${prefix}-${kind} takes a comma-separated list`);
      lists[kind] = entries;
    }
    return lists;
  };
  return { allow: pick('allow'), deny: pick('deny') };
}

async function runCommand(args: string[], demo: boolean): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      policy: { type: 'string' },
      timeout: { type: 'string' },
      memory: { type: 'string' },
      json: { type: 'boolean', default: false },
      audit: { type: 'boolean', default: false },
      'package-dir': { type: 'string' },
      ...permissionOptions(),
    },
  });
  if (demo ? positionals.length !== 0 : positionals.length !== 1) throw new UsageError(demo ? 'demo takes no file' : 'run takes exactly one file');
  const timeoutMs = integerOption('timeout', values.timeout);
  const memoryMb = integerOption('memory', values.memory);
  const policy = await loadPolicy(values.policy ?? (demo ? 'permissive' : 'default'));
  let permissions;
  try {
    permissions = withFlags(policyPermissions(policy), permissionFlags(values), values.policy !== undefined);
  } catch (error) {
    if (error instanceof PermissionWideningError) throw new UsageError(error.message);
    throw error;
  }
  const onAudit = values.audit ? (event: AuditEvent) => process.stderr.write(JSON.stringify(event) + '\n') : undefined;
  const file = positionals[0] ?? 'demo';
  const input: LoadedInput = demo
    ? { kind: 'ipynb', cells: DEMO.cells, check: { kind: 'cells', cells: DEMO.cells.map((cell, index) => ({ index, source: cell.source })) } }
    : await loadInputFile(file, policy.limits);

  // The sandbox process starts while the check runs; a deny closes it unused.
  const packageDir = values['package-dir'];
  const sandbox = await createSandbox({ warmProcesses: 0, maxConcurrentRuns: 1, ...(packageDir !== undefined ? { packageDir } : {}) });
  const stop = () => void sandbox.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const check = await checkNotebook(input.check, { policy });
    const result: RunResult =
      check.verdict === 'deny'
        ? deniedResult(check)
        : {
            ...(await sandbox.run(
              { cells: input.cells },
              {
                timeoutMs: timeoutMs ?? policy.limits.timeoutMs,
                memoryMb: memoryMb ?? policy.limits.memoryMb,
                permissions,
                ...(onAudit ? { onAudit } : {}),
              },
            )),
            check,
          };
    if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
    else {
      printFindings(file, input.kind, check, process.stderr);
      if (check.findings.length > 0 || check.verdict === 'deny') process.stderr.write(verdictLine(check));
      printHuman(result);
    }
    return result.status === 'ok' ? 0 : 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await sandbox.close();
  }
}

async function snapshotCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { force: { type: 'boolean' } }, strict: true, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError('snapshot takes no file');
  const { locateRuntime } = await import('./sandbox/locate.js');
  const { describeSnapshot, ensureSnapshot } = await import('./sandbox/snapshot.js');
  process.stdout.write(`${describeSnapshot(await ensureSnapshot(locateRuntime(), { force: values.force === true }))}\n`);
  return 0;
}

async function serveCommand(args: string[]): Promise<number> {
  if (args.length > 0) throw new UsageError('serve takes no arguments; configure it with environment variables');
  const { readConfig } = await import('./server/config.js');
  const { startServer } = await import('./server/serve.js');
  const server = await startServer(readConfig());
  // A promise some request forgot to handle is that request's bug: logged, never fatal.
  process.on('unhandledRejection', (reason) => server.log.error({ event: 'server-error', error: reason instanceof Error ? reason.name : 'unknown', unhandled: true }));
  process.stderr.write(`nbsandbox: serving on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void server.close().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

function exitCodeFor(error: NbsError): number {
  return error.status >= 500 ? 1 : 2;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const json = rest.includes('--json');
  try {
    switch (command) {
      case 'check':
        return await checkCommand(rest);
      case 'test':
        return await testCommand(rest);
      case 'run':
        return await runCommand(rest, false);
      case 'demo':
        return await runCommand(rest, true);
      case 'serve':
        return await serveCommand(rest);
      case 'snapshot':
        return await snapshotCommand(rest);
      case '--version':
      case '-v': {
        const { createRequire } = await import('node:module');
        process.stdout.write(`${(createRequire(import.meta.url)('../package.json') as { version: string }).version}\n`);
        return 0;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command.slice(0, 40)}"`);
    }
  } catch (caught) {
    const error = isNbsError(caught)
      ? caught
      : (caught as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
        ? new UsageError(String((caught as Error).message).split('.')[0] ?? 'bad arguments')
        : new NbsError('NBS_INTERNAL', undefined, { cause: caught });
    if (json) process.stdout.write(JSON.stringify({ error: error.toJSON() }) + '\n');
    else process.stderr.write(`nbsandbox: ${error.code}: ${printableLine(error.message)}\n`);
    if (error.code === 'NBS_USAGE' && !json) process.stderr.write(`Run "nbsandbox --help" for usage.\n`);
    return exitCodeFor(error);
  }
}

process.exitCode = await main(process.argv.slice(2));
