/**
 * Time from `meshnet service create` to all tasks running, and to the published port answering on
 * every host, on 3 lab hosts with real agents. Run: npm run build && node dist/bench/agent/service-converge.js
 */
import { performance } from 'node:perf_hooks';
import { ClusterLab, ECHO_HTTP } from '../../src/lab/cluster-lab.js';
import { execIn } from '../../src/sandbox/exec.js';

const SIZES = (process.env.REPLICAS ?? '3,9').split(',').map(Number);

async function main(): Promise<void> {
  await ClusterLab.within(3, 'bench-converge', [], async (cl, lab) => {
    const client = await lab.addClient('client', '192.0.2.100');
    let t = performance.now();
    await cl.startAll();
    console.log(`3 agents registered in ${(performance.now() - t).toFixed(0)} ms`);
    let port = 8000;
    for (const replicas of SIZES) {
      const name = `svc${replicas}`;
      t = performance.now();
      const r = cl.cli(['service', 'create', '--name', name, '--replicas', String(replicas), '-p', `${port}:80`, '-d', '--', process.execPath, ECHO_HTTP, '--port', '80']);
      if (r.code !== 0) throw new Error(r.stderr);
      await cl.waitFor(`${name} running`, 300_000, async (c) => (await c.listTasks({ service: name })).filter((x) => x.state === 'running').length === replicas);
      const running = performance.now() - t;
      for (;;) {
        let ok = 0;
        for (const h of lab.hosts) {
          const out = await execIn(client, ['curl', '-s', '-m', '1', '-o', '/dev/null', '-w', '%{http_code}', `http://${h.underlayIp}:${port}/`], { allowFailure: true });
          if (out.stdout === '200') ok++;
        }
        if (ok === 3) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      const answering = performance.now() - t;
      console.log(`service create, ${String(replicas).padStart(2)} replicas: all running after ${running.toFixed(0)} ms, published port answering on all 3 hosts after ${answering.toFixed(0)} ms`);
      port++;
    }
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
