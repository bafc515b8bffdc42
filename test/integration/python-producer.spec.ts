/**
 * The README's Python producer example ("Producers in other languages"), run as written with
 * Apache Avro's Python library (Debian python3-avro; skipped loudly without it). Kafka is
 * replaced by a stand-in `confluent_kafka` module that prints what would be produced, and the
 * worker's decoder must read it as the same event, schema v2.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDecoder } from '../../src/adapters/avro/codec';
import { validateEvent } from '../../src/domain/usage-event';
import { PROJECT_ROOT } from '../helpers/cli';

const python = ['/usr/bin/python3', 'python3'].find((bin) => spawnSync(bin, ['-c', 'import avro.schema, avro.io'], { stdio: 'ignore' }).status === 0);
if (!python) process.stderr.write('\n*** SKIPPING the README Python example: no python3 with the avro package (apt-get install -y python3-avro) ***\n\n');

const FAKE_CONFLUENT_KAFKA = `
import json, sys
class Producer:
    def __init__(self, config):
        self.config = config
        self.sent = []
    def produce(self, topic, key=None, value=None):
        self.sent.append({"topic": topic, "key": key.hex(), "value": value.hex()})
    def flush(self):
        print(json.dumps({"config": self.config, "sent": self.sent}))
`;

// Skipped only outside CI: .ci/run installs python3-avro, so there a missing library fails the test.
(python || process.env.CI ? describe : describe.skip)('the README Python producer', () => {
  it('produces a message the worker decodes as the same event, keyed as meterline keys it', async () => {
    const readme = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Producers in other languages'));
    const code = /```python\n([\s\S]*?)```/.exec(section)![1]!;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-python-'));
    try {
      fs.mkdirSync(path.join(dir, 'confluent_kafka'));
      fs.writeFileSync(path.join(dir, 'confluent_kafka', '__init__.py'), FAKE_CONFLUENT_KAFKA);
      fs.writeFileSync(path.join(dir, 'producer.py'), code);
      const r = spawnSync(python!, [path.join(dir, 'producer.py')], { cwd: PROJECT_ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, PYTHONPATH: dir } });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const out = JSON.parse(r.stdout) as { config: Record<string, unknown>; sent: { topic: string; key: string; value: string }[] };
      expect(out.config).toMatchObject({ 'enable.idempotence': true, partitioner: 'murmur2_random' });
      expect(out.sent).toHaveLength(1);
      const [sent] = out.sent;
      expect(sent!.topic).toBe('usage.events');
      expect(Buffer.from(sent!.key, 'hex').toString()).toBe('acme\u001fevt-42');
      const [decoded] = await createDecoder().decodeMany([Buffer.from(sent!.value, 'hex')]);
      expect(decoded).toMatchObject({ ok: true, encoding: 'single-object', writerSchemaVersion: 2 });
      const v = validateEvent((decoded as { record: unknown }).record, { now: Date.now(), maxFutureSkewMs: 60_000 });
      expect(v).toMatchObject({ ok: true, event: { id: 'evt-42', tenant: 'acme', customer: 'cus_123', meter: 'api.requests', value: '12.5', properties: { region: 'eu-west-1' }, source: 'billing-py' } });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
