#!/usr/bin/env node
/**
 * The nbsandbox command line. Exit codes: 0 the run ended `ok`; 1 it did not; 2 usage errors or
 * input that cannot be read. Errors are one line with a stable code, never a stack trace.
 */
import { parseArgs } from 'node:util';
import { NbsError, isNbsError } from './errors.js';
import { loadInputFile } from './notebook/index.js';
import { createSandbox } from './sandbox/sandbox.js';
import type { NotebookOutput, RunInput, RunResult } from './sandbox/types.js';

const USAGE = `Usage:
  nbsandbox run <file.py|file.ipynb> [--policy <name>] [--timeout <ms>] [--memory <MiB>] [--json]
  nbsandbox demo
  nbsandbox --help | --version

run     Execute the code cells in a fresh, isolated Pyodide interpreter.
        --policy   policy to apply (only "permissive" until policies land)
        --timeout  wall-clock limit in milliseconds (default 30000)
        --memory   Python heap limit in MiB (default 512)
        --json     print exactly one JSON object: the run result, or { "error": ... }
demo    Run a small built-in notebook that prints, computes and tries to escape.

Exit status: 0 run ok; 1 run not ok (error, timeout, memory, killed, denied); 2 usage or input error.`;

const DEMO: RunInput = {
  cells: [
    { source: 'import sys\nprint("Python", sys.version.split()[0], "in nbsandbox")' },
    { source: 'squares = [n * n for n in range(10)]\nsum(squares)' },
    { source: 'try:\n    open("/etc/passwd")\nexcept OSError as error:\n    print("host files are out of reach:", type(error).__name__)' },
    { source: 'import socket\ntry:\n    socket.create_connection(("127.0.0.1", 22), timeout=1)\nexcept OSError as error:\n    print("the network is out of reach:", type(error).__name__)' },
  ],
};

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
      (output.name === 'stdout' ? write.out : write.err)(output.text);
      return;
    case 'execute_result':
      write.out(`Out[${output.execution_count}]: ${output.data['text/plain']}\n`);
      return;
    case 'error':
      write.err(output.traceback.join(''));
      return;
  }
}

function printHuman(result: RunResult): void {
  const write = { out: (text: string) => process.stdout.write(text), err: (text: string) => process.stderr.write(text) };
  for (const cell of result.cells) for (const output of cell.outputs) renderOutput(output, write);
  if (result.status !== 'ok') {
    const reason = result.error ? ` (${result.error.code}: ${result.error.message})` : '';
    process.stderr.write(`nbsandbox: run ended with status ${result.status}${reason}\n`);
  }
  if (result.truncated) process.stderr.write('nbsandbox: output was truncated at its cap\n');
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
    },
  });
  if (demo ? positionals.length !== 0 : positionals.length !== 1) throw new UsageError(demo ? 'demo takes no file' : 'run takes exactly one file');
  if (values.policy !== undefined && values.policy !== 'permissive') throw new NbsError('NBS_POLICY_UNKNOWN', 'only "permissive" is available');
  const timeoutMs = integerOption('timeout', values.timeout);
  const memoryMb = integerOption('memory', values.memory);
  const input: RunInput = demo ? DEMO : { cells: (await loadInputFile(positionals[0] ?? '')).cells };

  const sandbox = await createSandbox({ warmProcesses: 0, maxConcurrentRuns: 1 });
  const stop = () => void sandbox.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const result = await sandbox.run(input, {
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(memoryMb !== undefined ? { memoryMb } : {}),
    });
    if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
    else printHuman(result);
    return result.status === 'ok' ? 0 : 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await sandbox.close();
  }
}

function exitCodeFor(error: NbsError): number {
  return error.status >= 500 ? 1 : 2;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const json = rest.includes('--json');
  try {
    switch (command) {
      case 'run':
        return await runCommand(rest, false);
      case 'demo':
        return await runCommand(rest, true);
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
    else process.stderr.write(`nbsandbox: ${error.code}: ${error.message}\n`);
    if (error.code === 'NBS_USAGE' && !json) process.stderr.write(`Run "nbsandbox --help" for usage.\n`);
    return exitCodeFor(error);
  }
}

process.exitCode = await main(process.argv.slice(2));
