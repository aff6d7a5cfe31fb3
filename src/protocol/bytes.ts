// Byte helpers the codecs and readers share. Explicit copies: on a Buffer (what Bun's sockets
// deliver) slice() makes a view, as in Node, and a kept view pins the whole read buffer.

/** A copy in memory of its own. */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

/** The chunks one after another in one new array (the only chunk itself when there is one). */
export function concatBytes(chunks: Uint8Array[], total?: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total ?? chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** What is left of `buf` from `pos`, then `chunk`: an incremental reader's next buffer. */
export function joinUnread(buf: Uint8Array, pos: number, chunk: Uint8Array): Uint8Array {
  if (pos >= buf.length) return chunk;
  return concatBytes([buf.subarray(pos), chunk]);
}
