import type { PlannedPush } from '../domain/push-plan';

/** What one attempt to deliver a push came to. Only `retry` leaves the push pending. */
export type SendOutcome =
  | { readonly kind: 'reported' }
  /** Stripe already holds an event with this identifier: delivered before (e.g. a timeout after accepting). */
  | { readonly kind: 'already_reported' }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'retry'; readonly reason: string; readonly status?: number }
  /** Shadow mode: nothing was sent. */
  | { readonly kind: 'shadow' };

/** The billing port: the pusher knows nothing of HTTP, stripe-node or session tokens. */
export interface BillingSink {
  readonly shadow: boolean;
  send(push: PlannedPush): Promise<SendOutcome>;
  close(): Promise<void>;
}
