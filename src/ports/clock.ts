/** Milliseconds since the epoch. Injected everywhere time is read, so tests control it. */
export type Clock = () => number;
