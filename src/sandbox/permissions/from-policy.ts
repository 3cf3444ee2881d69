/**
 * A run's permissions from its policy and from command-line style flags.
 *
 * The rule: deny flags always add denials (anyone may narrow); allow flags add grants only when
 * the operator chose the policy explicitly (`--policy`), so a flag cannot widen a policy that
 * somebody else put in place.
 */
import type { Policy } from '../../policy/load.js';
import type { PermissionKind, PermissionList, RunPermissions } from '../types.js';

export const PERMISSION_KINDS: readonly PermissionKind[] = ['read', 'write', 'net', 'env', 'import'];

export interface PermissionFlags {
  readonly allow: Partial<Record<PermissionKind, readonly string[]>>;
  readonly deny: Partial<Record<PermissionKind, readonly string[]>>;
}

/** The policy's execution permissions; its static `imports.deny` list also binds at run time. */
export function policyPermissions(policy: Policy): RunPermissions {
  const granted = policy.execution.permissions;
  const kind = (name: PermissionKind) => ({ allow: [...granted[name].allow], deny: [...granted[name].deny] });
  const importList = kind('import');
  return {
    read: kind('read'),
    write: kind('write'),
    net: kind('net'),
    env: kind('env'),
    import: { allow: importList.allow, deny: [...new Set([...importList.deny, ...policy.imports.deny])] },
  };
}

export class PermissionWideningError extends Error {}

/** Applies flags to the policy's permissions; throws PermissionWideningError for an allow flag without an explicit policy. */
export function withFlags(base: RunPermissions, flags: PermissionFlags, policyChosenExplicitly: boolean): RunPermissions {
  const result: Partial<Record<PermissionKind, PermissionList>> = {};
  for (const kind of PERMISSION_KINDS) {
    const allowFlag = flags.allow[kind] ?? [];
    if (allowFlag.length > 0 && !policyChosenExplicitly) {
      throw new PermissionWideningError(`--allow-${kind} needs an explicit --policy: flags may only narrow the default policy`);
    }
    result[kind] = {
      allow: [...(base[kind]?.allow ?? []), ...allowFlag],
      deny: [...(base[kind]?.deny ?? []), ...(flags.deny[kind] ?? [])],
    };
  }
  return result;
}
