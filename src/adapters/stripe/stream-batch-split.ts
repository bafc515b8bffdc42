import type { SendOutcome } from './billing-sink';

/**
 * Sends a batch of stream events; if Stripe refuses the whole request as invalid (a 400 that is
 * not worth retrying), one bad event must not fail its batch-mates: the batch is split in halves
 * and each half sent again, down to single events, so only the invalid ones end `failed` and the
 * rest are delivered. Re-sending the valid ones is safe: they carry their identifiers. Returns
 * one outcome per event, in order.
 */
export async function sendSplittingOnReject<T>(batch: readonly T[], send: (batch: readonly T[]) => Promise<SendOutcome>): Promise<SendOutcome[]> {
  if (batch.length === 0) return [];
  const outcome = await send(batch);
  if (outcome.kind !== 'failed' || batch.length === 1) return batch.map(() => outcome);
  const half = Math.ceil(batch.length / 2);
  return [...(await sendSplittingOnReject(batch.slice(0, half), send)), ...(await sendSplittingOnReject(batch.slice(half), send))];
}
