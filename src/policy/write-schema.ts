/** Build step: writes policies/schema.json from the valibot schema. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { policyJsonSchemaText } from './json-schema.js';
import { SHIPPED_POLICY_DIR } from './load.js';

writeFileSync(join(SHIPPED_POLICY_DIR, 'schema.json'), policyJsonSchemaText());
