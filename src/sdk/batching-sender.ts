import { errorMessage } from '../runtime/errors';

/** One encoded Kafka message. */
export interface OutgoingMessage {
  readonly key: string;
  readonly value: Buffer;
}

export type SendResult = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly error: unknown };

export interface BatchingOptions {
  /** How long the first message of a batch waits for company before the batch is sent. */
  readonly lingerMs: number;
  /** A batch is sent as soon as it holds this many messages… */
  readonly maxBatchMessages: number;
  /** …or this many bytes of values. */
  readonly maxBatchBytes: number;
  /** Messages accepted but not yet acknowledged; `submit` waits beyond this (backpressure). */
  readonly maxPending: number;
  /** Attempts per batch when its send fails with a transient error (1 = no retry). */
  readonly maxAttempts: number;
  /** First retry delay; doubled per attempt, with ±20 % jitter, at most 30 s. */
  readonly retryBackoffMs: number;
  readonly isTransient: (err: unknown) => boolean;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
}

export interface BatchingSender {
  /** Resolves once the message is acknowledged, or failed for good (never rejects). */
  submit(message: OutgoingMessage): Promise<SendResult>;
  /** Sends whatever waits, and resolves when everything submitted so far has a result. */
  flush(): Promise<void>;
  /** From now on sends at once, without lingering (closing); then flushes. */
  finish(): Promise<void>;
}

interface Pending {
  readonly message: OutgoingMessage;
  readonly done: (r: SendResult) => void;
}

/**
 * Groups messages into batches bounded by count and bytes, sent after at most `lingerMs`.
 * Batches are sent one at a time, in submission order (one request in flight keeps the
 * idempotent producer's ordering). A batch that fails with a transient error is sent again
 * whole: a copy written by an attempt that failed late is harmless, because ingest dedupes on
 * (tenant, id) — which is also why every copy must carry the same key.
 */
export function createBatchingSender(send: (messages: readonly OutgoingMessage[]) => Promise<void>, opts: BatchingOptions): BatchingSender {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let queue: Pending[] = [];
  let queuedBytes = 0;
  let pending = 0;
  let timer: NodeJS.Timeout | undefined;
  // The tail of the chain of batches: each starts when the previous one has its result.
  let inFlight: Promise<void> = Promise.resolve();
  let spaceFreed: (() => void)[] = [];
  let finishing = false;

  async function sendWithRetry(batch: Pending[]): Promise<void> {
    const messages = batch.map((p) => p.message);
    let result: SendResult = { ok: true };
    for (let attempt = 1; ; attempt += 1) {
      try {
        await send(messages);
        result = { ok: true };
        break;
      } catch (err) {
        if (attempt >= opts.maxAttempts || !opts.isTransient(err)) {
          result = { ok: false, reason: errorMessage(err), error: err };
          break;
        }
        const base = Math.min(30_000, opts.retryBackoffMs * 2 ** (attempt - 1));
        const delayMs = Math.round(base * (0.8 + Math.random() * 0.4));
        opts.onRetry?.({ attempt, delayMs, error: err });
        await sleep(delayMs);
      }
    }
    pending -= batch.length;
    for (const p of batch) p.done(result);
    const waiting = spaceFreed;
    spaceFreed = [];
    for (const w of waiting) w();
  }

  /** Moves up to one batch from the queue onto the chain of sends. */
  function cut(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (queue.length === 0) return;
    let bytes = 0;
    let n = 0;
    while (n < queue.length && n < opts.maxBatchMessages && (n === 0 || bytes + queue[n]!.message.value.length <= opts.maxBatchBytes)) {
      bytes += queue[n]!.message.value.length;
      n += 1;
    }
    const batch = queue.slice(0, n);
    queue = queue.slice(n);
    queuedBytes -= bytes;
    inFlight = inFlight.then(() => sendWithRetry(batch));
    schedule();
  }

  function schedule(): void {
    if (queue.length >= opts.maxBatchMessages || queuedBytes >= opts.maxBatchBytes || (finishing && queue.length > 0)) cut();
    else if (queue.length > 0 && !timer) timer = setTimeout(cut, opts.lingerMs);
  }

  return {
    async submit(message) {
      while (pending >= opts.maxPending) await new Promise<void>((r) => spaceFreed.push(r));
      pending += 1;
      return new Promise<SendResult>((done) => {
        queue.push({ message, done });
        queuedBytes += message.value.length;
        schedule();
      });
    },
    async flush() {
      while (queue.length > 0) cut();
      await inFlight;
    },
    async finish() {
      finishing = true;
      await this.flush();
    },
  };
}
