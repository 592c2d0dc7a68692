import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CorruptTaskMetaError } from './errors.js';
import { judgeIdentity, parseTaskMeta, readPidFile, readTaskMeta, taskPaths, writeTaskMeta, type ObservedProcess, type TaskMeta } from './task-meta.js';

const BOOT = '0b7d6a9e-1111-2222-3333-444455556666';

const meta: TaskMeta = {
  version: 1,
  taskId: 'web.1',
  fingerprint: 'abc',
  spec: { netnsPath: '/run/meshnet/netns/web.1', command: ['node', 'server.js'] },
  state: 'running',
  pid: 4242,
  startTime: 987654,
  bootId: BOOT,
  startedAt: '2026-01-01T00:00:00.000Z',
  crashes: [],
  restarts: 0,
  lastExit: null,
};

const sameProcess: ObservedProcess = {
  stat: { pid: 4242, state: 'S', ppid: 1, pgid: 4242, startTime: 987654 },
  cmdline: ['node', 'server.js'],
  netnsInode: '4026532999',
};

describe('judgeIdentity', () => {
  it('adopts the recorded process', () => {
    expect(judgeIdentity(meta, 4242, sameProcess, BOOT, '4026532999')).toEqual({ alive: true });
  });

  it('adopts a process that rewrote its argv (nginx) or whose namespace file is gone', () => {
    expect(judgeIdentity(meta, 4242, { ...sameProcess, cmdline: ['nginx: master process'] }, BOOT, null)).toEqual({ alive: true });
  });

  it('refuses a recycled pid: same number, another start time', () => {
    const recycled = { ...sameProcess, stat: { ...sameProcess.stat!, startTime: 1_000_000 } };
    const v = judgeIdentity(meta, 4242, recycled, BOOT, '4026532999');
    expect(v.alive).toBe(false);
    expect(!v.alive && v.reason).toMatch(/another process/);
  });

  it('refuses records from another boot, pid files that disagree, zombies, gone processes', () => {
    expect(judgeIdentity(meta, 4242, sameProcess, 'other-boot', '4026532999').alive).toBe(false);
    expect(judgeIdentity(meta, 4243, sameProcess, BOOT, '4026532999').alive).toBe(false);
    expect(judgeIdentity(meta, null, sameProcess, BOOT, '4026532999').alive).toBe(false);
    expect(judgeIdentity(meta, 4242, { ...sameProcess, stat: { ...sameProcess.stat!, state: 'Z' } }, BOOT, '4026532999').alive).toBe(false);
    expect(judgeIdentity(meta, 4242, { stat: null, cmdline: null, netnsInode: null }, BOOT, '4026532999').alive).toBe(false);
    expect(judgeIdentity({ ...meta, pid: null }, 4242, sameProcess, BOOT, '4026532999').alive).toBe(false);
  });

  it('refuses a process in another network namespace or a kernel thread', () => {
    const v = judgeIdentity(meta, 4242, { ...sameProcess, netnsInode: '4026531840' }, BOOT, '4026532999');
    expect(!v.alive && v.reason).toMatch(/network namespace/);
    expect(judgeIdentity(meta, 4242, { ...sameProcess, cmdline: [] }, BOOT, '4026532999').alive).toBe(false);
  });
});

describe('meta.json and pid files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshnet-task-meta-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trip, with the pid file in step', () => {
    const paths = taskPaths(dir, 'web.1');
    writeTaskMeta(paths, meta);
    expect(readTaskMeta(paths)).toEqual(meta);
    expect(readFileSync(paths.pid, 'utf8')).toBe('4242\n');
    expect(readPidFile(paths)).toBe(4242);
    writeTaskMeta(paths, { ...meta, pid: null, startTime: null });
    expect(readPidFile(paths)).toBeNull();
  });

  it('report a missing record as null and a damaged one as CorruptTaskMetaError', () => {
    const paths = taskPaths(dir, 'none');
    expect(readTaskMeta(paths)).toBeNull();
    expect(() => parseTaskMeta('/x/meta.json', '{')).toThrow(CorruptTaskMetaError);
    expect(() => parseTaskMeta('/x/meta.json', JSON.stringify({ ...meta, pid: -1 }))).toThrow(/pid/);
    expect(() => parseTaskMeta('/x/meta.json', JSON.stringify({ ...meta, version: 2 }))).toThrow(/version/);
  });

  it('reject pid files that do not hold a pid', () => {
    const paths = taskPaths(dir, 'web.1');
    writeFileSync(paths.pid, '12abc\n');
    expect(readPidFile(paths)).toBeNull();
    writeFileSync(paths.pid, '0\n');
    expect(readPidFile(paths)).toBeNull();
  });
});
