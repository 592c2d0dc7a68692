import { describe, expect, it } from 'vitest';
import { countConntrack } from './conntrack-counts.js';

const TABLE = [
  'ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.100 dst=172.18.0.2 sport=40000 dport=8000 src=10.255.0.11 dst=10.255.0.2 sport=80 dport=40000 [ASSURED] mark=8256 zone=0 use=2',
  'ipv4     2 tcp      6 117 TIME_WAIT src=192.0.2.100 dst=172.18.0.2 sport=40001 dport=8000 src=10.255.0.11 dst=10.255.0.2 sport=80 dport=40001 [ASSURED] mark=8256 zone=0 use=2',
  'ipv4     2 udp      17 29 src=192.0.2.100 dst=172.18.0.2 sport=5000 packets=1 bytes=33 dport=5353 src=10.255.0.12 dst=10.255.0.2 sport=5353 dport=5000 packets=2 bytes=70 mark=0 zone=0 use=2',
  // Not balanced: the reply comes from where the packet went.
  'ipv4     2 tcp      6 10 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=22 src=10.0.0.2 dst=10.0.0.1 sport=22 dport=1 use=1',
  'ipv4     2 icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=1 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=1 use=1',
].join('\n');

describe('conntrack counts per frontend and backend', () => {
  it('counts DNATed connections by the backend that answers, with packets and bytes when accounted', () => {
    expect(countConntrack(TABLE)).toEqual([
      { protocol: 'tcp', dst: '172.18.0.2', dport: 8000, backend: '10.255.0.11', backendPort: 80, connections: 2 },
      { protocol: 'udp', dst: '172.18.0.2', dport: 5353, backend: '10.255.0.12', backendPort: 5353, connections: 1, packets: 3, bytes: 103 },
    ]);
  });

  it('reads an empty or missing table as nothing', () => {
    expect(countConntrack('')).toEqual([]);
  });
});
