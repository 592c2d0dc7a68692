import { describe, expect, it } from 'vitest';
import { applyNodeChange, nodeInfoAtRegistration, nodeViews } from './node-info.js';
import type { NodeInfoRecord } from './records.js';

const t0 = new Date('2026-01-01T00:00:00Z');
const t1 = new Date('2026-01-02T00:00:00Z');
const info: NodeInfoRecord = { id: 'a', name: 'a', underlayIp: '192.0.2.1', availability: 'drain', labels: { zone: 'w' }, createdAt: t0.toISOString(), updatedAt: t0.toISOString() };

describe('nodeInfoAtRegistration', () => {
  it('writes nothing when the record already names this node at this address', () => {
    expect(nodeInfoAtRegistration({ id: 'a', name: 'a', underlayIp: '192.0.2.1', labels: { other: 'x' } }, info, t1)).toBeUndefined();
  });

  it('takes a new address but keeps availability, labels, creation time and fields it does not know', () => {
    const next = nodeInfoAtRegistration({ id: 'a', name: 'a', underlayIp: '192.0.2.9' }, { ...info, futureField: 1 }, t1);
    expect(next).toEqual({ ...info, futureField: 1, underlayIp: '192.0.2.9', updatedAt: t1.toISOString() });
  });

  it('starts a new node active, with the labels it registered', () => {
    expect(nodeInfoAtRegistration({ id: 'b', name: 'b', underlayIp: '192.0.2.2', labels: { gpu: '1' } }, undefined, t1)).toMatchObject({ availability: 'active', labels: { gpu: '1' }, createdAt: t1.toISOString() });
  });
});

describe('applyNodeChange', () => {
  it('sets availability, adds and removes labels, and leaves the input untouched', () => {
    const next = applyNodeChange(info, { availability: 'active', labelAdd: { rack: '3' }, labelRm: ['zone'] }, t1);
    expect(next).toMatchObject({ availability: 'active', labels: { rack: '3' }, updatedAt: t1.toISOString() });
    expect(info.labels).toEqual({ zone: 'w' });
  });
});

describe('nodeViews', () => {
  it('joins live records and persistent ones: down without a lease, active for an older agent without a record', () => {
    const live = [{ id: 'c', name: 'c', underlayIp: '192.0.2.3', lease: '7', labels: { old: 'y' } }];
    expect(nodeViews(live, [info])).toEqual([
      { id: 'a', name: 'a', address: '192.0.2.1', status: 'down', availability: 'drain', labels: { zone: 'w' } },
      { id: 'c', name: 'c', address: '192.0.2.3', status: 'ready', availability: 'active', labels: { old: 'y' }, lease: '7' },
    ]);
  });
});
