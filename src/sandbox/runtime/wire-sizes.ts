/**
 * Sizes both ends of the sandbox channel depend on: the sandbox process batches its messages by
 * them, and the host derives the longest line it accepts from them. Kept here, inside the
 * runtime, because the sandbox process may import nothing from outside its own directory.
 */

/** Shared ring between the interpreter and the main thread of a sandbox process. */
export const RING_BYTES = 1 << 20;
/** Largest payload of one ring record: a quarter of the ring, less its header. */
export const RING_RECORD_PAYLOAD = RING_BYTES / 4 - 12;
/** Stream text batched into one line once it reaches this many characters. */
export const STREAM_LINE_CHARS = 64 * 1024;
/** Raw bytes of a written file per message (base64 on the wire). */
export const FILE_CHUNK_BYTES = 768 * 1024;
