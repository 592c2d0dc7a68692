import { describe, expect, it } from 'vitest';
import { buildNameView, validateNameView } from './name-view.js';
import { sampleView } from './test-fixtures.js';
import { InvalidDnsInputError } from './errors.js';

describe('buildNameView', () => {
  it('keeps only the task’s networks, in its order, with running tasks only', () => {
    const v = sampleView();
    expect(v.networks.map((n) => n.name)).toEqual(['front', 'back']);
    const front = v.networks[0]!;
    expect(front.services.map((s) => s.name)).toEqual(['web']);
    expect(front.services[0]!.taskIps).toEqual(['10.0.1.3', '10.0.1.4', '10.0.1.5']);
    expect(front.tasks.map((t) => t.name)).toEqual(['web.1.aaa', 'web.2.bbb', 'web.3.ccc']);
    const back = v.networks[1]!;
    expect(back.services.map((s) => [s.name, s.endpointMode, s.vip, s.taskIps])).toEqual([
      ['db', 'dnsrr', null, ['10.0.2.10', '10.0.2.11']],
      ['web', 'vip', '10.0.2.2', ['10.0.2.3', '10.0.2.4']],
    ]);
    expect(JSON.stringify(v)).not.toContain('secret');
  });

  it('is deterministic whatever the input order, so views compare as plain data', () => {
    const a = sampleView();
    const b = buildNameView({
      taskNetworks: ['front', 'back'],
      services: [{ name: 'web', endpointMode: 'vip', attachments: [{ network: 'front', vip: '10.0.1.2' }] }],
      tasks: [
        { name: 'b', service: 'web', running: true, ips: [{ network: 'front', ip: '10.0.1.10' }] },
        { name: 'a', service: 'web', running: true, ips: [{ network: 'front', ip: '10.0.1.9' }] },
      ],
    });
    expect(b.networks[0]!.tasks.map((t) => t.name)).toEqual(['a', 'b']);
    expect(b.networks[0]!.services[0]!.taskIps).toEqual(['10.0.1.9', '10.0.1.10']);
    expect(validateNameView(a)).toEqual(a);
  });
});

describe('validateNameView', () => {
  it('rejects bad names and addresses with the path of the field', () => {
    const v = sampleView();
    v.networks[0]!.services[0]!.vip = '10.0.1';
    expect(() => validateNameView(v)).toThrow(/networks\.0\.services\.0\.vip/);
    const w = sampleView();
    w.networks[0]!.tasks[0]!.name = 'bad name';
    expect(() => validateNameView(w)).toThrow(InvalidDnsInputError);
    expect(() => validateNameView({ networks: [{ name: 'a'.repeat(64), services: [], tasks: [] }] })).toThrow(/not a valid DNS name/);
  });
});
