import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serviceKey } from '../model/keys.js';
import { boundViolations, type FailureBound } from './reliability-bounds.js';
import { summarizeProbe, type ProbeSummary } from './probe-summary.js';
import { taskChanges } from './task-fingerprint.js';
import { startSqliteOutage } from './sqlite-outage.js';
import { LAB_SERVICES, type LabService, type ReliabilityLab } from './reliability-lab.js';

// Issue 10 item 9: each scenario probes a published port of the shared lab through host-a while one
// thing fails, then judges the probe against its bound plus any checks of its own. Scenarios restore
// what they broke where they can, and after a failure every agent is restarted, so the next scenario
// starts from a healthy lab and one bug does not fail several scenarios; node loss comes last.

/** Scenario names, as the bench's JSON keys use them. */
export type ScenarioName =
  | 'graceful_restart'
  | 'crash_restart'
  | 'task_kill'
  | 'task_kill_dual_stack'
  | 'unknown_field'
  | 'lease_lapse'
  | 'store_outage'
  | 'node_loss';

/** What one scenario measured and what broke its bound. */
export interface ScenarioResult {
  name: ScenarioName;
  title: string;
  bound: FailureBound;
  /** Null when the scenario could not run (its error says why). */
  summary: ProbeSummary | null;
  /** Everything that breaks the bound or a check; empty when the scenario passed. */
  violations: string[];
  /** Scenario-specific figures (times in ms). */
  figures: Record<string, number | string | null>;
  /** Per host, what its agent logged during the scenario. */
  agentLogs: Record<string, string>;
  error?: string;
}

/** One scenario: how long it may take and how to run it on the lab. */
export interface Scenario {
  name: ScenarioName;
  title: string;
  /** Generous upper bound on its wall time, for test timeouts. */
  timeoutMs: number;
  run(rl: ReliabilityLab): Promise<ScenarioResult>;
}

/** What a fault step reports back to `measure`. */
interface FaultOutcome {
  /** When the fault happened (ms since the epoch); the probe's figures are relative to it. */
  faultAt: number;
  /** Keep probing until then before stopping the probe. */
  probeUntil: number;
  violations?: string[];
  figures?: Record<string, number | string | null>;
}

interface MeasureSpec {
  name: ScenarioName;
  title: string;
  bound: FailureBound;
  /** Services that must be healthy before the fault. */
  baseline: readonly LabService[];
  /** The service probed (through host-a). */
  probed: LabService;
  /** Upper bound of the probe's life; it is stopped earlier, at `probeUntil`. */
  maxProbeMs: number;
}

const sleepUntil = (t: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

/** Runs the common frame: healthy start, probe, fault, probe until told, judge, agent logs. */
async function measure(rl: ReliabilityLab, spec: MeasureSpec, fault: () => Promise<FaultOutcome>): Promise<ScenarioResult> {
  const result: ScenarioResult = { name: spec.name, title: spec.title, bound: spec.bound, summary: null, violations: [], figures: {}, agentLogs: {} };
  const marks = rl.logMarks();
  try {
    await rl.waitHealthy(spec.baseline);
    const probe = rl.probe(spec.probed.port, spec.maxProbeMs);
    try {
      // One second of traffic before the fault shows the path was clean to begin with.
      await probe.waitForAttempts(40);
      rl.log.info({ event: 'reliability.fault', scenario: spec.name });
      const f = await fault();
      await sleepUntil(f.probeUntil);
      const report = await probe.stop();
      if (rl.keepReportsIn) {
        mkdirSync(rl.keepReportsIn, { recursive: true });
        writeFileSync(join(rl.keepReportsIn, `${spec.name}.json`), JSON.stringify({ faultAt: f.faultAt, ...report }));
      }
      result.summary = summarizeProbe(report, f.faultAt);
      result.figures = f.figures ?? {};
      result.violations = [...boundViolations(report, f.faultAt, spec.bound), ...(f.violations ?? [])];
    } finally {
      await probe.stop().catch(() => undefined);
    }
  } catch (err) {
    result.error = (err as Error).message;
    result.violations.push(`the scenario could not run: ${result.error.split('\n')[0]}`);
  }
  result.agentLogs = rl.logDigests(marks);
  if (result.violations.length > 0) {
    await rl.freshAgents().catch((err: Error) => rl.log.warn({ event: 'reliability.agents_not_restarted', error: err.message }));
  }
  rl.log.info({ event: 'reliability.scenario_done', scenario: spec.name, failed: result.summary?.failed ?? null, violations: result.violations.length });
  return result;
}

/** An agent restart on host-a; the probes (the published port, and names inside a task of host-a) go on until the old lease's TTL + 5 s. */
function restart(name: 'graceful_restart' | 'crash_restart', signal: NodeJS.Signals): Scenario {
  const title = signal === 'SIGTERM' ? 'graceful agent restart (SIGTERM, start again)' : 'crash restart (SIGKILL, start again)';
  return {
    name,
    title,
    timeoutMs: 120_000,
    run: (rl) => {
      const ttlMs = rl.leaseTtlSeconds * 1000;
      return measure(rl, { name, title, bound: { kind: 'none' }, baseline: [LAB_SERVICES.web], probed: LAB_SERVICES.web, maxProbeMs: ttlMs + 40_000 }, async () => {
        const before = await rl.fingerprints(['web']);
        // Lookups inside a task of host-a go on through the restart: they wait in the resolver's kept sockets.
        const local = before.find((t) => t.node === 'host-a');
        if (!local) throw new Error('web has no task on host-a to look names up from');
        const lookups = rl.dnsProbe('host-a', local.id, ttlMs + 40_000);
        try {
          await lookups.waitForAttempts(20);
          const marks = rl.logMarks();
          const faultAt = Date.now();
          await rl.restartAgent('host-a', signal);
          const restartedAt = Date.now();
          const started = await rl.waitForLogEvent('host-a', 'agent.started', marks, 30_000);
          const startedAt = Date.now();
          // Past the old lease's expiry the store drops whatever the old agent held under it, unless the new one took it over.
          const probeUntil = restartedAt + ttlMs + 5000;
          await sleepUntil(probeUntil);
          const changes = taskChanges(before, await rl.fingerprints(['web']));
          const registered = (await rl.nodeLease('host-a')) !== undefined;
          const dns = (await lookups.stop()).attempts;
          const lost = dns.filter((a) => a.outcome !== 'ok');
          const violations = [
            ...(lost.length === 0 ? [] : [`${lost.length} of ${dns.length} lookups inside ${local.service}.${local.slot} on host-a failed (first: ${lost[0]!.outcome} ${lost[0]!.detail ?? ''})`]),
            ...(started ? [] : ['the new agent on host-a did not log agent.started within 30 s']),
            ...(rl.agentAlive('host-a') ? [] : ['the new agent on host-a exited']),
            ...(registered ? [] : [`host-a is not registered ${rl.leaseTtlSeconds + 5} s after the restart`]),
          ];
          return {
            faultAt,
            probeUntil,
            violations,
            figures: {
              agentDownMs: restartedAt - faultAt,
              startedAfterMs: started ? startedAt - faultAt : null,
              taskChanges: changes.length ? changes.join('; ') : 0,
              lookups: dns.length,
              lookupsFailed: lost.length,
              slowestLookupMs: Math.max(0, ...dns.map((a) => a.ms)),
            },
          };
        } finally {
          await lookups.stop().catch(() => undefined);
        }
      });
    },
  };
}

/** SIGKILL of one task's process on host-b; the agent restarts it. */
function taskKill(name: 'task_kill' | 'task_kill_dual_stack', service: LabService): Scenario {
  const title = service.appArgs.includes('::') ? `task kill, server listening on :: (${service.name})` : `task kill (${service.name})`;
  return {
    name,
    title,
    timeoutMs: 100_000,
    run: (rl) =>
      measure(rl, { name, title, bound: { kind: 'span', maxSpanMs: 500 }, baseline: [service], probed: service, maxProbeMs: 45_000 }, async () => {
        const victim = (await rl.fingerprints([service.name])).find((t) => t.node === 'host-b');
        if (!victim?.pid) throw new Error(`${service.name} has no task with a process on host-b`);
        const faultAt = Date.now();
        process.kill(victim.pid, 'SIGKILL');
        let now = victim;
        const restarted = await rl.until(30_000, async () => {
          now = (await rl.fingerprints([service.name])).find((t) => t.id === victim.id) ?? now;
          return now.restarts > victim.restarts && now.state === 'running' && now.pid !== victim.pid;
        });
        const restartedAt = Date.now();
        return {
          faultAt,
          probeUntil: restartedAt + 3000,
          violations: restarted ? [] : [`${service.name}.${victim.slot} was not running again under a new process within 30 s (state ${now.state}, restarts ${now.restarts})`],
          figures: { task: `${service.name}.${victim.slot}@host-b`, runningAgainAfterMs: restarted ? restartedAt - faultAt : null },
        };
      }),
  };
}

const unknownField: Scenario = {
  name: 'unknown_field',
  title: 'a service record with an unknown field ("futureField": 1)',
  timeoutMs: 100_000,
  run: (rl) =>
    measure(
      rl,
      { name: 'unknown_field', title: unknownField.title, bound: { kind: 'none' }, baseline: [LAB_SERVICES.uf, LAB_SERVICES.web], probed: LAB_SERVICES.uf, maxProbeMs: 40_000 },
      async () => {
        const tracked = ['uf', 'web'];
        const before = await rl.fingerprints(tracked);
        const key = serviceKey('uf');
        const original = await rl.cluster.withCluster(async (_c, s) => (await s.get(key))?.value);
        if (original === undefined) throw new Error(`no record at ${key}`);
        // What a newer meshnet would write: the same record with one field this version does not know.
        await rl.cluster.withCluster((_c, s) => s.put(key, JSON.stringify({ ...(JSON.parse(original) as object), futureField: 1 })));
        const faultAt = Date.now();
        // The write wakes every agent's pass at once; eight seconds also covers the passes its changes would wake.
        const probeUntil = faultAt + 8000;
        await sleepUntil(probeUntil);
        const stored = await rl.cluster.withCluster(async (_c, s) => (await s.get(key))?.value);
        const changes = taskChanges(before, await rl.fingerprints(tracked));
        const kept = stored !== undefined && (JSON.parse(stored) as { futureField?: unknown }).futureField === 1;
        // Put the record back as this version wrote it, so later scenarios start from a healthy `uf`.
        await rl.cluster.withCluster((_c, s) => s.put(key, original));
        return {
          faultAt,
          probeUntil,
          violations: [...changes.map((c) => `task changed: ${c}`), ...(kept ? [] : [`the record lost its unknown field: ${stored === undefined ? 'the record is gone' : stored.slice(0, 200)}`])],
          figures: { taskChanges: changes.length, fieldKept: kept ? 'yes' : 'no' },
        };
      },
    ),
};

const leaseLapse: Scenario = {
  name: 'lease_lapse',
  title: "host-a's own node lease lapses (revoked in the store)",
  timeoutMs: 100_000,
  run: (rl) =>
    measure(rl, { name: 'lease_lapse', title: leaseLapse.title, bound: { kind: 'none' }, baseline: [LAB_SERVICES.web, LAB_SERVICES.uf], probed: LAB_SERVICES.web, maxProbeMs: 50_000 }, async () => {
      const tracked = ['web', 'uf'];
      const before = await rl.fingerprints(tracked);
      const lease = await rl.nodeLease('host-a');
      if (lease === undefined) throw new Error('host-a has no node record to take the lease of');
      await rl.cluster.withCluster((_c, s) => s.revokeLease(lease));
      const faultAt = Date.now();
      const back = await rl.until(20_000, async () => {
        const now = await rl.nodeLease('host-a');
        return now !== undefined && now !== lease;
      });
      const backAt = Date.now();
      const probeUntil = Math.max(backAt + 5000, faultAt + 8000);
      await sleepUntil(probeUntil);
      const changes = taskChanges(before, await rl.fingerprints(tracked));
      return {
        faultAt,
        probeUntil,
        violations: [...(back ? [] : ['host-a did not register again within 20 s']), ...changes.map((c) => `task changed: ${c}`)],
        figures: { reregisteredAfterMs: back ? backAt - faultAt : null, taskChanges: changes.length },
      };
    }),
};

const OUTAGE_MS = 30_000;
const CATCH_UP_PORT = 8004;

const storeOutage: Scenario = {
  name: 'store_outage',
  title: 'store outage of 30 s (SQLite WAL locks held by another process)',
  timeoutMs: 200_000,
  run: (rl) =>
    measure(rl, { name: 'store_outage', title: storeOutage.title, bound: { kind: 'none' }, baseline: [LAB_SERVICES.web], probed: LAB_SERVICES.web, maxProbeMs: OUTAGE_MS + 120_000 }, async () => {
      const before = await rl.fingerprints(['web']);
      const outage = await startSqliteOutage(rl.lab, rl.client, rl.dbFile, OUTAGE_MS);
      const violations: string[] = [];
      // Proof that the outage is real: a store read from a fresh process does not get through.
      // (This process must not touch the store now: SQLite would stall its event loop.)
      const read = await rl.cluster.cliAsync(['node', 'ls', '--json'], 8000);
      if (read.code === 0) violations.push(`a store read succeeded during the outage (node ls in ${read.ms} ms): the outage was not real`);
      const releasedAt = await outage.released;
      // A change made after the outage must reach every host.
      const update = await rl.cluster.cliAsync(['service', 'update', 'web', '--publish-add', `${CATCH_UP_PORT}:80`], 60_000);
      if (update.code !== 0) violations.push(`service update after the outage failed (exit ${update.code}): ${update.stderr.trim().slice(0, 300)}`);
      let silent: string[] = [];
      const caughtUp = update.code === 0 && (await rl.until(30_000, async () => (silent = await rl.hostsNotAnswering(CATCH_UP_PORT)).length === 0));
      if (update.code === 0 && !caughtUp) violations.push(`port ${CATCH_UP_PORT}, published after the outage, did not answer on ${silent.join(', ')} within 30 s`);
      const caughtUpAt = Date.now();
      const changes = taskChanges(before, await rl.fingerprints(['web']));
      return {
        faultAt: outage.heldAt,
        probeUntil: caughtUpAt + 2000,
        violations,
        figures: {
          outageMs: releasedAt - outage.heldAt,
          storeReadDuringOutage: read.code === 0 ? `succeeded in ${read.ms} ms` : `failed after ${read.ms} ms (exit ${read.code})`,
          catchUpMs: caughtUp ? caughtUpAt - releasedAt : null,
          taskChanges: changes.length ? changes.join('; ') : 0,
        },
      };
    }),
};

const nodeLoss: Scenario = {
  name: 'node_loss',
  title: 'node loss (host-c: agent and tasks SIGKILLed, eth0 down)',
  timeoutMs: 120_000,
  run: (rl) => {
    // Peers probe each other's VTEP over the overlay (agent --vtep-probe-interval-ms, 400 ms; 3 misses make
    // a peer unreachable), so the dead node's backends leave host-a's tables ~1.5 s after the kill, long
    // before its lease ends. The probe runs on past the lease's end (+ 2 s), where the store's verdict takes
    // over from the probes', to show that handover loses nothing either.
    const detectMs = 3000;
    const observeMs = (rl.leaseTtlSeconds + 1) * 1000 + 2000 - detectMs;
    return measure(
      rl,
      { name: 'node_loss', title: nodeLoss.title, bound: { kind: 'until', afterFaultMs: detectMs, deadNode: 'host-c', observeMs }, baseline: [LAB_SERVICES.web], probed: LAB_SERVICES.web, maxProbeMs: detectMs + observeMs + 30_000 },
      async () => {
        const faultAt = Date.now();
        const killed = await rl.killNode('host-c');
        return { faultAt, probeUntil: faultAt + detectMs + observeMs + 500, figures: { processesKilled: killed } };
      },
    );
  },
};

/** Every scenario in the order they run on one lab; node loss is last because it takes a host away. */
export const SCENARIOS: readonly Scenario[] = [
  restart('graceful_restart', 'SIGTERM'),
  restart('crash_restart', 'SIGKILL'),
  taskKill('task_kill', LAB_SERVICES.web),
  taskKill('task_kill_dual_stack', LAB_SERVICES.dual),
  unknownField,
  leaseLapse,
  storeOutage,
  nodeLoss,
];
