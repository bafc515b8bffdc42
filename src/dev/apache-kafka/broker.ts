import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { MeterlineError } from '../../runtime/errors';
import { provisionKafka } from './provision';
import { DEFAULT_KAFKA_VERSION } from './versions';

/**
 * A real Apache Kafka broker for tests, benchmarks and local use: one KRaft node (broker and
 * controller in one JVM) on free loopback ports, its log directory on disk. Unlike the dev broker
 * it can be killed -9 and started again on the same directory with nothing acknowledged lost.
 * Development only: no authentication, one replica.
 */
export interface ApacheKafka {
  readonly version: string;
  readonly bootstrapServers: string[];
  /** The broker's log directory (topics, offsets, group state). */
  readonly logDir: string;
  /** The running JVM's pid, or undefined while it is down. */
  pid(): number | undefined;
  createTopic(name: string, partitions: number): Promise<void>;
  /** SIGKILL: the JVM dies at once, as in a crash. */
  kill(): Promise<void>;
  /** Starts the broker again on the same ports and log directory; resolves once it serves metadata. */
  restart(): Promise<void>;
  /** Graceful shutdown (SIGTERM, SIGKILL after a grace period); removes a temporary log directory. Idempotent. */
  stop(): Promise<void>;
}

export interface ApacheKafkaOptions {
  version?: string;
  topics?: { name: string; partitions: number }[];
  /** A directory to keep the broker's data in; default: a temporary one removed by stop(). */
  logDir?: string;
  /** JVM heap, MiB (default 512). */
  heapMb?: number;
  /** Progress and, on failure, the broker's log tail. */
  log?: (line: string) => void;
}

const START_TIMEOUT_MS = 90_000;
const STOP_GRACE_MS = 15_000;

export async function startApacheKafka(opts: ApacheKafkaOptions = {}): Promise<ApacheKafka> {
  const version = opts.version ?? DEFAULT_KAFKA_VERSION;
  const libs = await provisionKafka(version, { log: opts.log });
  const ownsDir = opts.logDir === undefined;
  const home = opts.logDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-kafka-'));
  const logDir = path.join(home, 'data');
  const [port = 0, controllerPort = 0] = await freePorts(2);
  const bootstrapServers = [`127.0.0.1:${port}`];
  const props = path.join(home, 'server.properties');
  fs.mkdirSync(logDir, { recursive: true });
  fs.writeFileSync(props, serverProperties({ port, controllerPort, logDir }));
  fs.writeFileSync(path.join(home, 'log4j2.properties'), LOG4J2_PROPERTIES);
  const java = (main: string, args: string[], heapMb: number) => [
    `-Xms${Math.min(128, heapMb)}m`,
    `-Xmx${heapMb}m`,
    '-XX:+UseSerialGC',
    `-Dlog4j2.configurationFile=${path.join(home, 'log4j2.properties')}`,
    '-cp',
    `${libs}/*`,
    main,
    ...args,
  ];

  if (!fs.existsSync(path.join(logDir, 'meta.properties'))) {
    await runToEnd('java', java('kafka.tools.StorageTool', ['format', '-t', clusterId(), '-c', props], 256));
  }

  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const out = fs.openSync(path.join(home, 'broker.log'), 'a');
    child = spawn('java', java('kafka.Kafka', [props], opts.heapMb ?? 512), { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const started = child;
    // Never outlive the process that started the broker (a crashed test runner, say).
    process.once('exit', () => started.kill('SIGKILL'));
    try {
      await waitUntilServing(bootstrapServers, started);
    } catch (err) {
      started.kill('SIGKILL');
      opts.log?.(tail(path.join(home, 'broker.log')));
      throw err;
    }
  };
  const exited = (c: ChildProcess) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve())));

  await launch();
  const admin = () => new Kafka({ clientId: 'meterline-apache-kafka', brokers: bootstrapServers, logLevel: logLevel.NOTHING }).admin();
  const broker: ApacheKafka = {
    version,
    bootstrapServers,
    logDir,
    pid: () => (child && child.exitCode === null && child.signalCode === null ? child.pid : undefined),
    async createTopic(name, partitions) {
      const a = admin();
      await a.connect();
      try {
        await a.createTopics({ topics: [{ topic: name, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
      } finally {
        await a.disconnect();
      }
    },
    async kill() {
      if (!child) return;
      const c = child;
      c.kill('SIGKILL');
      await exited(c);
    },
    async restart() {
      if (broker.pid() !== undefined) throw new MeterlineError('APACHE_KAFKA', 'restart() needs the broker to be down first (kill() or stop())');
      await launch();
    },
    async stop() {
      const c = child;
      child = undefined;
      if (c && c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        const timer = setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_MS);
        await exited(c);
        clearTimeout(timer);
      }
      if (ownsDir) fs.rmSync(home, { recursive: true, force: true });
    },
  };
  try {
    for (const t of opts.topics ?? []) await broker.createTopic(t.name, t.partitions);
    await proveGroupsWork(bootstrapServers);
  } catch (err) {
    await broker.stop();
    throw err;
  }
  return broker;
}

/**
 * Single node, broker and controller in one JVM. Internal topics have one replica (there is one
 * broker); `__consumer_offsets` gets 4 partitions (50 by default) so the first group join is quick.
 */
function serverProperties(p: { port: number; controllerPort: number; logDir: string }): string {
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `listeners=PLAINTEXT://127.0.0.1:${p.port},CONTROLLER://127.0.0.1:${p.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${p.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `controller.quorum.voters=1@127.0.0.1:${p.controllerPort}`,
    `log.dirs=${p.logDir}`,
    'num.partitions=4',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=4',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // Tests use 3 s sessions so a killed worker's partitions move quickly (the broker's default minimum is 6 s).
    'group.min.session.timeout.ms=1000',
    'auto.create.topics.enable=true',
    '',
  ].join('\n');
}

const LOG4J2_PROPERTIES = [
  'status = error',
  'rootLogger.level = WARN',
  'rootLogger.appenderRef.stdout.ref = STDOUT',
  'appender.stdout.type = Console',
  'appender.stdout.name = STDOUT',
  'appender.stdout.layout.type = PatternLayout',
  'appender.stdout.layout.pattern = [%d] %p %m (%c)%n',
  '',
].join('\n');

/**
 * A KRaft cluster id: 16 random bytes, base64url without padding (what `kafka-storage random-uuid`
 * prints). Like Kafka's own Uuid.randomUuid, never one starting with "-": the storage tool's
 * argument parser would take it for an option (1 start in 64 failed that way).
 */
export function clusterId(): string {
  for (;;) {
    const id = Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

async function waitUntilServing(bootstrapServers: string[], child: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  const kafka = new Kafka({ clientId: 'meterline-apache-kafka', brokers: bootstrapServers, logLevel: logLevel.NOTHING, retry: { retries: 0 } });
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new MeterlineError('APACHE_KAFKA', `the broker exited during start-up (${child.exitCode ?? child.signalCode})`);
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.fetchTopicMetadata({ topics: [] });
      return;
    } catch {
      if (Date.now() > deadline) throw new MeterlineError('APACHE_KAFKA', `the broker did not serve metadata within ${START_TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

/**
 * Produces idempotently with acks=all and joins a consumer group once: the broker is ready for real
 * work. (A fresh broker creates and loads its transaction-state and offsets topics on first use;
 * until then it answers "coordinator is loading", which clients retry but log as errors.)
 */
async function proveGroupsWork(bootstrapServers: string[]): Promise<void> {
  const kafka = new Kafka({ clientId: 'meterline-apache-kafka', brokers: bootstrapServers, logLevel: logLevel.NOTHING });
  const topic = '__meterline_ready';
  const producer = kafka.producer({ allowAutoTopicCreation: true, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: [{ value: 'ready' }] });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: '__meterline_ready', sessionTimeout: 6_000, heartbeatInterval: 500, maxWaitTimeInMs: 100 });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new MeterlineError('APACHE_KAFKA', 'the broker did not let a consumer join a group within 60 s')), 60_000);
      consumer.on(consumer.events.GROUP_JOIN, () => {
        clearTimeout(timer);
        resolve();
      });
      consumer.run({ eachMessage: async () => undefined }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
}

/** Free TCP ports on 127.0.0.1 (asked of the kernel, then released for the broker to take). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function runToEnd(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    child.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new MeterlineError('APACHE_KAFKA', `${args.at(-4) ?? cmd} exited ${code}: ${out.trim()}`))));
  });
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').slice(-4000);
  } catch {
    return '';
  }
}
