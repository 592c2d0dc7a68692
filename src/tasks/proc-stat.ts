import { readFileSync, readlinkSync } from 'node:fs';

/** The fields of /proc/<pid>/stat the supervisor needs. */
export interface ProcStat {
  pid: number;
  /** R, S, D, Z (zombie), T, X (dead), ... */
  state: string;
  ppid: number;
  pgid: number;
  /** Clock ticks after boot when the process started: with the pid, unique within one boot. */
  startTime: number;
}

/**
 * Parses /proc/<pid>/stat. The command name (field 2) is in parentheses and may itself hold
 * spaces and parentheses, so fields are counted from the last ')'.
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).trim().split(' ');
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const state = rest[0];
  const ppid = Number(rest[1]);
  const pgid = Number(rest[2]);
  const startTime = Number(rest[19]);
  if (!Number.isInteger(pid) || !state || !Number.isInteger(ppid) || !Number.isInteger(pgid) || !Number.isInteger(startTime)) {
    throw new Error(`cannot parse /proc/<pid>/stat line: ${JSON.stringify(text.slice(0, 120))}`);
  }
  return { pid, state, ppid, pgid, startTime };
}

/** /proc/<pid>/stat of a process, or null when there is no such process. */
export function readProcStat(pid: number): ProcStat | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** argv of a process (empty for kernel threads and zombies), or null when it is gone. */
export function readCmdline(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return [];
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return null;
  }
}

/** Inode of the network namespace a process is in (equal to stat(namespace file).ino), or null. */
export function readProcessNetnsInode(pid: number): string | null {
  try {
    // readlink gives "net:[ino]"; every namespace lives on the one nsfs device, so the inode suffices.
    const link = readlinkSync(`/proc/${pid}/ns/net`);
    const m = /^net:\[(\d+)\]$/.exec(link);
    return m ? m[1]! : null;
  } catch {
    return null;
  }
}

let bootId: string | undefined;

/** This boot's random id: a pid and start time from another boot mean nothing. */
export function readBootId(): string {
  bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return bootId;
}
