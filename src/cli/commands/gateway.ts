import type { Command } from 'commander';
import { requireReachableBrokers } from '../../adapters/kafka/kafka';
import { startGatewayFromConfig } from '../../gateway/from-config';
import { openClickHouse } from '../clickhouse';
import { createContext, waitForShutdownSignal } from '../context';
import { withExamples } from '../help';

export function registerGateway(program: Command): void {
  const command = program
    .command('gateway')
    .description('serve the HTTP API: POST /v1/events (to the usage topic, acknowledged), GET /v1/usage, /openapi.json (stateless: run several behind a load balancer)')
    .action(async () => {
      const stopRequested = waitForShutdownSignal();
      const { config, logger } = createContext();
      // Read-only: the gateway reads keys and usage, and writes only to Kafka.
      const ch = await openClickHouse(config, { readOnly: true, logger });
      try {
        const brokers = await requireReachableBrokers(config);
        const gateway = await startGatewayFromConfig({ config, logger, clickhouse: ch, brokers });
        logger.info({ url: gateway.url }, 'gateway listening');
        process.stdout.write(`meterline gateway listening on ${gateway.url}\n`);
        const signal = await stopRequested;
        logger.info({ signal }, 'stopping the gateway');
        await gateway.close();
      } finally {
        await ch.close();
      }
    });
  withExamples(command, [
    ['serve on 127.0.0.1:8080 (the worker, or `meterline migrate`, creates the tables first)', 'meterline gateway'],
    ['serve on every interface, port 9000, behind a TLS-terminating proxy', 'GATEWAY_HOST=0.0.0.0 GATEWAY_PORT=9000 meterline gateway'],
  ]);
}
