import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TaskError } from './errors.js';
import { readBootId, readProcStat } from './proc-stat.js';

/** Another live supervisor owns the state directory. */
export class StateDirBusyError extends TaskError {
  constructor(
    readonly dir: string,
    readonly ownerPid: number,
  ) {
    super(
      'TASK_STATE_DIR_BUSY',
      `task state directory ${dir} is owned by a running supervisor (pid ${ownerPid}); stop that agent first or give this one its own state directory`,
    );
  }
}

interface Owner {
  pid: number;
  startTime: number;
  bootId: string;
}

// Directories owned by supervisors of this very process (the pid alone cannot tell them apart).
const ownedHere = new Set<string>();

function ownerAlive(owner: Owner): boolean {
  if (owner.bootId !== readBootId()) return false;
  const st = readProcStat(owner.pid);
  return st !== null && st.state !== 'Z' && st.startTime === owner.startTime;
}

function readOwner(path: string): Owner | null {
  try {
    const o = JSON.parse(readFileSync(path, 'utf8')) as Partial<Owner>;
    return typeof o.pid === 'number' && typeof o.startTime === 'number' && typeof o.bootId === 'string' ? (o as Owner) : null;
  } catch {
    return null;
  }
}

/**
 * Makes this process the only supervisor of `dir`: two would both restart the same dead task.
 * An owner file left by a dead process (an agent that crashed) is taken over.
 */
export function lockStateDir(dir: string): () => void {
  const path = join(dir, '.owner');
  if (ownedHere.has(dir)) throw new StateDirBusyError(dir, process.pid);
  const me: Owner = { pid: process.pid, startTime: readProcStat(process.pid)!.startTime, bootId: readBootId() };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, `${JSON.stringify(me)}\n`, { flag: 'wx', mode: 0o644 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const owner = readOwner(path);
      if (owner && owner.pid !== process.pid && ownerAlive(owner)) throw new StateDirBusyError(dir, owner.pid);
      rmSync(path, { force: true });
    }
  }
  ownedHere.add(dir);
  return () => {
    ownedHere.delete(dir);
    const owner = readOwner(path);
    if (owner && owner.pid === me.pid && owner.startTime === me.startTime) rmSync(path, { force: true });
  };
}
