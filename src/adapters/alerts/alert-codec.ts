import fs from 'node:fs';
import path from 'node:path';
import type { AlertCrossing } from '../../domain/alert-crossings';
import { formatDecimal, parseDecimal } from '../../domain/decimal';
import { SINGLE_OBJECT_HEADER_LENGTH, SINGLE_OBJECT_MAGIC } from '../avro/codec';
import { fingerprintBytes, schemaFingerprint } from '../avro/fingerprint';
import { defaultSchemaDir, parseSchema } from '../avro/schemas';

/** An alert as published: the crossing and when it was recorded. */
export interface UsageAlert extends AlertCrossing {
  readonly detectedAt: number;
}

const SCHEMA_FILE = 'usage-alert.v1.avsc';

let loaded: { type: ReturnType<typeof parseSchema>; header: Buffer } | undefined;
function alertSchema() {
  if (!loaded) {
    const type = parseSchema(JSON.parse(fs.readFileSync(path.join(defaultSchemaDir(), SCHEMA_FILE), 'utf8')));
    loaded = { type, header: Buffer.concat([SINGLE_OBJECT_MAGIC, fingerprintBytes(schemaFingerprint(type))]) };
  }
  return loaded;
}

const units = (text: unknown): bigint => {
  const d = parseDecimal(String(text));
  if (!d.ok) throw new Error(`usage alert: ${d.reason}`);
  return d.units;
};

/** Avro single-object encoding (C3 01, CRC-64-AVRO fingerprint, body) of schemas/usage-alert.v1.avsc. */
export function encodeAlert(a: UsageAlert): Buffer {
  const { type, header } = alertSchema();
  return Buffer.concat([
    header,
    type.toBuffer({
      alert_id: a.alertId,
      tenant: a.tenant,
      customer: a.customer,
      meter: a.meter,
      period_start: a.periodStart,
      period_end: a.periodEnd,
      threshold_percent: formatDecimal(a.thresholdUnits),
      allotment: formatDecimal(a.limitUnits),
      period_total: formatDecimal(a.totalUnits),
      detected_at: a.detectedAt,
    }),
  ]);
}

/** The inverse of encodeAlert; throws on another schema or malformed bytes. */
export function decodeAlert(buf: Buffer): UsageAlert {
  const { type, header } = alertSchema();
  if (buf.length < SINGLE_OBJECT_HEADER_LENGTH || !buf.subarray(0, SINGLE_OBJECT_HEADER_LENGTH).equals(header)) throw new Error('not a usage-alert.v1 single-object record');
  const r = type.fromBuffer(buf.subarray(SINGLE_OBJECT_HEADER_LENGTH)) as Record<string, unknown>;
  return {
    alertId: String(r.alert_id),
    tenant: String(r.tenant),
    customer: String(r.customer),
    meter: String(r.meter),
    periodStart: Number(r.period_start),
    periodEnd: Number(r.period_end),
    thresholdUnits: units(r.threshold_percent),
    limitUnits: units(r.allotment),
    totalUnits: units(r.period_total),
    detectedAt: Number(r.detected_at),
  };
}

/** The webhook's JSON body: the same fields, decimals as exact strings, times as ISO 8601. */
export function alertJson(a: UsageAlert): string {
  return JSON.stringify({
    id: a.alertId,
    type: 'usage.alert.threshold_crossed',
    tenant: a.tenant,
    customer: a.customer,
    meter: a.meter,
    period: { start: new Date(a.periodStart).toISOString(), end: new Date(a.periodEnd).toISOString() },
    threshold_percent: formatDecimal(a.thresholdUnits),
    allotment: formatDecimal(a.limitUnits),
    period_total: formatDecimal(a.totalUnits),
    detected_at: new Date(a.detectedAt).toISOString(),
  });
}
