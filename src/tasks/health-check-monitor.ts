import { afterCheck, type Healthcheck, type HealthResult, type HealthState } from './health-check.js';

/** What a HealthMonitor is given: the check, the process it watches, and where results go. */
export interface HealthMonitorOptions {
  check: Healthcheck;
  /** When the watched process started (ms): the start period counts from here. */
  processStartedAt: number;
  initial: HealthState;
  /** Runs one check; must not reject (a check that cannot run is a failed result). */
  probe: (check: Healthcheck) => Promise<HealthResult>;
  /** Called after every result with the new and the previous health. */
  onResult: (state: HealthState, previous: HealthState) => void;
  now?: () => number;
}

/**
 * The clock of one process's health check: the first check one interval after the start, then one
 * interval between starts, never two at once (a slow check delays the next, as Docker's ticker does).
 * Checks run off the agent's pass: the pass only reads `health`.
 */
export class HealthMonitor {
  private check: Healthcheck;
  private state: HealthState;
  private timer: NodeJS.Timeout | null = null;
  private inFlight = false;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly o: HealthMonitorOptions) {
    this.check = o.check;
    this.state = o.initial;
    this.now = o.now ?? Date.now;
    this.schedule(this.check.intervalMs);
  }

  /** The health as of the last result. */
  get health(): HealthState {
    return this.state;
  }

  /** Takes a changed check (service update) without losing the status: the next check follows the new interval. */
  reconfigure(check: Healthcheck): void {
    if (JSON.stringify(check) === JSON.stringify(this.check)) return;
    this.check = check;
    if (!this.inFlight) this.schedule(check.intervalMs);
  }

  /** No further checks; one in flight finishes unseen. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.timer = null;
    this.inFlight = true;
    const began = this.now();
    const check = this.check;
    const result = await this.o.probe(check);
    this.inFlight = false;
    if (this.stopped) return;
    const previous = this.state;
    this.state = afterCheck(previous, check, result, this.o.processStartedAt);
    this.o.onResult(this.state, previous);
    this.schedule(Math.max(0, began + this.check.intervalMs - this.now()));
  }
}
