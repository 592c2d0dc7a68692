import type { ServiceRecord } from './records.js';

/** The fields of a service that say how its tasks' health is checked and how they are restarted. */
type Lifecycle = Pick<ServiceRecord, 'healthcheck' | 'restartPolicy'>;

/** A service's health check and restart policy, carried from spec to record; absent ones stay absent. */
export function lifecycleFields(s: Lifecycle): Lifecycle {
  return {
    ...(s.healthcheck !== undefined ? { healthcheck: s.healthcheck } : {}),
    ...(s.restartPolicy !== undefined ? { restartPolicy: s.restartPolicy } : {}),
  };
}

/** After an update: a given check or policy replaces the stored one whole, null removes the check (--no-healthcheck). */
export function lifecycleAfterUpdate(base: Lifecycle, input: { healthcheck?: Lifecycle['healthcheck'] | null; restartPolicy?: Lifecycle['restartPolicy'] }): Lifecycle {
  const healthcheck = input.healthcheck === null ? undefined : (input.healthcheck ?? base.healthcheck);
  return lifecycleFields({ healthcheck, restartPolicy: input.restartPolicy ?? base.restartPolicy });
}
