import type { LbTable, VirtualService } from '../../src/vip/lb-table.js';

/** A VIP table of `services` services with `backends` backends each, on 10.96.0.0/12 and 10.128.0.0/9. */
export function syntheticTable(services: number, backends: number): LbTable {
  const out: VirtualService[] = [];
  for (let s = 0; s < services; s++) {
    out.push({
      id: `s${s}`,
      frontend: { kind: 'vip', address: `10.${96 + (s >> 16)}.${(s >> 8) & 255}.${s & 255}`, protocol: 'tcp', port: 80 },
      scheduler: 'rr',
      backends: Array.from({ length: backends }, (_, b) => ({ address: backendAddress(s, b), port: 8080, weight: 1 })),
    });
  }
  return { services: out };
}

/** Address of backend `b` of service `s` (unique per pair). */
export function backendAddress(s: number, b: number): string {
  const n = s * 64 + b;
  return `10.${128 + ((n >> 16) & 127)}.${(n >> 8) & 255}.${n & 255}`;
}
