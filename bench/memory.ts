import { readFileSync } from 'node:fs';

/**
 * Where the worker's resident memory is, sampled while it runs. RSS counts two different kinds
 * of page: anonymous memory (the JavaScript heap, Node's buffers, the embedded engine's caches and
 * allocations) and pages of mapped files — mostly chdb's ~540 MB shared library, whose code pages
 * stay resident once executed (shared, clean, and dropped by the kernel under pressure).
 */
export interface MemoryPeaks {
  /** getrusage max RSS over the process's life (the figure the target is stated in). */
  readonly peakRssMiB: number;
  /** Highest anonymous RSS seen (sampled every 250 ms). */
  readonly peakAnonMiB: number;
  /** At that sample: V8's heap (reserved), Node's buffers outside it, and the rest of the anonymous memory (native: mostly the embedded engine). */
  readonly jsHeapAtPeakMiB: number;
  readonly buffersAtPeakMiB: number;
  readonly nativeAtPeakMiB: number;
  /** File-backed RSS at that sample, and the part of it that is libchdb.so (at the end). */
  readonly fileAtPeakMiB: number;
  readonly libchdbMiB: number;
}

const MiB = 1048576;

function statusKiB(field: string, status: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) : 0;
}

/** Resident KiB of this process's mappings of libchdb.so (from /proc/self/smaps). */
function libchdbResidentKiB(): number {
  let total = 0;
  let inLib = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inLib = line.includes('libchdb');
    else if (inLib && line.startsWith('Rss:')) total += Number(/(\d+)/.exec(line)![1]);
  }
  return total;
}

/** Samples /proc/self/status (Linux only; elsewhere reports only getrusage's peak). */
export function startMemorySampler(): { peakAnonSoFarMiB(): number; peakAnonSinceLastMiB(): number; stop(): MemoryPeaks } {
  let peakAnon = 0;
  /** The highest anonymous RSS since the last peakAnonSinceLastMiB() (a phase's own peak). */
  let phaseAnon = 0;
  let fileAtPeak = 0;
  let atPeak = { heapTotal: 0, external: 0 };
  const sample = () => {
    try {
      const status = readFileSync('/proc/self/status', 'utf8');
      const anon = statusKiB('RssAnon', status);
      phaseAnon = Math.max(phaseAnon, anon);
      if (anon > peakAnon) {
        peakAnon = anon;
        fileAtPeak = statusKiB('RssFile', status);
        const m = process.memoryUsage();
        atPeak = { heapTotal: m.heapTotal, external: m.external };
      }
    } catch {
      /* not Linux: the peak RSS alone is reported */
    }
  };
  sample();
  const timer = setInterval(sample, 250);
  timer.unref();
  return {
    peakAnonSoFarMiB() {
      sample();
      return Math.round((peakAnon * 1024) / MiB);
    },
    /** Reads without sampling (samples are every 250 ms and at stop()), so every sample is in exactly one phase's peak. */
    peakAnonSinceLastMiB() {
      const peak = phaseAnon;
      phaseAnon = 0;
      return Math.round((peak * 1024) / MiB);
    },
    stop() {
      clearInterval(timer);
      sample();
      let lib = 0;
      try {
        lib = libchdbResidentKiB();
      } catch {
        /* not Linux */
      }
      return {
        peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
        peakAnonMiB: Math.round((peakAnon * 1024) / MiB),
        jsHeapAtPeakMiB: Math.round(atPeak.heapTotal / MiB),
        buffersAtPeakMiB: Math.round(atPeak.external / MiB),
        nativeAtPeakMiB: Math.round((peakAnon * 1024 - atPeak.heapTotal - atPeak.external) / MiB),
        fileAtPeakMiB: Math.round((fileAtPeak * 1024) / MiB),
        libchdbMiB: Math.round((lib * 1024) / MiB),
      };
    },
  };
}
