import { describe, expect, it } from 'vitest';
import { capabilitiesInMask, CAPABILITIES, DEFAULT_CAPABILITIES, effectiveCapabilities, normalizeCapability } from './capabilities.js';

describe('normalizeCapability', () => {
  it('accepts Docker\'s spellings and refuses names Linux does not have', () => {
    expect(normalizeCapability('NET_BIND_SERVICE')).toBe('NET_BIND_SERVICE');
    expect(normalizeCapability('cap_net_admin')).toBe('NET_ADMIN');
    expect(normalizeCapability('all')).toBe('ALL');
    expect(normalizeCapability('NET_BIND')).toBeUndefined();
    expect(normalizeCapability('CAP_')).toBeUndefined();
  });
});

describe('effectiveCapabilities (moby TweakCapabilities)', () => {
  it('is Docker\'s default set without options, sorted by bit', () => {
    const caps = effectiveCapabilities();
    expect([...caps].sort()).toEqual([...DEFAULT_CAPABILITIES].sort());
    expect(caps.map((c) => CAPABILITIES.indexOf(c))).toEqual([...caps.map((c) => CAPABILITIES.indexOf(c))].sort((a, b) => a - b));
    expect(caps).not.toContain('SYS_ADMIN');
  });

  it('drops from and adds to the default set; an added capability wins over the same one dropped', () => {
    expect(effectiveCapabilities(['NET_ADMIN'], ['NET_RAW'])).toContain('NET_ADMIN');
    expect(effectiveCapabilities(['NET_ADMIN'], ['NET_RAW'])).not.toContain('NET_RAW');
    expect(effectiveCapabilities(['KILL'], ['KILL'])).toContain('KILL');
  });

  it('handles ALL on either side', () => {
    expect(effectiveCapabilities([], ['ALL'])).toEqual([]);
    expect(effectiveCapabilities(['NET_BIND_SERVICE'], ['ALL'])).toEqual(['NET_BIND_SERVICE']);
    const all = effectiveCapabilities(['ALL'], ['SYS_ADMIN']);
    expect(all).toHaveLength(CAPABILITIES.length - 1);
    expect(all).not.toContain('SYS_ADMIN');
  });
});

describe('capabilitiesInMask', () => {
  it('reads a /proc status mask', () => {
    expect(capabilitiesInMask('0000000000000401')).toEqual(['CHOWN', 'NET_BIND_SERVICE']);
    expect(capabilitiesInMask('000001ffffffffff')).toEqual([...CAPABILITIES]);
  });
});
