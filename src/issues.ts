/**
 * Turns valibot issues into a short message that says where the input is wrong and what was
 * expected, without echoing the input: values never appear, keys only when `isSafeKey` allows.
 */
import type * as v from 'valibot';

export function describeIssues(
  issues: readonly v.BaseIssue<unknown>[],
  subject: string,
  isSafeKey: (key: string) => boolean,
): string {
  return issues
    .slice(0, 5)
    .map((issue) => {
      const path = (issue.path ?? [])
        .map((item) => {
          const key = String(item.key);
          return typeof item.key === 'number' || isSafeKey(key) ? key : '<key>';
        })
        .join('.');
      const problem =
        issue.received === 'undefined'
          ? 'required'
          : issue.expected
            ? `expected ${issue.expected.slice(0, 120)}`
            : issue.message.startsWith('Invalid') ? 'invalid value' : issue.message.slice(0, 120);
      return `${path || subject}: ${problem}`;
    })
    .join('; ');
}
