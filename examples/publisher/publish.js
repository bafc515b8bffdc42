// Publishing usage events from code with meterline's producer SDK.
//   npm install && KAFKA_BROKERS=localhost:9092 node publish.js [extra-events]
// Without KAFKA_BROKERS it uses the dev broker that `meterline run` started in this directory.
'use strict';
const { createPublisher } = require('meterline');

async function main() {
  const extra = Number(process.argv[2] ?? 0);
  const publisher = await createPublisher({ tenant: 'acme', lingerMs: 20 });
  const now = Date.now();
  const events = [
    { id: 'order-1001', customer: 'cus_1', meter: 'api.requests', value: '1', timestamp: now },
    { id: 'order-1002', customer: 'cus_2', meter: 'tokens', value: '1234.5', timestamp: new Date(now), properties: { model: 'small' } },
    // A copy (say, an application retry): same key, so the worker counts it once.
    { id: 'order-1001', customer: 'cus_1', meter: 'api.requests', value: '1', timestamp: now },
    // Invalid (negative usage): rejected with the reason, never sent.
    { id: 'order-1003', customer: 'cus_3', meter: 'api.requests', value: '-5', timestamp: now },
  ];
  for (let i = 0; i < extra; i += 1) {
    events.push({ id: `bulk-${i}`, customer: `cus_${i % 7}`, meter: 'api.requests', value: '0.5', timestamp: now, source: 'example' });
  }
  const outcomes = await publisher.publishMany(events);
  await publisher.close(); // flushes anything still waiting

  for (const o of outcomes) {
    if (o.status === 'rejected') console.log(JSON.stringify({ status: o.status, reason: o.reason }));
    else console.log(JSON.stringify({ status: o.status, id: o.event.id, ...(o.status === 'failed' ? { reason: o.reason } : {}) }));
  }
  // Failed events are valid but were not taken by Kafka: publish them again later (copies are harmless).
  process.exitCode = outcomes.some((o) => o.status === 'failed') ? 1 : 0;
}

main().catch((err) => {
  console.error(`publish.js: ${err.message}`);
  process.exitCode = 2;
});
