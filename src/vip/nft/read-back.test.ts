import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { LbTable } from '../lb-table.js';
import { NftReadError } from './errors.js';
import { parseKernelTable } from './read-back.js';
import { sortedBackends } from './render.js';
import { SAMPLE_TABLE } from './sample-table.fixture.js';

/** What read-back can promise: backends in address order, port 0 as the frontend's port, services by id. */
function normalized(t: LbTable): LbTable {
  return {
    services: t.services
      .map((s) => ({ ...s, backends: sortedBackends(s.backends.map((b) => (b.port === 0 ? { ...b, port: s.frontend.port } : b))) }))
      .sort((a, b) => (a.id < b.id ? -1 : 1)),
  };
}

describe('parseKernelTable', () => {
  it('reads back the sample table from what nft 1.0.6 printed for it (nft -j list table ip meshnet)', () => {
    const json = readFileSync(new URL('./__golden__/sample-table.json', import.meta.url), 'utf8');
    const parsed = parseKernelTable(json);
    expect(parsed.skeletonComplete).toBe(true);
    const got = normalized(parsed.table);
    expect(got).toEqual(normalized(SAMPLE_TABLE));
  });

  it('says when the skeleton is incomplete, and rejects output that is not nft JSON', () => {
    expect(parseKernelTable('{"nftables":[{"table":{"family":"ip","name":"meshnet"}}]}').skeletonComplete).toBe(false);
    expect(() => parseKernelTable('not json')).toThrow(NftReadError);
    expect(() => parseKernelTable('{}')).toThrow(NftReadError);
  });
});
