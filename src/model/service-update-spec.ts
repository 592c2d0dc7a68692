import { InvalidSpecError } from './model-errors.js';
import type { NormalizedServiceSpec, ServiceRecord } from './records.js';
import {
  DEFAULT_UPDATE_CONFIG,
  type PreviousSpecRecord,
  type UpdateConfigRecord,
  type UpdateConfigSpec,
  type UpdateStatusRecord,
} from './rollout-records.js';

// Pure: what `service update` and `service rollback` store. A change to what a task runs (command, env, user,
// capabilities, networks, --force) makes a new spec version, keeps the replaced spec as previousSpec and starts
// a rollout; any other change (replicas, ports, scheduler) applies in place as before. Rollback swaps the two
// specs back, version number included, so the tasks that were never replaced are current again at once.

/** The rollout fields of a service record, carried through saveService next to the spec. */
export interface RolloutFields {
  version?: number;
  forceUpdate?: number;
  updateConfig?: UpdateConfigRecord;
  rollbackConfig?: UpdateConfigRecord;
  updateStatus?: UpdateStatusRecord;
  previousSpec?: PreviousSpecRecord;
}

/** A spec as saveService builds it, with the rollout fields to store. */
export type SpecWithRollout = NormalizedServiceSpec & Omit<RolloutFields, 'updateConfig' | 'rollbackConfig'> & { updateConfig?: UpdateConfigSpec; rollbackConfig?: UpdateConfigSpec };

/** What of an update request concerns rollouts. */
export interface RolloutInput {
  updateConfig?: UpdateConfigSpec;
  rollbackConfig?: UpdateConfigSpec;
  force?: boolean;
}

/** The version a service's tasks are compared to (absent: 0, services stored before rolling updates). */
export function serviceVersion(service: Pick<ServiceRecord, 'version'>): number {
  return service.version ?? 0;
}

/** A stored config from a partial one, over what was stored (or Docker's defaults). */
export function mergeUpdateConfig(stored: UpdateConfigRecord | undefined, given: UpdateConfigSpec | undefined): UpdateConfigRecord {
  const merged = { ...DEFAULT_UPDATE_CONFIG, ...(stored ?? {}) };
  for (const [k, v] of Object.entries(given ?? {})) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  return merged;
}

type TaskFields = Pick<ServiceRecord, 'command' | 'env' | 'user' | 'capAdd' | 'capDrop' | 'networks' | 'forceUpdate'>;

/** Canonical text of what a task runs: two specs with the same key need no new tasks. */
export function taskSpecKey(s: TaskFields): string {
  const env = Object.entries(s.env ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([s.command, env, s.user ?? null, [...(s.capAdd ?? [])].sort(), [...(s.capDrop ?? [])].sort(), [...s.networks].sort(), s.forceUpdate ?? 0]);
}

/** The part of `s` a rollback returns to, under its version. */
export function previousSpecOf(s: ServiceRecord): PreviousSpecRecord {
  return {
    version: serviceVersion(s),
    command: s.command,
    networks: s.networks,
    ports: s.ports.map((p) => ({ published: p.published, target: p.target, protocol: p.protocol, mode: p.mode, policy: p.policy })),
    replicas: s.replicas,
    ...(s.env !== undefined ? { env: s.env } : {}),
    ...(s.user !== undefined ? { user: s.user } : {}),
    ...(s.capAdd !== undefined ? { capAdd: s.capAdd } : {}),
    ...(s.capDrop !== undefined ? { capDrop: s.capDrop } : {}),
    ...(s.forceUpdate !== undefined ? { forceUpdate: s.forceUpdate } : {}),
  };
}

/**
 * The spec `next` (built from `base` and an update) with its rollout fields: a new version and an `updating`
 * status when what tasks run changed; a paused rollout resumed by any update that changes nothing tasks run
 * (Docker: `service update` again resumes); otherwise base's version and status unchanged.
 */
export function withRollout(base: ServiceRecord, next: NormalizedServiceSpec, input: RolloutInput, now: Date): SpecWithRollout {
  const updateConfig = input.updateConfig !== undefined || base.updateConfig !== undefined ? mergeUpdateConfig(base.updateConfig, input.updateConfig) : undefined;
  const rollbackConfig = input.rollbackConfig !== undefined || base.rollbackConfig !== undefined ? mergeUpdateConfig(base.rollbackConfig, input.rollbackConfig) : undefined;
  const forceUpdate = (base.forceUpdate ?? 0) + (input.force ? 1 : 0);
  const out: SpecWithRollout = {
    ...next,
    ...(updateConfig ? { updateConfig } : {}),
    ...(rollbackConfig ? { rollbackConfig } : {}),
    ...(forceUpdate > 0 ? { forceUpdate } : {}),
  };
  const at = now.toISOString();
  if (taskSpecKey({ ...next, forceUpdate }) !== taskSpecKey(base)) {
    return {
      ...out,
      version: Math.max(serviceVersion(base), base.previousSpec?.version ?? 0) + 1,
      previousSpec: previousSpecOf(base),
      updateStatus: { state: 'updating', startedAt: at, message: 'update in progress' },
    };
  }
  const kept = { ...(base.version !== undefined ? { version: base.version } : {}), ...(base.previousSpec ? { previousSpec: base.previousSpec } : {}) };
  const status = base.updateStatus;
  if (status?.state === 'paused') return { ...out, ...kept, updateStatus: { state: 'updating', startedAt: at, message: 'update resumed' } };
  if (status?.state === 'rollback_paused') return { ...out, ...kept, updateStatus: { state: 'rollback_started', startedAt: at, message: 'rollback resumed' } };
  return { ...out, ...kept, ...(status ? { updateStatus: status } : {}) };
}

/** Thrown by rollbackSpec when an automatic rollback finds the service already changed by someone else. */
export class RollbackSupersededError extends Error {
  constructor(service: string, expected: number, found: number) {
    super(`service ${service} is at version ${found}, not ${expected}: its failed update was already rolled back or replaced`);
    this.name = 'RollbackSupersededError';
  }
}

/**
 * `current` rolled back to its previous spec: the two specs swap, version numbers included, and the status
 * becomes rollback_started with `reason`. With `expectedVersion` (an automatic rollback) only the version
 * that failed is rolled back, so agents detecting the same failure roll back once.
 */
export function rollbackSpec(current: ServiceRecord, reason: string, now: Date, expectedVersion?: number): SpecWithRollout {
  if (expectedVersion !== undefined && serviceVersion(current) !== expectedVersion) {
    throw new RollbackSupersededError(current.name, expectedVersion, serviceVersion(current));
  }
  const prev = current.previousSpec;
  if (!prev) throw new InvalidSpecError(`service ${current.name} has no previous spec to roll back to: it was never updated (see meshnet service inspect ${current.name})`);
  const { version: _v, forceUpdate: _f, updateStatus: _s, previousSpec: _p, vips: _vips, env: _env, user: _user, capAdd: _ca, capDrop: _cd, ...rest } = current;
  return {
    ...(rest as unknown as NormalizedServiceSpec),
    command: prev.command,
    networks: prev.networks,
    ports: prev.ports,
    replicas: prev.replicas,
    ...(prev.env !== undefined ? { env: prev.env } : {}),
    ...(prev.user !== undefined ? { user: prev.user } : {}),
    ...(prev.capAdd !== undefined ? { capAdd: prev.capAdd as NormalizedServiceSpec['capAdd'] } : {}),
    ...(prev.capDrop !== undefined ? { capDrop: prev.capDrop as NormalizedServiceSpec['capDrop'] } : {}),
    ...(prev.forceUpdate !== undefined ? { forceUpdate: prev.forceUpdate } : {}),
    version: prev.version,
    previousSpec: previousSpecOf(current),
    updateStatus: { state: 'rollback_started', startedAt: now.toISOString(), message: reason },
  };
}

/** The rollout fields of a spec built by saveService, configs completed with defaults, absent ones left out. */
export function rolloutFields(spec: SpecWithRollout): RolloutFields {
  return {
    ...(spec.version !== undefined ? { version: spec.version } : {}),
    ...(spec.forceUpdate !== undefined ? { forceUpdate: spec.forceUpdate } : {}),
    ...(spec.updateConfig !== undefined ? { updateConfig: mergeUpdateConfig(undefined, spec.updateConfig) } : {}),
    ...(spec.rollbackConfig !== undefined ? { rollbackConfig: mergeUpdateConfig(undefined, spec.rollbackConfig) } : {}),
    ...(spec.updateStatus !== undefined ? { updateStatus: spec.updateStatus } : {}),
    ...(spec.previousSpec !== undefined ? { previousSpec: spec.previousSpec } : {}),
  };
}
