/** The `env` and `import` permissions: which host variables a run sees, which modules it may import. */
import { NbsError } from '../../errors.js';
import type { PermissionList } from '../types.js';

const ENV_ENTRY = /^[A-Za-z_][A-Za-z0-9_]*\*?$/;
const MODULE_ENTRY = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const MAX_ENTRIES = 1024;

function entries(list: readonly string[] | undefined, pattern: RegExp, kind: string): string[] {
  const values = list ?? [];
  if (values.length > MAX_ENTRIES) throw new NbsError('NBS_OPTION_INVALID', `${kind} lists at most ${MAX_ENTRIES} entries`);
  for (const value of values) {
    if (typeof value !== 'string' || value.length > 256 || !pattern.test(value)) {
      throw new NbsError('NBS_OPTION_INVALID', `${kind} entries must be ${kind === 'env' ? 'variable names, optionally ending in *' : 'dotted module names'}`);
    }
  }
  return [...values];
}

function matchesName(name: string, pattern: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

/** The host variables a run may see: named by an allow entry and by no deny entry. */
export function grantedEnvironment(list: PermissionList | undefined, environment: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const allow = entries(list?.allow, ENV_ENTRY, 'env');
  const deny = entries(list?.deny, ENV_ENTRY, 'env');
  const granted: Record<string, string> = {};
  for (const [name, value] of Object.entries(environment)) {
    if (value === undefined || !ENV_ENTRY.test(name)) continue;
    if (allow.some((pattern) => matchesName(name, pattern)) && !deny.some((pattern) => matchesName(name, pattern))) {
      granted[name] = value;
    }
  }
  return granted;
}

/** Import lists for the interpreter: beyond the standard library only what is allowed; deny wins. */
export function importLists(list: PermissionList | undefined): { allow: string[]; deny: string[] } {
  return { allow: entries(list?.allow, MODULE_ENTRY, 'import'), deny: entries(list?.deny, MODULE_ENTRY, 'import') };
}
