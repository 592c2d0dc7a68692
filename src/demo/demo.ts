/**
 * The multi-host demo: 3 simulated hosts (namespaces on an underlay bridge), a real `meshnet agent`
 * in each against the embedded store, a 3-replica web service published on 8000, and curl from
 * outside and from each host's localhost, printed as a table of who answered.
 *
 *   node dist/src/demo/demo.js up      build and leave it running
 *   node dist/src/demo/demo.js down    remove everything it made
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { Lab, LAB_ROOT, removeLab } from '../lab/lab.js';
import { ClusterLab, CLI_PATH, ECHO_HTTP } from '../lab/cluster-lab.js';
import { execIn } from '../sandbox/exec.js';
import { renderTable } from '../cli/table.js';

const ID = 'demo';
const ROOT = `${LAB_ROOT}/${ID}`;
const STORE = `sqlite:${ROOT}/state.db`;
const CLIENT_IP = '192.0.2.100';
const REQUESTS = 30;
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const say = (s: string) => process.stdout.write(`${s}\n`);
const step = (s: string) => process.stdout.write(`\n==> ${s}\n`);

function meshnet(args: string[], inherit = true): { code: number; stdout: string } {
  const r = spawnSync(process.execPath, [CLI_PATH, '--store', STORE, ...args], { stdio: inherit ? 'inherit' : 'pipe', encoding: 'utf8' });
  return { code: r.status ?? 1, stdout: r.stdout ?? '' };
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<string | true>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await check();
    if (r === true) return;
    if (r !== last) {
      say(`    ${r}`);
      last = r;
    }
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000}s (${last}); agent logs: ${ROOT}/host-*/agent.log`);
    await new Promise((res) => setTimeout(res, 300));
  }
}

async function up(): Promise<void> {
  if (existsSync(ROOT)) {
    step('removing the previous demo');
    down();
  }
  step('building 3 simulated hosts on an underlay bridge (192.0.2.0/24)');
  const lab = await Lab.create(3, { persistentId: ID });
  const client = await lab.addClient('client', CLIENT_IP);
  for (const h of lab.hosts) say(`    ${h.name}  ${h.underlayIp}  netns ${h.netns}`);
  say(`    client  ${CLIENT_IP}  netns ${client}`);

  step('starting a meshnet agent inside each host (embedded store: ' + STORE + ')');
  const cl = new ClusterLab(lab, ['--drain-seconds', '1']);
  for (const h of lab.hosts) {
    const a = cl.startAgent(h);
    say(`    ${h.name}: agent pid ${a.process.pid}, log ${a.log}`);
  }
  writeFileSync(`${ROOT}/agents.pids`, [...cl.agents.values()].map((a) => a.process.pid).join('\n'));
  await waitFor('3 nodes registering', 60_000, async () => {
    const n = await cl.withCluster(async (c) => (await c.listNodes()).length);
    return n === 3 ? true : `${n}/3 nodes registered`;
  });
  say('    3/3 nodes registered');

  step('meshnet service create --name web --replicas 3 --publish 8000:80 -- node echo-http.js --port 80');
  const created = meshnet(['service', 'create', '--name', 'web', '--replicas', '3', '--publish', '8000:80', '--timeout', '120', '--', process.execPath, ECHO_HTTP, '--port', '80']);
  if (created.code !== 0) throw new Error('service create failed (see above)');
  meshnet(['task', 'ls']);

  step(`curl port 8000 on every host from the client, and localhost:8000 inside each host, ${REQUESTS} times each`);
  const targets: { label: string; netns: string; url: string }[] = [
    ...lab.hosts.map((h) => ({ label: `client -> ${h.name} (${h.underlayIp}:8000)`, netns: client, url: `http://${h.underlayIp}:8000/` })),
    ...lab.hosts.map((h) => ({ label: `${h.name} -> localhost:8000`, netns: h.netns, url: 'http://localhost:8000/' })),
  ];
  // Wait until the mesh answers everywhere (rules land on every host within a pass or two).
  await waitFor('the published port answering on every host', 60_000, async () => {
    let ok = 0;
    for (const t of targets) if ((await execIn(t.netns, ['curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', t.url], { allowFailure: true })).stdout === '200') ok++;
    return ok === targets.length ? true : `${ok}/${targets.length} entry points answering`;
  });
  const answers = new Map<string, Map<string, number>>();
  const who = new Set<string>();
  let failures = 0;
  for (const t of targets) {
    const script = `for i in $(seq ${REQUESTS}); do curl -s -m 3 "$1" || echo FAILED; echo; done`;
    const out = await execIn(t.netns, ['sh', '-c', script, 'curl', t.url], { allowFailure: true, timeoutMs: 120_000 });
    const counts = new Map<string, number>();
    for (const line of out.stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
      const m = /^(\S+) on (\S+)/.exec(line);
      const key = m ? `${m[1]}@${m[2]}` : 'failed';
      if (!m) failures++;
      who.add(key);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    answers.set(t.label, counts);
  }
  const cols = [...who].sort();
  say(renderTable(['REQUESTS TO', ...cols], targets.map((t) => [t.label, ...cols.map((c) => answers.get(t.label)!.get(c) ?? 0)])));
  say(`\n${targets.length * REQUESTS} requests, ${failures} failed; every answer names the task (web.N) and the host it runs on.`);

  step('the cluster is still up: poke at it');
  const h = lab.hosts[0]!;
  say(`  meshnet --store ${STORE} service inspect web`);
  say(`  meshnet --store ${STORE} task ls`);
  say(`  nsenter --net=${h.netns} iptables -t nat -L DOCKER-INGRESS -n`);
  say(`  nsenter --net=${h.dir.path('ingress_sbox')} nft list table ip meshnet`);
  say(`  nsenter --net=${client} curl -s http://${h.underlayIp}:8000/`);
  say(`  nsenter --net=${h.netns} ip -d link; ls ${h.dir.dir}`);
  say(`  (meshnet is ${join(repo, 'bin/meshnet')})`);
  say('\nTear it all down with:  ./scripts/demo down');
  if (failures > 0) process.exitCode = 1;
}

function down(): void {
  if (existsSync(`${ROOT}/agents.pids`)) {
    for (const pid of readFileSync(`${ROOT}/agents.pids`, 'utf8').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
  removeLab(ID);
  say('demo removed: agents and tasks stopped, every namespace of the demo deleted');
}

const cmd = process.argv[2] ?? 'up';
if (cmd === 'up') {
  up().catch((err: Error) => {
    console.error(`demo failed: ${err.message}`);
    console.error(`agent logs are in ${ROOT}/host-*/agent.log; remove everything with: ./scripts/demo down`);
    process.exit(1);
  });
} else if (cmd === 'down') {
  down();
} else {
  console.error('usage: scripts/demo [up|down]');
  process.exit(2);
}
