import { clusterId } from '../../src/dev/apache-kafka/broker';

// kafka-storage's argument parser takes a value starting with "-" for an option, so a cluster id
// must never start with one (a base64url id does 1 time in 64: a CI run failed on it).
describe('KRaft cluster id for the test broker', () => {
  it('is 22 base64url characters and never starts with "-"', () => {
    for (let i = 0; i < 20_000; i += 1) {
      const id = clusterId();
      expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
  });
});
