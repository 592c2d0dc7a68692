import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer } from '../../src/api/api-server.js';
import { apiListenPlan } from '../../src/api/api-listen.js';
import { addTaskLogRoutes } from '../../src/api/task-log-routes.js';
import { printTaskLogs, type LogTarget } from '../../src/api/task-log-fetch.js';
import { silentLogger } from '../../src/log/logger.js';

// Task logs through the agent API on its unix socket, on a full-size rotated log (3 files of 16 MiB,
// the supervisor's defaults): how long a --tail takes, how fast a whole log streams, and how soon a
// followed line arrives. Bounded: one log, 3 tails, 1 full read, 20 followed lines.

const MIB = 1024 * 1024;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshnet-bench-logs-'));
  let api: ApiServer | null = null;
  try {
    const log = join(dir, 'stdout.log');
    const line = `${'x'.repeat(99)}\n`;
    const file = line.repeat((16 * MIB) / line.length);
    for (const name of [`${log}.2`, `${log}.1`, log]) writeFileSync(name, file);
    mkdirSync(join(dir, 'state'));
    api = await ApiServer.listen(apiListenPlan({ advertiseAddr: '127.0.0.1', stateDir: join(dir, 'state'), tls: undefined }), silentLogger());
    let ended = false;
    addTaskLogRoutes(api, { node: 'bench', logPath: () => log, ended: () => ended });
    const target: LogTarget = { label: 't.1@bench', taskId: 'bench123', service: 't', slot: 1, node: 'bench', endpoint: api.endpoint };
    let bytes = 0;
    let text = '';
    const opts = { follow: false, signal: new AbortController().signal, format: 'prefixed' as const, write: (t: string) => ((bytes += t.length), (text += t.length < 1000 ? t : '')) };

    const tails: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await printTaskLogs([target], { ...opts, tail: 100 });
      tails.push(performance.now() - t);
    }
    const tailMs = Math.min(...tails);
    console.log(`--tail 100 of a 48 MiB log (3 rotated files): ${tailMs.toFixed(1)} ms (best of 3)`);

    bytes = 0;
    const t = performance.now();
    await printTaskLogs([target], opts);
    const fullMs = performance.now() - t;
    const mibPerS = bytes / MIB / (fullMs / 1000);
    console.log(`whole log, prefixed lines printed: ${(bytes / MIB).toFixed(0)} MiB in ${fullMs.toFixed(0)} ms (${mibPerS.toFixed(0)} MiB/s)`);

    text = '';
    const following = printTaskLogs([target], { ...opts, follow: true, tail: 0 });
    await new Promise((r) => setTimeout(r, 300));
    const lags: number[] = [];
    for (let i = 0; i < 20; i++) {
      const sent = performance.now();
      appendFileSync(log, `follow ${i}\n`);
      while (!text.includes(`follow ${i}\n`)) await new Promise((r) => setImmediate(r));
      lags.push(performance.now() - sent);
    }
    ended = true;
    await following;
    lags.sort((a, b) => a - b);
    const p50 = lags[Math.floor(lags.length / 2)]!;
    const max = lags[lags.length - 1]!;
    console.log(`-f: a line written reaches the client after ${p50.toFixed(0)} ms (p50), ${max.toFixed(0)} ms (max) of 20 (poll every 200 ms)`);
    console.log(JSON.stringify({ bench: 'api/task-logs', tail100Ms: Math.round(tailMs * 10) / 10, fullLogMiBPerS: Math.round(mibPerS), followLagP50Ms: Math.round(p50), followLagMaxMs: Math.round(max) }));
  } finally {
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
