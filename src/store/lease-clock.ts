import { readFileSync } from 'node:fs';

// The clock SQLite leases expire by. Wall-clock time steps (NTP corrections, a VM resumed, an operator's `date -s`)
// and one forward step would make every lease look expired at the next sweep: every node vanishes at once. The
// machine's monotonic clock never steps and, unlike performance.now(), is the same for every process on the
// machine, which is all that share one SQLite file. It restarts at boot, so a lease carries the boot it was
// granted in; a lease from an earlier boot has outlived every process that could keep it alive.

/** A machine-wide clock that never steps: milliseconds since boot, and the boot they count from. */
export interface LeaseClock {
  /** Identifies the current boot (the kernel's boot_id). */
  readonly bootId: string;
  /** Milliseconds on the machine's monotonic clock (CLOCK_MONOTONIC, shared by all processes). */
  nowMs(): number;
}

/** The kernel's boot id, or a constant where /proc has none (then leases simply never outlive a boot check). */
function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown-boot';
  }
}

/** This machine's monotonic clock (process.hrtime is CLOCK_MONOTONIC: absolute since boot, not since process start). */
export function machineLeaseClock(): LeaseClock {
  return { bootId: readBootId(), nowMs: () => Number(process.hrtime.bigint() / 1_000_000n) };
}
