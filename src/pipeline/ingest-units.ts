/**
 * At most this many events per ingest unit (whole batches; a bigger single batch is one unit).
 * A unit costs one INSERT per table whatever its size, and that fixed cost (a part, its
 * projections, its merges) is what limits small units: at 3,000 the quick benchmark ran at half
 * the rate of 10,000, and 25,000 (one unit per dev-broker fetch) beat 10,000 again. Bounded so
 * a unit stays far inside the session timeout (25,000 events take about a second).
 */
export const UNIT_MAX_EVENTS = 25_000;
