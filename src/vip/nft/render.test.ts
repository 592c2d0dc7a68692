import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InvalidLbTableError } from './errors.js';
import { renderLbTable, slotShares } from './render.js';
import { SAMPLE_TABLE } from './sample-table.fixture.js';

const golden = (name: string) => fileURLToPath(new URL(`./__golden__/${name}`, import.meta.url));

function expectGolden(name: string, text: string): void {
  // UPDATE_GOLDEN=1 rewrites the file; review the diff before committing it.
  if (process.env.UPDATE_GOLDEN) writeFileSync(golden(name), text);
  expect(text).toBe(readFileSync(golden(name), 'utf8'));
}

describe('renderLbTable', () => {
  it('renders the sample table exactly as the golden file (loaded into nft 1.0.6 by the integration test suite)', () => {
    expectGolden('sample-table.nft', renderLbTable(SAMPLE_TABLE));
  });

  it('renders an empty table as the skeleton only', () => {
    expectGolden('empty-table.nft', renderLbTable({ services: [] }));
  });

  it('is deterministic: service and backend order do not change the output', () => {
    const shuffled = {
      services: [...SAMPLE_TABLE.services].reverse().map((s) => ({ ...s, backends: [...s.backends].reverse() })),
    };
    expect(renderLbTable(shuffled)).toBe(renderLbTable(SAMPLE_TABLE));
  });

  it('gives weight-aware schedulers slots in proportion to weight, capped at 256', () => {
    const b = (weight: number) => ({ address: '10.0.0.1', port: 1, weight });
    expect(slotShares('wrr', [b(2), b(4)])).toEqual([1, 2]);
    expect(slotShares('rr', [b(2), b(4)])).toEqual([1, 1]);
    const big = slotShares('wrr', [b(65535), b(1)]);
    expect(big.reduce((x, y) => x + y)).toBeLessThanOrEqual(256);
    expect(big[1]).toBe(1);
  });

  it('rejects tables it cannot render, with the reason', () => {
    const vip = { kind: 'vip' as const, address: '10.0.0.2', protocol: 'tcp' as const, port: 80 };
    expect(() => renderLbTable({ services: [{ id: 'Bad Id', frontend: vip, scheduler: 'rr', backends: [] }] })).toThrow(InvalidLbTableError);
    expect(() =>
      renderLbTable({
        services: [
          { id: 'a', frontend: vip, scheduler: 'rr', backends: [] },
          { id: 'b', frontend: vip, scheduler: 'rr', backends: [] },
        ],
      }),
    ).toThrow(/same frontend/);
    expect(() => renderLbTable({ services: [{ id: 'a', frontend: { ...vip, address: 'fe80::1' }, scheduler: 'rr', backends: [] }] })).toThrow(/IPv4/);
    expect(() =>
      renderLbTable({ services: [{ id: 'a', frontend: vip, scheduler: 'rr', backends: [{ address: '10.0.0.9', port: 80, weight: -1 }] }] }),
    ).toThrow(/weight/);
  });
});
