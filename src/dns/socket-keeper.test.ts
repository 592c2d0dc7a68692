import { describe, expect, it } from 'vitest';
import { buildNameView } from './name-view.js';
import { keeperLayout, withViews } from './socket-keeper.js';

const front = buildNameView({ taskNetworks: ['front'], services: [{ name: 'web', endpointMode: 'vip', attachments: [{ network: 'front', vip: '10.0.1.2' }] }], tasks: [] });
const back = buildNameView({ taskNetworks: ['back'], services: [], tasks: [] });

describe('the keeper manifest', () => {
  it('places each namespace UDP then TCP after stderr, in order', () => {
    expect(keeperLayout([{ path: '/a', port: 40000 }, { path: '/b', port: 40001 }])).toEqual([
      { path: '/a', port: 40000, udp: 3, tcp: 4 },
      { path: '/b', port: 40001, udp: 5, tcp: 6 },
    ]);
  });

  it('stores each distinct view once, and none for a namespace without one', () => {
    const layout = keeperLayout([{ path: '/a', port: 1 }, { path: '/b', port: 2 }, { path: '/c', port: 3 }, { path: '/d', port: 4 }]);
    const out = withViews(layout, new Map([['/a', front], ['/b', back], ['/c', structuredClone(front)]]));
    expect(out.views).toEqual([front, back]);
    expect(out.sockets.map((s) => s.view)).toEqual([0, 1, 0, undefined]);
    // A layout that carried views before gets only the new ones.
    expect(withViews(out.sockets, new Map([['/d', back]])).sockets.map((s) => s.view)).toEqual([undefined, undefined, undefined, 0]);
  });
});
