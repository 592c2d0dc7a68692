import { describe, expect, it } from 'vitest';
import { desiredNode, PlanMemo } from './node-plan.js';
import { endpointsFixture, settingsFixture, snapshotFixture } from './agent-fixtures.test-data.js';
import { errorSurface, lbSeries, taskStateCounts } from './metric-series.js';
import type { LbTable } from '../vip/lb-table.js';

const planOf = (snap = snapshotFixture()) =>
  desiredNode(snap, settingsFixture('host-a'), { gwAddresses: {}, unusableExternal: new Set(), ingressEndpoints: endpointsFixture, now: Date.now() }, new PlanMemo());

describe('lbSeries', () => {
  it('names each frontend of the plan by its service, once, with every backend and weight', () => {
    const snap = snapshotFixture();
    const series = lbSeries(planOf(snap), snap);
    const vip = series.find((s) => s.frontend === '10.0.1.2/tcp');
    expect(vip).toEqual({ service: 'web', frontend: '10.0.1.2/tcp', backends: [1, 2, 3].map((i) => ({ backend: `10.0.1.${10 + i}`, weight: 1 })) });
    const ingress = series.find((s) => s.frontend === 'ingress:8000/tcp');
    expect(ingress?.service).toBe('web');
    expect(ingress?.backends.map((b) => b.backend).sort()).toEqual(['10.255.0.11', '10.255.0.12', '10.255.0.13']);
    // No frontend twice, although each local task namespace has its own table entry.
    expect(new Set(series.map((s) => `${s.service} ${s.frontend}`)).size).toBe(series.length);
  });

  it('counts a table shared by several namespaces once and keeps draining backends at weight 0', () => {
    const table: LbTable = {
      services: [
        { id: 'x-1', frontend: { kind: 'vip', address: '10.9.0.2', protocol: 'udp', port: 53 }, scheduler: 'rr', backends: [{ address: '10.9.0.5', port: 53, weight: 0 }] },
      ],
    };
    const series = lbSeries({ lbTables: [{ netns: '/a', table }, { netns: '/b', table }] }, { services: [] });
    // No service claims the VIP: the LB id names it.
    expect(series).toEqual([{ service: 'x-1', frontend: '10.9.0.2:53/udp', backends: [{ backend: '10.9.0.5:53', weight: 0 }] }]);
  });
});

describe('errorSurface', () => {
  it('reads the surface the reconciler puts first in each error', () => {
    expect(errorSurface('lb /run/x/netns/t-abc: nft: No such file')).toBe('lb');
    expect(errorSurface('prune: EBUSY')).toBe('prune');
    expect(errorSurface('process task0001: did not exit')).toBe('process');
    expect(errorSurface('Weird error')).toBe('other');
  });
});

describe('taskStateCounts', () => {
  it('counts every state, zeros included', () => {
    expect(taskStateCounts(['running', 'running', 'failed'])).toEqual({ starting: 0, running: 2, exited: 0, failed: 1, shutdown: 0 });
  });
});
