/** The OpenAPI 3.1 description of the HTTP API, served at /openapi.json. */
import { toJsonSchema } from '@valibot/to-json-schema';
import { errorCodes } from '../errors.js';
import type { Policy } from '../policy/load.js';
import { jsonSubmissionSchema } from './submission.js';

const errorBody = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'requestId'],
      properties: { code: { type: 'string', enum: Object.keys(errorCodes) }, message: { type: 'string' }, requestId: { type: 'string' } },
    },
  },
};

const errorResponses = Object.fromEntries(
  [
    [400, 'Malformed request'],
    [401, 'API key required'],
    [403, 'Cross-site form post refused'],
    [413, 'Too large'],
    [415, 'Unsupported media type'],
    [422, 'Notebook or policy invalid'],
    [429, 'Rate limited (see Retry-After)'],
    [503, 'Sandbox queue full (see Retry-After)'],
  ].map(([status, description]) => [String(status), { description, content: { 'application/json': { schema: errorBody } } }]),
);

function submissionBody() {
  return {
    required: true,
    content: {
      'application/json': { schema: toJsonSchema(jsonSubmissionSchema, { errorMode: 'ignore' }) },
      'multipart/form-data': {
        schema: {
          type: 'object',
          required: ['file'],
          properties: { file: { type: 'string', format: 'binary' }, policy: { type: 'string' }, timeoutMs: { type: 'string' } },
        },
      },
    },
  };
}

export function openApiDocument(policies: ReadonlyMap<string, Policy>): Record<string, unknown> {
  const policyIds = [...policies.keys()];
  return {
    openapi: '3.1.0',
    info: { title: 'nbsandbox', version: '1', description: 'Check and run untrusted notebooks in an isolated Pyodide sandbox.' },
    paths: {
      '/v1/check': {
        post: {
          summary: 'Check a notebook or Python file against a policy (nothing is executed)',
          requestBody: submissionBody(),
          responses: { '200': { description: 'The check result: verdict, findings, cells, policy, durationMs' }, ...errorResponses },
        },
      },
      '/v1/run': {
        post: {
          summary: 'Check, then run the code cells in a fresh sandbox unless the verdict is deny',
          security: [{ bearer: [] }, {}],
          requestBody: submissionBody(),
          responses: { '200': { description: 'The run result (status ok, error, timeout, memory, killed or denied) with the check' }, ...errorResponses },
        },
      },
      '/v1/policies': { get: { summary: 'Policies requests may name', responses: { '200': { description: 'Policy ids, versions and hashes' } } } },
      '/v1/policies/{id}': {
        get: {
          summary: 'One resolved policy',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', enum: policyIds } }],
          responses: { '200': { description: 'The policy' }, '404': { description: 'Unknown policy', content: { 'application/json': { schema: errorBody } } } },
        },
      },
      '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'Alive' } } } },
      '/readyz': { get: { summary: 'Readiness, run queue, sandbox pool and verdict cache', responses: { '200': { description: 'Ready' }, '503': { description: 'Shutting down' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics (unless NBS_METRICS=false)', responses: { '200': { description: 'Prometheus text format' } } } },
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  };
}
