import { describe, expect, it } from 'vitest';
import { HostNamespaceNotAllowedError } from './errors.js';
import { NftBackend } from './nft-backend.js';

describe('NftBackend construction', () => {
  it('refuses the namespace meshnet runs in unless explicitly allowed', () => {
    expect(() => new NftBackend(null)).toThrow(HostNamespaceNotAllowedError);
    const allowed = new NftBackend(null, { allowHostNamespace: true });
    expect(allowed.kind).toBe('nftables');
    allowed.close(); // nothing was started: constructing touches no kernel state
  });
});
