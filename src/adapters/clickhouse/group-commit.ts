/**
 * Group commit: rows handed to `add` while a write is in flight (or in the same tick) are
 * written together by the next single `write` call, so many concurrent callers cost one
 * INSERT (one part) instead of one each. Each `add` resolves only once the write that carried
 * its row has resolved — durability per caller is unchanged — and rejects if that write failed.
 * Rows are written in the order they were added.
 */
export function groupCommit<T>(write: (rows: T[]) => Promise<void>, opts: { maxRows?: number } = {}): (row: T) => Promise<void> {
  const maxRows = opts.maxRows ?? 10_000;
  let queue: { row: T; resolve: () => void; reject: (err: unknown) => void }[] = [];
  let flushing = false;

  const flush = async () => {
    flushing = true;
    while (queue.length > 0) {
      const taken = queue.slice(0, maxRows);
      queue = queue.slice(taken.length);
      try {
        await write(taken.map((t) => t.row));
        for (const t of taken) t.resolve();
      } catch (err) {
        for (const t of taken) t.reject(err);
      }
    }
    flushing = false;
  };

  return (row) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ row, resolve, reject });
      // Idle: wait one turn of the event loop so callers of the same tick share the write.
      if (!flushing) {
        flushing = true;
        setImmediate(() => void flush());
      }
    });
}
