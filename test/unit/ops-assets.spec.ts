import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ENV_VARIABLES } from '../../src/config/config';
import { createMetrics } from '../../src/runtime/metrics';

/**
 * The ops assets cannot drift from the code: every metric a dashboard or an alert queries is
 * one the worker exports, every alert has a runbook section, and docker-compose.yml holds the
 * stack the README describes (services, ports, known environment variables).
 */
const ROOT = path.resolve(__dirname, '..', '..');
const read = (p: string) => fs.readFileSync(path.join(ROOT, p), 'utf8');

/** Series names the worker exports (histograms expose _bucket, _sum and _count), plus Prometheus' own `up`. */
function exportedSeries(): Set<string> {
  const names = new Set<string>(['up']);
  for (const m of createMetrics().registry.getMetricsAsArray()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

/** Metric names in a PromQL expression: identifiers not followed by `(`, minus keywords and label names. */
function metricNames(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, '').replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const ids = withoutLabels.match(/[a-zA-Z_:][a-zA-Z0-9_:]*(?![a-zA-Z0-9_:]|\s*\()/g) ?? [];
  const keywords = new Set(['and', 'or', 'unless', 'offset', 'bool', 'le', 'rate_interval']);
  return ids.filter((id) => !keywords.has(id) && !/^\d/.test(id) && (id.startsWith('meterline_') || id === 'up'));
}

interface Panel {
  type: string;
  title: string;
  datasource?: { uid?: string };
  targets?: { expr: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
}

interface Dashboard {
  __requires: { type: string; id: string }[];
  templating: { list: { name: string; type: string; query: unknown; definition?: string; includeAll?: boolean; multi?: boolean; datasource?: { uid?: string } }[] };
  panels: Panel[];
}

describe('ops assets match the code', () => {
  const series = exportedSeries();

  it('every metric the Grafana dashboard queries is defined in src/runtime/metrics.ts', () => {
    const dashboard = JSON.parse(read('ops/grafana/dashboards/meterline.json')) as { uid: string; panels: Panel[] };
    expect(dashboard.uid).toBe('meterline');
    const exprs = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(20);
    const used = new Set(exprs.flatMap(metricNames));
    expect([...used].filter((n) => !series.has(n))).toEqual([]);
    // And the dashboard covers the signals operators need.
    for (const signal of [
      'meterline_events_accepted_total',
      'meterline_events_rejected_total',
      'meterline_events_late_total',
      'meterline_consumer_lag',
      'meterline_watermark_delay_seconds',
      'meterline_event_aggregation_latency_seconds_bucket',
      'meterline_stripe_pushes_total',
      'meterline_stripe_calls_total',
      'meterline_stripe_push_backlog',
      'meterline_reconcile_drift',
      'meterline_dedupe_store_rows',
      'meterline_ready',
      'meterline_stripe_pushes_failed',
      'meterline_stripe_pushes_held',
      // Node.js default metrics: process memory and event-loop lag.
      'meterline_process_resident_memory_bytes',
      'meterline_nodejs_heap_size_used_bytes',
      'meterline_nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(used).toContain(signal);
    }
  });

  it('the Grafana datasource of the compose stack points at its Prometheus', () => {
    const ds = YAML.parse(read('ops/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { type: string; url: string; isDefault: boolean }[] };
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090', isDefault: true });
  });

  it('the dashboard imports into another Grafana: datasource, job and instance are variables, no fixed datasource uid', () => {
    const text = read('ops/grafana/dashboards/meterline.json');
    const dashboard = JSON.parse(text) as Dashboard;
    expect(dashboard.__requires).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'datasource', id: 'prometheus' })]));
    const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(vars.get('job')).toMatchObject({ type: 'query', datasource: { uid: '${datasource}' } });
    expect(vars.get('instance')).toMatchObject({ type: 'query', includeAll: true, multi: true, datasource: { uid: '${datasource}' } });
    expect(vars.get('instance')!.definition).toMatch(/^label_values\(meterline_\w+\{job=~"\$job"\}, instance\)$/);
    const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
    for (const p of panels.filter((x) => x.type !== 'row')) {
      expect({ panel: p.title, uid: p.datasource?.uid }).toEqual({ panel: p.title, uid: '${datasource}' });
      for (const t of p.targets ?? []) {
        expect({ panel: p.title, uid: t.datasource?.uid }).toEqual({ panel: p.title, uid: '${datasource}' });
        // Every series selector is scoped to the chosen job and instances.
        const selectors = t.expr.match(/\b(meterline_\w+|up)(\{[^}]*\})?(?![\w(])/g) ?? [];
        for (const sel of selectors) expect({ panel: p.title, sel, scoped: sel.includes('job=~"$job"') && sel.includes('instance=~"$instance"') }).toEqual({ panel: p.title, sel, scoped: true });
      }
    }
    expect(text).not.toContain('meterline-prometheus');
  });

  it('every alert queries exported metrics, has a runbook section it links to, and a unit test case', () => {
    const rules = YAML.parse(read('ops/prometheus/alerts.yml')) as { groups: { rules: { alert: string; expr: string; annotations: Record<string, string> }[] }[] };
    const alerts = rules.groups.flatMap((g) => g.rules);
    const runbooks = read('ops/runbooks.md');
    const anchors = new Set([...runbooks.matchAll(/^## (\S+)/gm)].map((m) => m[1]!.toLowerCase()));
    const tests = read('ops/prometheus/alerts.test.yml');
    expect(alerts.map((a) => a.alert)).toEqual(
      expect.arrayContaining([
        'MeterlineLagGrowing',
        'MeterlineWatermarkStuck',
        'MeterlineDeadLetterRate',
        'MeterlineStripeFailures',
        'MeterlineStripeHeldPushes',
        'MeterlineStripeErrorRate',
        'MeterlineTooLateEvents',
        'MeterlineAwaitingMapping',
        'MeterlineDeadLetterTrickle',
        'MeterlinePushBacklog',
        'MeterlineReconcileDrift',
        'MeterlineNotReady',
      ]),
    );
    for (const a of alerts) {
      expect({ alert: a.alert, unknown: metricNames(a.expr).filter((n) => !series.has(n)) }).toEqual({ alert: a.alert, unknown: [] });
      expect(a.annotations.runbook_url).toBe(`ops/runbooks.md#${a.alert.toLowerCase()}`);
      expect(anchors).toContain(a.alert.toLowerCase());
      expect(tests).toContain(`alertname: ${a.alert}`);
    }
  });

  it('Prometheus sends alerts to the compose Alertmanager, which mounts its config from ops/alertmanager', () => {
    const prom = YAML.parse(read('ops/prometheus/prometheus.yml')) as { alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] } };
    const compose = YAML.parse(read('docker-compose.yml')) as Compose;
    const am = compose.services.alertmanager!;
    expect(am.image).toMatch(/^prom\/alertmanager:/);
    expect(am.ports).toContain('9093:9093');
    expect(am.volumes).toContain('./ops/alertmanager:/etc/alertmanager:ro');
    expect(prom.alerting.alertmanagers[0]!.static_configs[0]!.targets).toEqual(['alertmanager:9093']);
    const config = YAML.parse(read('ops/alertmanager/alertmanager.yml')) as { route: { receiver: string; routes?: { receiver: string }[] }; receivers: { name: string }[] };
    const receivers = new Set(config.receivers.map((r) => r.name));
    for (const r of [config.route.receiver, ...(config.route.routes ?? []).map((x) => x.receiver)]) expect(receivers).toContain(r);
  });

  it('Prometheus scrapes the worker on the port the compose worker listens on', () => {
    const prom = YAML.parse(read('ops/prometheus/prometheus.yml')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
    const compose = YAML.parse(read('docker-compose.yml')) as Compose;
    const job = prom.scrape_configs.find((j) => j.job_name === 'meterline')!;
    expect(job.static_configs[0]!.targets).toEqual([`worker:${compose.services.worker!.environment!.METRICS_PORT}`]);
  });
});

interface Service {
  image?: string;
  build?: unknown;
  ports?: string[];
  environment?: Record<string, string | number>;
  volumes?: string[];
  depends_on?: unknown;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

describe('docker-compose.yml: the production-shaped stack', () => {
  const compose = YAML.parse(read('docker-compose.yml')) as Compose;
  const services = compose.services;

  it('is well-formed: every service has an image or a build, every port mapping is host:container', () => {
    expect(Object.keys(services).length).toBeGreaterThan(0);
    for (const [name, s] of Object.entries(services)) {
      expect({ name, runnable: Boolean(s.image) || Boolean(s.build) }).toEqual({ name, runnable: true });
      for (const p of s.ports ?? []) expect(p).toMatch(/^\d+:\d+$/);
      for (const dep of Array.isArray(s.depends_on) ? s.depends_on : Object.keys((s.depends_on as object) ?? {})) expect(Object.keys(services)).toContain(dep);
    }
  });

  it('runs Kafka in KRaft mode, a schema registry, ClickHouse, Prometheus, Grafana and the worker', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['kafka', 'schema-registry', 'clickhouse', 'prometheus', 'grafana', 'worker']));
    expect(Object.keys(services).some((n) => /zookeeper/i.test(n))).toBe(false);
    expect(String(services.kafka!.environment!.KAFKA_PROCESS_ROLES)).toMatch(/controller/);
    expect(services.worker!.build).toBeDefined();
  });

  it('gives the worker only variables meterline knows, pointing at the stack services', () => {
    const env = services.worker!.environment!;
    const known = new Set<string>(ENV_VARIABLES);
    expect(Object.keys(env).filter((k) => !known.has(k))).toEqual([]);
    expect(env.KAFKA_BROKERS).toBe('kafka:29092'); // the in-network listener (9092 is the host's)
    expect(env.CLICKHOUSE_URL).toBe('http://clickhouse:8123');
    expect(env.SCHEMA_REGISTRY_URL).toBe('http://schema-registry:8081');
    expect(env.HTTP_HOST).toBe('0.0.0.0');
  });

  it('mounts ops files that exist in the repository', () => {
    for (const s of Object.values(services)) {
      for (const v of s.volumes ?? []) {
        const host = v.split(':')[0]!;
        if (host.startsWith('.')) expect({ volume: v, exists: fs.existsSync(path.join(ROOT, host)) }).toEqual({ volume: v, exists: true });
        else expect(Object.keys(compose.volumes ?? {})).toContain(host);
      }
    }
  });

  it('publishes every service and port the README names for the stack', () => {
    const readme = read('README.md');
    const section = readme.slice(readme.indexOf('## The production-shaped stack'));
    const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| service')));
    const rows = [...table.matchAll(/^\| `([^`]+)` \|[^|]*\| (\d+) \|$/gm)].map((m) => ({ service: m[1]!, port: m[2]! }));
    expect(rows.length).toBeGreaterThanOrEqual(6);
    for (const { service, port } of rows) {
      expect(Object.keys(services)).toContain(service);
      expect(services[service]!.ports ?? []).toContain(`${port}:${port}`);
    }
  });
});
