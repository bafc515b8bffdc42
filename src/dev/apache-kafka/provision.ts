import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MeterlineError } from '../../runtime/errors';
import { projectRoot } from '../../runtime/project-root';

/** log4j2 binding for the slf4j 1.7 API the broker logs through (the broker ships none of its own). */
const LOG4J_VERSION = '2.24.3';
const READY_MARKER = '.complete';

/**
 * Where a provisioned Kafka version lives: `.cache/kafka/<version>/libs/*.jar`, every jar the
 * broker needs. Maven's own repository for these downloads is `.cache/kafka/m2`, so nothing
 * outside the project's cache is written.
 */
export function kafkaCacheDir(version: string, root = projectRoot()): string {
  return path.join(root, '.cache', 'kafka', version);
}

/**
 * Returns the classpath directory of Apache Kafka `version`, fetching it from Maven Central on
 * first use (about 15 s; needs `mvn` and `java`). A completed download is marked and reused:
 * later calls touch no network. Concurrent first calls each download into their own directory
 * and the first to finish wins the rename.
 */
export async function provisionKafka(version: string, opts: { log?: (line: string) => void; root?: string } = {}): Promise<string> {
  const dir = kafkaCacheDir(version, opts.root);
  const libs = path.join(dir, 'libs');
  if (fs.existsSync(path.join(libs, READY_MARKER))) return libs;
  await requireTool('java', ['-version'], 'Apache Kafka needs a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)');
  await requireTool('mvn', ['-v'], 'fetching Apache Kafka needs Maven (Debian: apt-get install maven)');
  fs.mkdirSync(dir, { recursive: true });
  const work = fs.mkdtempSync(path.join(dir, 'fetch-'));
  try {
    fs.writeFileSync(path.join(work, 'pom.xml'), pom(version));
    opts.log?.(`apache-kafka: fetching kafka_2.13 ${version} from Maven Central into ${dir}`);
    const m2 = path.join(path.dirname(dir), 'm2');
    await run('mvn', ['-q', '-B', '-f', path.join(work, 'pom.xml'), 'dependency:copy-dependencies', `-DoutputDirectory=${path.join(work, 'libs')}`, `-Dmaven.repo.local=${m2}`], opts.log);
    fs.writeFileSync(path.join(work, 'libs', READY_MARKER), `${new Date().toISOString()}\n`);
    try {
      fs.renameSync(path.join(work, 'libs'), libs);
    } catch (err) {
      if (!fs.existsSync(path.join(libs, READY_MARKER))) throw err; // someone else finished first: fine
    }
    return libs;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function pom(version: string): string {
  return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>meterline.dev</groupId><artifactId>apache-kafka-broker</artifactId><version>${version}</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${version}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>${LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>${LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
`;
}

async function requireTool(cmd: string, args: string[], hint: string): Promise<void> {
  try {
    await run(cmd, args);
  } catch {
    throw new MeterlineError('KAFKA_PROVISION', `\`${cmd}\` is not available: ${hint}`);
  }
}

function run(cmd: string, args: string[], log?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (d: Buffer) => {
      tail = (tail + d.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) return resolve();
      log?.(tail);
      reject(new MeterlineError('KAFKA_PROVISION', `${cmd} ${args.slice(0, 4).join(' ')} … exited ${code}: ${tail.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}
