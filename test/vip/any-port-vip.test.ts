import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../lab/lab.js';
import { NftBackend } from '../../src/vip/nft/nft-backend.js';
import type { LbTable } from '../../src/vip/lb-table.js';

// An every-port VIP in a real kernel: two ports of one VIP reach both backends at the port the
// client used; the table reads back as applied and a new backend object adopts it unchanged.
const SERVER = "for (const p of [3000, 4000]) require('http').createServer((q,s)=>s.end(process.env.NAME+':'+p)).listen(p,'0.0.0.0')";
const VIP = '10.9.0.100';
let lab: Lab;
let client: string;
const backends: string[] = [];

const table = (weights: number[]): LbTable => ({
  services: [
    {
      id: 'api-tcp0',
      frontend: { kind: 'vip', address: VIP, protocol: 'tcp', port: 0 },
      scheduler: 'rr',
      backends: weights.map((weight, i) => ({ address: `10.9.0.${11 + i}`, port: 0, weight })),
    },
  ],
});

beforeAll(async () => {
  lab = await Lab.create(0, { tag: 'anyport' });
  const router = lab.netns('router');
  await lab.exec(router, ['ip', 'link', 'add', 'br0', 'type', 'bridge']);
  await lab.exec(router, ['ip', 'addr', 'add', '10.9.0.1/24', 'dev', 'br0']);
  await lab.exec(router, ['ip', 'link', 'set', 'br0', 'up']);
  const names = ['client', 'b1', 'b2'];
  for (const [i, name] of names.entries()) {
    const ns = lab.netns(name);
    const ip = name === 'client' ? '10.9.0.10' : `10.9.0.${10 + i}`;
    await lab.exec(router, ['ip', 'link', 'add', `p-${name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await lab.exec(router, ['ip', 'link', 'set', `p-${name}`, 'master', 'br0', 'up']);
    await lab.exec(ns, ['sh', '-c', `ip link set lo up && ip addr add ${ip}/24 dev eth0 && ip link set eth0 up`]);
    if (name === 'client') client = ns;
    else {
      backends.push(ns);
      lab.spawn(ns, [process.execPath, '-e', SERVER], { NAME: name });
    }
  }
  for (const [i, ns] of backends.entries()) {
    for (const port of [3000, 4000]) await lab.waitForHttp(ns, `http://10.9.0.${11 + i}:${port}/`);
  }
});

afterAll(async () => {
  await lab?.destroy();
});

async function answers(port: number, n: number): Promise<string[]> {
  const out = await lab.exec(client, ['sh', '-c', `for i in $(seq ${n}); do curl -s -m 2 http://${VIP}:${port}/ || echo FAILED; echo; done`]);
  return out.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

describe('every-port VIP in the kernel (nftables)', () => {
  it('spreads connections on any port over every backend, keeping the port', async () => {
    const lb = new NftBackend(client);
    try {
      await lb.apply(table([1, 1]));
      for (const port of [3000, 4000]) {
        const got = await answers(port, 6);
        expect(got.sort()).toEqual([`b1:${port}`, `b1:${port}`, `b1:${port}`, `b2:${port}`, `b2:${port}`, `b2:${port}`]);
      }
      expect(await lb.read()).toEqual(table([1, 1]));
    } finally {
      lb.close();
    }
  });

  it('is adopted by a new backend object with no change, and a drained backend gets no new connections', async () => {
    const lb = new NftBackend(client);
    try {
      expect((await lb.apply(table([1, 1]))).changes).toBe(0);
      await lb.apply(table([1, 0]));
      expect(new Set(await answers(4000, 6))).toEqual(new Set(['b1:4000']));
      expect((await lb.read()).services[0]!.backends).toEqual(table([1, 0]).services[0]!.backends);
    } finally {
      lb.close();
    }
  });
});
