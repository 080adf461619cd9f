// Request bodies sent as a stream with no Content-Length (chunked), counting how much of them the Worker pulled:
// a body limit that holds only up to its limit pulls little more than that; one that reads first pulls it all.

export interface CountedStream {
  stream: ReadableStream<Uint8Array>;
  /** Bytes handed to the reader so far. */
  pulled(): number;
}

/** `bytes` as a stream of `chunk`-byte pieces, produced only as they are read. */
export function countedStream(bytes: Uint8Array, chunk = 16 * 1024): CountedStream {
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= bytes.length) return controller.close();
      const end = Math.min(sent + chunk, bytes.length);
      controller.enqueue(bytes.slice(sent, end));
      sent = end;
    },
  });
  return { stream, pulled: () => sent };
}

/** `text` followed by `&pad=xxx…` up to `total` bytes: a form that parses the same, only larger. */
export function paddedForm(text: string, total: number): Uint8Array {
  const head = new TextEncoder().encode(`${text}&pad=`);
  const out = new Uint8Array(Math.max(total, head.length)).fill(0x78);
  out.set(head);
  return out;
}
