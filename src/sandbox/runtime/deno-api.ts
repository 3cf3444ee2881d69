/**
 * The few Deno APIs the sandbox runtime uses. The runtime runs under Deno, while the rest of
 * the project is typed for Node, so it reaches Deno through this narrow typed view.
 */
export interface DenoApi {
  readonly args: readonly string[];
  readonly stdin: { readonly readable: ReadableStream<Uint8Array> };
  readonly stdout: { writeSync(bytes: Uint8Array): number };
  readTextFileSync(path: string | URL): string;
  openSync(path: string | URL): DenoFile;
  writeFileSync(path: string | URL, data: Uint8Array): void;
  exit(code: number): never;
}

export interface DenoFile {
  statSync(): { size: number };
  readSync(buffer: Uint8Array): number | null;
  close(): void;
}

export const deno = (globalThis as unknown as { Deno: DenoApi }).Deno;

/** What a module-type Worker sees as its global scope. */
export interface WorkerScope {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
}

export interface WorkerHandle {
  onmessage: ((event: MessageEvent) => void) | null;
  onerror: ((event: { message: string; preventDefault(): void }) => void) | null;
  postMessage(message: unknown): void;
}

export type WorkerConstructor = new (url: URL, options: { type: 'module' }) => WorkerHandle;
