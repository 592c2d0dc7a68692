import { z } from 'zod';
import { InvalidSpecError } from './model-errors.js';
import { canonicalConstraint, constraintProblem } from './placement-constraints.js';

// A service's mode and placement (Docker's --mode, --constraint, --replicas-max-per-node) as stored and as users
// give them, and how create and update turn one into the other. Both fields are optional in records: absent means
// replicated and unconstrained, which is what records written before they existed meant.

/** Docker's service modes. */
export const SERVICE_MODES = ['replicated', 'global'] as const;
/** A service's mode. */
export type ServiceMode = (typeof SERVICE_MODES)[number];

/** Docker's upper bound is none; ours matches the replica bound. */
const MAX_PER_NODE = 10_000;

const constraintSchema = z.string().superRefine((text, ctx) => {
  const problem = constraintProblem(text);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const maxPerNodeSchema = z.number().int().min(0, 'replicas-max-per-node must be 0 (unlimited) or more').max(MAX_PER_NODE);

/** replicated or global. */
export const serviceModeSchema = z.enum(SERVICE_MODES, `mode must be one of ${SERVICE_MODES.join(', ')}`);

/** Stored placement: loose like every record, so a newer meshnet's fields survive; absent constraints: none. */
export const PlacementRecordSchema = z.looseObject({
  constraints: z.array(constraintSchema).optional(),
  maxReplicasPerNode: maxPerNodeSchema.optional(),
});
/** Stored placement. */
export type PlacementRecord = z.infer<typeof PlacementRecordSchema>;

/** Placement as users give it at create. */
export const PlacementSpecSchema = z.strictObject({
  constraints: z.array(constraintSchema).default([]),
  maxReplicasPerNode: maxPerNodeSchema.optional(),
});

/** What `service update` may change of placement. */
export const PlacementUpdateSchema = z.strictObject({
  constraintAdd: z.array(constraintSchema).optional(),
  constraintRm: z.array(constraintSchema).optional(),
  maxReplicasPerNode: maxPerNodeSchema.optional(),
});
/** A placement update. */
export type PlacementUpdate = z.input<typeof PlacementUpdateSchema>;

/** The mode and placement fields of a service, as stored. */
export interface PlacementFields {
  mode?: ServiceMode | undefined;
  placement?: PlacementRecord | undefined;
}

/**
 * The mode and placement to store for a new service; InvalidSpecError for a global service given replicas or a
 * per-node cap (a global service runs exactly one task per eligible node).
 */
export function placementAtCreate(name: string, spec: { mode?: ServiceMode | undefined; replicas?: number | undefined; placement?: { constraints?: string[] | undefined; maxReplicasPerNode?: number | undefined } | undefined }): PlacementFields {
  const global = spec.mode === 'global';
  if (global && spec.replicas !== undefined) {
    throw new InvalidSpecError(`service ${name}: replicas cannot be given for a global service (it runs one task on every eligible node); leave --replicas out or use --mode replicated`);
  }
  if (global && spec.placement?.maxReplicasPerNode !== undefined) {
    throw new InvalidSpecError(`service ${name}: replicas-max-per-node applies to replicated services; a global service runs one task per node`);
  }
  const constraints = unique((spec.placement?.constraints ?? []).map(canonicalConstraint));
  const max = spec.placement?.maxReplicasPerNode;
  return {
    ...(global ? { mode: 'global' as const } : {}),
    ...(constraints.length > 0 || (max !== undefined && max > 0) ? { placement: { constraints, ...(max ? { maxReplicasPerNode: max } : {}) } } : {}),
  };
}

/**
 * The mode and placement after an update of `current` (fields a newer meshnet stored in placement are kept).
 * InvalidSpecError when the update changes the mode (fixed at creation, as in Docker), gives a global service
 * replicas or a cap, or removes a constraint the service does not have.
 */
export function placementAfterUpdate(
  current: PlacementFields & { name: string },
  update: { mode?: ServiceMode | undefined; replicas?: number | undefined; placement?: PlacementUpdate | undefined },
): PlacementFields {
  const currentMode = current.mode ?? 'replicated';
  if (update.mode !== undefined && update.mode !== currentMode) {
    throw new InvalidSpecError(`service ${current.name} is ${currentMode}; the mode is fixed at creation: remove the service and create it again with --mode ${update.mode}`);
  }
  if (currentMode === 'global' && update.replicas !== undefined) {
    throw new InvalidSpecError(`service ${current.name} is global: it runs one task on every eligible node, so it cannot be scaled; use --constraint-add to narrow its nodes`);
  }
  if (currentMode === 'global' && update.placement?.maxReplicasPerNode !== undefined) {
    throw new InvalidSpecError(`service ${current.name} is global: replicas-max-per-node applies to replicated services`);
  }
  const change = update.placement;
  if (!change) return { ...(current.mode ? { mode: current.mode } : {}), ...(current.placement ? { placement: current.placement } : {}) };
  const remove = new Set((change.constraintRm ?? []).map(canonicalConstraint));
  const before = current.placement?.constraints ?? [];
  for (const c of remove) {
    if (!before.includes(c)) {
      throw new InvalidSpecError(`service ${current.name} has no constraint ${c}${before.length ? ` (it has ${before.join(', ')})` : ''}; see meshnet service inspect ${current.name}`);
    }
  }
  const constraints = unique([...before.filter((c) => !remove.has(c)), ...(change.constraintAdd ?? []).map(canonicalConstraint)]);
  const max = change.maxReplicasPerNode ?? current.placement?.maxReplicasPerNode;
  const { constraints: _old, maxReplicasPerNode: _oldMax, ...kept } = current.placement ?? { constraints: [] };
  const empty = constraints.length === 0 && !max && Object.keys(kept).length === 0;
  return {
    ...(current.mode ? { mode: current.mode } : {}),
    ...(empty ? {} : { placement: { ...kept, constraints, ...(max ? { maxReplicasPerNode: max } : {}) } }),
  };
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

/** Only the mode and placement fields that are set, to spread into a stored record. */
export function presentPlacement(s: PlacementFields): PlacementFields {
  return { ...(s.mode !== undefined ? { mode: s.mode } : {}), ...(s.placement !== undefined ? { placement: s.placement } : {}) };
}

/** The highest slot a service's tasks may hold: its replicas, or for a global service any below attached tasks' slots. */
export function maxSlotOf(service: { mode?: ServiceMode | undefined; replicas: number }, externalSlotBase: number): number {
  return service.mode === 'global' ? externalSlotBase - 1 : service.replicas;
}
