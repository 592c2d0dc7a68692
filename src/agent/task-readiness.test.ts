import { describe, expect, it } from 'vitest';
import { boundPorts, taskReport } from './task-readiness.js';
import type { TaskInfo } from '../tasks/supervisor.js';

const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0B00007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0200FF0A:0050 6400000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
   3: 0200FF0A:1F90 6400000A:C351 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0000000000000000`;
const udp = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5 2 0000000000000000 0`;

describe('boundPorts', () => {
  it('lists TCP ports in LISTEN only, not established or TIME_WAIT ones, nor the resolver on 127.0.0.11', () => {
    expect([...boundPorts(tcp, 'tcp')].sort((a, b) => a - b)).toEqual([80]);
  });
  it('reads tcp6 tables: a dual-stack listener on :: (Node listen(port), iperf3 -s) counts', () => {
    const tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1451 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000200FF0A:0050 0000000000000000FFFF00006400000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 8 1 0000000000000000 20 4 30 10 -1`;
    expect([...boundPorts(tcp6, 'tcp')]).toEqual([5201]);
  });
  it('lists bound UDP ports', () => {
    expect([...boundPorts(udp, 'udp')]).toEqual([5353]);
  });
  it('ignores the header and blank or short lines', () => {
    expect(boundPorts('  sl local_address\n\n  0: garbage\n', 'tcp').size).toBe(0);
  });
});

describe('taskReport (the readiness predicate)', () => {
  const info: TaskInfo = { taskId: 't', state: 'running', pid: 10, adopted: false, restarts: 0, startedAt: new Date(0).toISOString(), lastExit: null, netnsPath: '/n', command: ['x'], logPath: '/l' };
  const ports = [{ protocol: 'tcp' as const, target: 80 }];
  const healthy = { status: 'healthy' as const, failingStreak: 0, log: [] };

  it('is running only when the process runs, listens and, with a health check, is healthy', () => {
    expect(taskReport(info, true, ports, 1_000)).toMatchObject({ state: 'running', ready: true, health: undefined });
    expect(taskReport(info, false, ports, 1_000)).toMatchObject({ state: 'starting', ready: false });
    expect(taskReport({ ...info, health: healthy }, true, ports, 1_000)).toMatchObject({ state: 'running', ready: true, health: healthy });
    expect(taskReport({ ...info, health: healthy }, false, ports, 1_000)).toMatchObject({ state: 'starting', ready: false });
    for (const status of ['starting', 'unhealthy'] as const) {
      expect(taskReport({ ...info, health: { status, failingStreak: 0, log: [] } }, true, ports, 1_000)).toMatchObject({ state: 'starting', ready: false });
    }
  });

  it('reports a task left down as failed, or shutdown once complete', () => {
    expect(taskReport({ ...info, state: 'failed', pid: null }, false, ports, 0).state).toBe('failed');
    expect(taskReport({ ...info, state: 'shutdown', pid: null, reason: 'exit 0' }, false, ports, 0)).toMatchObject({ state: 'shutdown', message: 'exit 0, complete' });
    expect(taskReport({ ...info, state: 'exited', pid: null }, false, ports, 0).state).toBe('starting');
  });
});
