import type { Logger } from '../log/logger.js';
import type { TaskSupervisor } from '../tasks/supervisor.js';
import { apiListenPlan } from './api-listen.js';
import { ApiServer } from './api-server.js';
import { resolveApiTls, type ApiTlsFlags, type ApiTlsSource } from './api-tls.js';
import { addTaskLogRoutes } from './task-log-routes.js';

/** What an agent opens its API from. */
export interface AgentApiInput extends ApiTlsFlags {
  node: string;
  /** --api-addr as given. */
  apiAddr?: string | undefined;
  advertiseAddr: string;
  stateDir: string;
  /** The etcd client's TLS options: the default TLS material. */
  etcdTls?: ApiTlsSource | undefined;
  supervisor: TaskSupervisor;
  log: Logger;
}

/** Opens the agent's API (HTTPS with the cluster's certificates, or its unix socket) with the task log routes. */
export async function openAgentApi(i: AgentApiInput): Promise<ApiServer> {
  const plan = apiListenPlan({ apiAddr: i.apiAddr, advertiseAddr: i.advertiseAddr, stateDir: i.stateDir, tls: resolveApiTls(i, i.etcdTls) });
  const api = await ApiServer.listen(plan, i.log);
  addTaskLogRoutes(api, {
    node: i.node,
    logPath: (id) => i.supervisor.get(id)?.logPath,
    ended: (id) => {
      const t = i.supervisor.get(id);
      return t === undefined || t.state === 'failed' || t.state === 'shutdown';
    },
  });
  return api;
}
