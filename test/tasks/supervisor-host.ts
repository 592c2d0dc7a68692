// A stand-in for the agent in its own process: starts one task, prints it, then idles until
// the test kills it. Proves tasks outlive the process that started them.
// Usage: node dist/test/tasks/supervisor-host.js <stateDir> <netnsPath>
import { TaskSupervisor } from '../../src/tasks/supervisor.js';

const [stateDir, netnsPath] = process.argv.slice(2);
if (!stateDir || !netnsPath) throw new Error('usage: supervisor-host.js <stateDir> <netnsPath>');
const sup = new TaskSupervisor({ stateDir });
const info = await sup.ensureRunning({ taskId: 'orphan.1', netnsPath, command: ['sleep', '60'], resolvConf: 'nameserver 127.0.0.11\n' });
process.stdout.write(`${JSON.stringify(info)}\n`);
setInterval(() => undefined, 60_000);
