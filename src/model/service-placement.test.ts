import { describe, expect, it } from 'vitest';
import { maxSlotOf, placementAfterUpdate, placementAtCreate } from './service-placement.js';
import { InvalidSpecError } from './model-errors.js';
import { ServiceRecordSchema, ServiceSpecSchema } from './records.js';

describe('placementAtCreate', () => {
  it('stores nothing for a replicated, unconstrained service: records look as before', () => {
    expect(placementAtCreate('web', { replicas: 3 })).toEqual({});
    expect(placementAtCreate('web', { placement: { constraints: [], maxReplicasPerNode: 0 } })).toEqual({});
  });

  it('stores global mode and canonical, de-duplicated constraints', () => {
    expect(placementAtCreate('web', { mode: 'global', placement: { constraints: ['node.labels.zone == eu', 'node.labels.zone==eu'] } })).toEqual({
      mode: 'global',
      placement: { constraints: ['node.labels.zone==eu'] },
    });
    expect(placementAtCreate('web', { mode: 'replicated', placement: { constraints: [], maxReplicasPerNode: 2 } })).toEqual({ placement: { constraints: [], maxReplicasPerNode: 2 } });
  });

  it('refuses replicas or a per-node cap for a global service', () => {
    expect(() => placementAtCreate('web', { mode: 'global', replicas: 2 })).toThrow(/replicas cannot be given for a global service/);
    expect(() => placementAtCreate('web', { mode: 'global', placement: { maxReplicasPerNode: 1 } })).toThrow(InvalidSpecError);
  });
});

describe('placementAfterUpdate', () => {
  const web = { name: 'web', placement: { constraints: ['node.labels.zone==eu', 'node.id!=a'], maxReplicasPerNode: 2 } };

  it('keeps everything when the update does not touch placement', () => {
    expect(placementAfterUpdate(web, { replicas: 4 })).toEqual({ placement: web.placement });
    expect(placementAfterUpdate({ name: 'x' }, {})).toEqual({});
  });

  it('adds and removes constraints (by their canonical text) and changes the cap', () => {
    expect(placementAfterUpdate(web, { placement: { constraintRm: ['node.id != a'], constraintAdd: ['node.labels.disk==ssd'], maxReplicasPerNode: 0 } })).toEqual({
      placement: { constraints: ['node.labels.zone==eu', 'node.labels.disk==ssd'] },
    });
    // Removing everything leaves no placement field at all.
    expect(placementAfterUpdate(web, { placement: { constraintRm: ['node.labels.zone==eu', 'node.id!=a'], maxReplicasPerNode: 0 } })).toEqual({});
  });

  it('keeps fields a newer meshnet stored in placement', () => {
    const newer = { name: 'web', placement: { constraints: [], preferences: ['spread=node.labels.zone'] } };
    expect(placementAfterUpdate(newer, { placement: { constraintAdd: ['node.id==a'] } })).toEqual({ placement: { preferences: ['spread=node.labels.zone'], constraints: ['node.id==a'] } });
  });

  it('refuses removing a constraint the service does not have, changing the mode, and scaling a global service', () => {
    expect(() => placementAfterUpdate(web, { placement: { constraintRm: ['node.id==zz'] } })).toThrow(/has no constraint node\.id==zz \(it has node\.labels\.zone==eu, node\.id!=a\)/);
    expect(() => placementAfterUpdate(web, { mode: 'global' })).toThrow(/web is replicated; the mode is fixed at creation/);
    expect(placementAfterUpdate(web, { mode: 'replicated' })).toEqual({ placement: web.placement });
    const global = { name: 'g', mode: 'global' as const };
    expect(() => placementAfterUpdate(global, { replicas: 3 })).toThrow(/g is global: .* cannot be scaled/);
    expect(() => placementAfterUpdate(global, { placement: { maxReplicasPerNode: 1 } })).toThrow(InvalidSpecError);
    expect(placementAfterUpdate(global, { placement: { constraintAdd: ['node.labels.x==1'] } })).toEqual({ mode: 'global', placement: { constraints: ['node.labels.x==1'] } });
  });
});

describe('stored placement', () => {
  const base = { name: 'web', networks: [], vips: {}, endpointMode: 'vip', ports: [], replicas: 1, command: ['/bin/true'], lb: { scheduler: 'rr' } };

  it('a record with a bad constraint is invalid (reported), one without placement is as before', () => {
    expect(ServiceRecordSchema.safeParse(base).success).toBe(true);
    expect(ServiceRecordSchema.safeParse({ ...base, mode: 'global', placement: { constraints: ['node.labels.zone==eu'] } }).success).toBe(true);
    const bad = ServiceRecordSchema.safeParse({ ...base, placement: { constraints: ['node.role==manager'] } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toMatch(/unknown attribute "node.role"/);
    expect(ServiceRecordSchema.safeParse({ ...base, mode: 'job' }).success).toBe(false);
    // A newer meshnet may store placement without constraints: still readable.
    expect(ServiceRecordSchema.safeParse({ ...base, placement: { maxReplicasPerNode: 2, preferences: [] } }).success).toBe(true);
    expect(ServiceSpecSchema.safeParse({ name: 'w', command: ['x'], placement: { constraints: ['bad'] } }).success).toBe(false);
  });

  it('bounds slots by replicas, or below attached tasks for a global service', () => {
    expect(maxSlotOf({ replicas: 3 }, 100_001)).toBe(3);
    expect(maxSlotOf({ mode: 'global', replicas: 0 }, 100_001)).toBe(100_000);
  });
});
