import { describe, expect, it } from 'vitest';
import { placementFromCreateFlags, placementFromUpdateFlags } from './placement-flags.js';
import { CliError, EXIT } from './cli-context.js';

const create = (o: Record<string, unknown>, replicasGiven = false) =>
  placementFromCreateFlags({ mode: 'replicated', constraint: [], replicasMaxPerNode: '0', ...o }, replicasGiven);
const usage = (fn: () => unknown, message: RegExp) => {
  expect(fn).toThrow(message);
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(EXIT.usage);
  }
};

describe('service create placement flags', () => {
  it('no flags: nothing to store', () => {
    expect(create({})).toEqual({});
  });

  it('global mode, canonical constraints and a cap', () => {
    expect(create({ mode: 'global', constraint: ['node.labels.zone == eu'] })).toEqual({ mode: 'global', placement: { constraints: ['node.labels.zone==eu'] } });
    expect(create({ replicasMaxPerNode: '2' }, true)).toEqual({ placement: { constraints: [], maxReplicasPerNode: 2 } });
  });

  it('bad input names the flag and exits 2', () => {
    usage(() => create({ mode: 'global' }, true), /--replicas cannot be used with --mode global/);
    usage(() => create({ mode: 'global', replicasMaxPerNode: '1' }), /--replicas-max-per-node cannot be used with --mode global/);
    usage(() => create({ constraint: ['node.role==manager'] }), /^--constraint: invalid constraint "node.role==manager": unknown attribute/);
    usage(() => create({ replicasMaxPerNode: '-1' }), /invalid --replicas-max-per-node "-1": a whole number from 0/);
  });
});

describe('service update placement flags', () => {
  it('nothing given: no change; otherwise the change, canonical', () => {
    expect(placementFromUpdateFlags({ constraintAdd: [], constraintRm: [] })).toBeUndefined();
    expect(placementFromUpdateFlags({ constraintAdd: ['node.id != a'], constraintRm: ['node.labels.x==1'], replicasMaxPerNode: '0' })).toEqual({
      constraintAdd: ['node.id!=a'],
      constraintRm: ['node.labels.x==1'],
      maxReplicasPerNode: 0,
    });
    usage(() => placementFromUpdateFlags({ constraintAdd: ['x'], constraintRm: [] }), /^--constraint-add: invalid constraint "x"/);
    usage(() => placementFromUpdateFlags({ constraintAdd: [], constraintRm: [], replicasMaxPerNode: 'two' }), /invalid --replicas-max-per-node "two"/);
  });
});
