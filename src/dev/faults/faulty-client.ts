import type { ClickHouseClient } from '@clickhouse/client';
import { decideFault, type FaultSpec } from './fault-spec';
import { rawTsvInsertOf, registerRawTsvInsert } from '../../adapters/clickhouse/tsv-insert';

/** Thrown for an injected fault; `afterWork` says whether ClickHouse had already done the work. */
export class InjectedFault extends Error {
  constructor(
    readonly operation: string,
    readonly afterWork: boolean,
  ) {
    super(`chaos: injected ClickHouse failure ${afterWork ? 'after' : 'before'} ${operation}`);
    this.name = 'InjectedFault';
  }
}

/**
 * The ClickHouse store port with faults injected (chaos runs only): every query, insert,
 * command and exec may be delayed, may fail before reaching ClickHouse, or may fail after
 * ClickHouse did the work (an insert that landed but whose answer was lost). The code above must
 * survive all three without losing or doubling anything.
 */
export function withClickHouseFaults(
  client: ClickHouseClient,
  spec: FaultSpec,
  random: () => number,
  onFault?: (fault: { operation: string; kind: 'fail' | 'fail_after' | 'slow'; table?: string }) => void,
): ClickHouseClient {
  const wrap = <A extends unknown[], R>(operation: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const fate = decideFault(spec, random(), random());
      if (fate.delayMs > 0) {
        // The table an insert is for (raw TSV inserts name it first; the client's take {table}):
        // a chaos run can act at a precise step, e.g. kill a worker while its ledger write waits.
        const first = args[0] as unknown;
        const table = operation === 'insert' ? (typeof first === 'string' ? first : (first as { table?: string } | undefined)?.table) : undefined;
        onFault?.({ operation, kind: 'slow', ...(table ? { table } : {}) });
        await new Promise((r) => setTimeout(r, fate.delayMs));
      }
      if (fate.kind === 'fail') {
        onFault?.({ operation, kind: 'fail' });
        throw new InjectedFault(operation, false);
      }
      const result = await fn(...args);
      if (fate.kind === 'fail_after') {
        onFault?.({ operation, kind: 'fail_after' });
        throw new InjectedFault(operation, true);
      }
      return result;
    };
  const faulty = new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const bound = (value as (...a: unknown[]) => Promise<unknown>).bind(target);
      return prop === 'query' || prop === 'insert' || prop === 'command' || prop === 'exec' ? wrap(String(prop), bound) : bound;
    },
  });
  // The raw TSV path is an insert like any other: it meets the same faults.
  const raw = rawTsvInsertOf(client);
  if (raw) registerRawTsvInsert(faulty, wrap('insert', raw));
  return faulty;
}
