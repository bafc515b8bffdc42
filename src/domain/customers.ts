/** A customer's Stripe mapping. Metering never waits for it: only the push does. */
export interface CustomerMapping {
  readonly tenant: string;
  readonly customer: string;
  readonly stripeCustomerId: string;
}

const STRIPE_CUSTOMER_RE = /^cus_[A-Za-z0-9]{1,250}$/;
const NAME_RE = /^[^\u0000-\u001f\u007f-\u009f]{1,128}$/;

/** Validates CSV records (header: tenant,customer,stripe_customer_id); every bad row is reported. */
export function parseCustomerRows(rows: readonly Record<string, string>[]): { mappings: CustomerMapping[]; problems: string[] } {
  const mappings: CustomerMapping[] = [];
  const problems: string[] = [];
  rows.forEach((row, i) => {
    const line = i + 2; // line 1 is the header
    const tenant = row.tenant?.trim() ?? '';
    const customer = row.customer?.trim() ?? '';
    const stripe = row.stripe_customer_id?.trim() ?? '';
    if (!NAME_RE.test(tenant)) problems.push(`line ${line}: tenant must be 1-128 printable characters`);
    else if (!NAME_RE.test(customer)) problems.push(`line ${line}: customer must be 1-128 printable characters`);
    else if (!STRIPE_CUSTOMER_RE.test(stripe)) problems.push(`line ${line}: stripe_customer_id must look like cus_…`);
    else mappings.push({ tenant, customer, stripeCustomerId: stripe });
  });
  return { mappings, problems };
}
