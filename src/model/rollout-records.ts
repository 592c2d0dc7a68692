import { z } from 'zod';

// Stored shapes of a service's rolling-update settings and progress (Docker's UpdateConfig, RollbackConfig,
// UpdateStatus and PreviousSpec). Every field is optional on the service record: a record without them is a
// service that was never updated, and behaves as before this feature.

/** What to do when too many new tasks fail (Docker's --update-failure-action). */
export const FAILURE_ACTIONS = ['pause', 'continue', 'rollback'] as const;
/** Whether the new task starts before the old one stops (Docker's --update-order). */
export const UPDATE_ORDERS = ['stop-first', 'start-first'] as const;
/** The states of Docker's UpdateStatus. */
export const UPDATE_STATES = ['updating', 'paused', 'completed', 'rollback_started', 'rollback_paused', 'rollback_completed'] as const;

/** One rollout's pacing and failure policy; durations are milliseconds. */
export const UpdateConfigRecordSchema = z.looseObject({
  /** Tasks replaced at once; 0: all at once. */
  parallelism: z.number().int().min(0).max(10_000),
  /** Wait between the end of one batch and the start of the next. */
  delayMs: z.number().int().min(0),
  order: z.enum(UPDATE_ORDERS),
  /** rollback is not offered in a rollback config (Docker: a rollback cannot roll back). */
  failureAction: z.enum(FAILURE_ACTIONS),
  /** How long a new task has to become ready before it counts as failed. */
  monitorMs: z.number().int().min(0),
  /** Failed new tasks over replicas above which failureAction applies (0: the first failure). */
  maxFailureRatio: z.number().min(0).max(1),
});
/** A stored update or rollback config. */
export type UpdateConfigRecord = z.infer<typeof UpdateConfigRecordSchema>;

/** Docker's defaults for both --update-* and --rollback-*. */
export const DEFAULT_UPDATE_CONFIG: UpdateConfigRecord = {
  parallelism: 1,
  delayMs: 0,
  order: 'stop-first',
  failureAction: 'pause',
  monitorMs: 5000,
  maxFailureRatio: 0,
};

/** Where the latest rollout stands, as `service inspect` shows it. */
export const UpdateStatusRecordSchema = z.looseObject({
  state: z.enum(UPDATE_STATES),
  startedAt: z.iso.datetime(),
  completedAt: z.iso.datetime().optional(),
  message: z.string(),
  /** Ids of new tasks that failed during this rollout (a set: recording one twice is a no-op). */
  failedTasks: z.array(z.string()).optional(),
});
/** A stored update status. */
export type UpdateStatusRecord = z.infer<typeof UpdateStatusRecordSchema>;

/**
 * The spec a rollout replaced, with the version its tasks carry: what outdated tasks keep running until they are
 * replaced, and what `service rollback` returns to.
 */
export const PreviousSpecRecordSchema = z.looseObject({
  version: z.number().int().min(0),
  command: z.array(z.string()).min(1),
  env: z.record(z.string(), z.string()).optional(),
  networks: z.array(z.string()),
  ports: z.array(z.looseObject({ published: z.number().int(), target: z.number().int(), protocol: z.enum(['tcp', 'udp']), mode: z.enum(['ingress', 'host']), policy: z.enum(['cluster', 'local']) })),
  replicas: z.number().int().min(0).max(10_000),
  user: z.string().optional(),
  capAdd: z.array(z.string()).optional(),
  capDrop: z.array(z.string()).optional(),
  /** The --force counter of that spec. */
  forceUpdate: z.number().int().min(0).optional(),
});
/** A stored previous spec. */
export type PreviousSpecRecord = z.infer<typeof PreviousSpecRecordSchema>;

/** Update/rollback settings as `service create`/`update` give them (merged over the stored or default ones). */
export const UpdateConfigSpecSchema = z.strictObject({
  parallelism: z.number().int().min(0).max(10_000).optional(),
  delayMs: z.number().int().min(0).optional(),
  order: z.enum(UPDATE_ORDERS).optional(),
  failureAction: z.enum(FAILURE_ACTIONS).optional(),
  monitorMs: z.number().int().min(0).optional(),
  maxFailureRatio: z.number().min(0).max(1).optional(),
});
/** Partial update settings. */
export type UpdateConfigSpec = z.input<typeof UpdateConfigSpecSchema>;
