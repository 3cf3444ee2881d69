/**
 * A bound on the shape of a message before it is validated. Schema validation walks every item
 * of an array and reports every missing key of every item, so a single line of a few megabytes
 * (two million empty objects) can cost gigabytes of issue objects; counting values first, with
 * an early stop, keeps the cost of any line proportional to the small messages a run sends.
 */

/** Values (array items and object entries, nested included) in the largest message a run sends: 1000 audit events. */
export const MAX_MESSAGE_VALUES = 8192;
/** Nesting of the deepest message (a fetch's headers: message → list → pair → string). */
export const MAX_MESSAGE_DEPTH = 6;

/** True when `value` has at most `maxValues` nested values and `maxDepth` levels; stops at the first excess. */
export function withinShape(value: unknown, maxValues = MAX_MESSAGE_VALUES, maxDepth = MAX_MESSAGE_DEPTH): boolean {
  let values = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop() as [unknown, number];
    if (item === null || typeof item !== 'object') continue;
    if (depth >= maxDepth) return false;
    if (Array.isArray(item)) {
      values += item.length;
      if (values > maxValues) return false;
      for (const child of item) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
      continue;
    }
    for (const key in item) {
      values += 1;
      if (values > maxValues) return false;
      const child = (item as Record<string, unknown>)[key];
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return true;
}
