// Reading an untrusted peer's response body with a ceiling: chunks are pulled until the cap,
// then the stream is cancelled, so a huge or never-ending body costs at most `maxBytes` of
// memory and no more waiting than the bytes before the cap (issue 11 item 8).

/** The body's first `maxBytes` bytes as UTF-8 text, and whether anything followed them. */
export async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
): Promise<{ text: string; truncated: boolean }> {
  if (!body) return { text: "", truncated: false };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const room = maxBytes - size;
    if (value.byteLength > room) {
      chunks.push(value.subarray(0, room));
      size = maxBytes;
      truncated = true;
      // Rejects when the peer already broke the connection; what was read stands.
      await reader.cancel().catch(() => undefined);
      break;
    }
    chunks.push(value);
    size += value.byteLength;
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  // Not fatal: a cut may split a character, and the text is only ever parsed or shown as data.
  return { text: new TextDecoder().decode(bytes), truncated };
}
