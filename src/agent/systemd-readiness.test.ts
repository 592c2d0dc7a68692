import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger } from '../log/logger.js';
import { SystemdReadiness, type CommandRunner } from './systemd-readiness.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({ write: (chunk, _enc, cb) => (lines.push(JSON.parse(String(chunk)) as Record<string, unknown>), cb()) });
  return { lines, log: createLogger({ destination }) };
}

describe('SystemdReadiness', () => {
  it('does nothing without NOTIFY_SOCKET', async () => {
    const calls: string[][] = [];
    const run: CommandRunner = async (argv) => (calls.push(argv), { code: 0, stderr: '' });
    const { log, lines } = capture();
    const r = new SystemdReadiness(undefined, 42, log, run);
    r.passFinished();
    await new Promise((res) => setImmediate(res));
    expect(calls).toEqual([]);
    expect(lines).toEqual([]);
  });

  it('sends READY=1 once, after the first pass, naming the agent as the sender', async () => {
    const calls: { argv: string[]; socket: string | undefined }[] = [];
    const run: CommandRunner = async (argv, env) => (calls.push({ argv, socket: env['NOTIFY_SOCKET'] }), { code: 0, stderr: '' });
    const { log, lines } = capture();
    const r = new SystemdReadiness('/run/systemd/notify', 4242, log, run);
    r.passFinished();
    r.passFinished();
    await new Promise((res) => setImmediate(res));
    expect(calls).toEqual([{ argv: ['systemd-notify', '--ready', '--no-block', '--pid=4242', '--status=first reconcile pass done'], socket: '/run/systemd/notify' }]);
    expect(lines[0]).toMatchObject({ level: 'info', event: 'systemd.ready_notified' });
  });

  it('warns, with what to install, when systemd-notify fails', async () => {
    const { log, lines } = capture();
    const r = new SystemdReadiness('/x', 1, log, async () => ({ code: null, stderr: 'spawn systemd-notify ENOENT' }));
    r.passFinished();
    await new Promise((res) => setImmediate(res));
    expect(lines[0]).toMatchObject({ level: 'warn', event: 'systemd.notify_failed', error: 'spawn systemd-notify ENOENT' });
    expect(String(lines[0]!['hint'])).toMatch(/install systemd/);
  });
});
