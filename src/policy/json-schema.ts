/** The policy schema as JSON Schema, for editors; written to policies/schema.json by the build. */
import { toJsonSchema } from '@valibot/to-json-schema';
import { policySchema } from './schema.js';

export function policyJsonSchema(): Record<string, unknown> {
  return toJsonSchema(policySchema, { errorMode: 'throw' }) as Record<string, unknown>;
}

export function policyJsonSchemaText(): string {
  return `${JSON.stringify(policyJsonSchema(), null, 2)}\n`;
}
