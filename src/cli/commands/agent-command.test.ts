import { describe, expect, it } from 'vitest';
import { flagOf } from './agent-command.js';

describe('flagOf', () => {
  it('names the flag an operator typed for each agent config key', () => {
    expect(flagOf('readyDeadlineSeconds')).toBe('ready-deadline-seconds');
    expect(flagOf('resyncSeconds')).toBe('resync-seconds');
    expect(flagOf('leaseTtlSeconds')).toBe('lease-ttl');
    expect(flagOf('keyRotationSeconds')).toBe('key-rotation');
    expect(flagOf('nodeName')).toBe('name');
    expect(flagOf('advertiseAddr')).toBe('advertise-addr');
    expect(flagOf('vtepProbeIntervalMs')).toBe('vtep-probe-interval-ms');
  });
});
