import type { NetnsDir } from '../sandbox/netns.js';
import { Rtnl } from '../sandbox/rtnl.js';
import { setSysctl } from '../sandbox/sysctl.js';
import { OverlayDriver } from '../overlay/overlay-driver.js';
import type { TaskSupervisor } from '../tasks/supervisor.js';
import type { DnsService } from '../dns/dns-service.js';
import type { HealthServers } from '../mesh/health-server.js';
import { applyHostPlan, applyTaskPlan, removeHostRules } from '../mesh/iptables-apply.js';
import type { Logger } from '../log/logger.js';
import { GwBridge } from './gwbridge.js';
import { createLbBackend } from './lb-backend-choice.js';
import type { NodeAdapters } from './node-reconciler.js';
import type { NodeSettings } from './node-plan.js';

/** What the real adapters are built from. */
export interface RealAdapterDeps {
  settings: NodeSettings;
  hostNetns: string | null;
  netnsDir: NetnsDir;
  supervisor: TaskSupervisor;
  dns: DnsService;
  health: HealthServers;
  lbKind: 'nftables' | 'ipvs';
  log: Logger;
}

/** The real adapters: rtnetlink for the host and sandboxes, the iptables owner, nftables/IPVS, /proc/sys. */
export function realNodeAdapters(deps: RealAdapterDeps): NodeAdapters {
  const host = Rtnl.open(deps.hostNetns, { allowHostNamespace: true });
  const gw = new GwBridge(host, deps.settings.gwbridge);
  return {
    namespaces: deps.netnsDir,
    sysctl: (netns, key, value) => setSysctl(netns ?? deps.hostNetns, key, value),
    gw,
    overlay: new OverlayDriver({ netnsDir: deps.netnsDir, hostNetns: deps.hostNetns, allowHostNamespace: true }),
    lbFor: (netns) => createLbBackend(deps.lbKind, netns),
    mesh: {
      applyHost: async (plan) => (plan ? (await applyHostPlan(deps.hostNetns, plan)).changed : (await removeHostRules(deps.hostNetns)).changed),
      applyTask: async (rules) => {
        const changed = (await applyTaskPlan(rules.netns, rules)).changed;
        if (rules.returnRoute) {
          const rr = rules.returnRoute;
          const sb = Rtnl.open(rules.netns);
          try {
            for (const route of rr.routes) {
              const spec: Parameters<Rtnl['replaceRoute']>[0] = { dst: route.to === 'default' ? 'default' : route.to, dev: rr.device, table: rr.table };
              if (route.via) spec.gateway = route.via;
              await sb.replaceRoute(spec);
            }
            await sb.replaceRule({ from: rr.from, table: rr.table, priority: rr.priority });
          } finally {
            sb.close();
          }
        }
        return changed;
      },
      forgetTask: () => undefined,
    },
    health: deps.health,
    dns: deps.dns,
    processes: deps.supervisor,
    close: () => host.close(),
  };
}
