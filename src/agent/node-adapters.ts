import type { NetnsDir } from '../sandbox/netns.js';
import { Rtnl } from '../sandbox/rtnl.js';
import { setSysctl } from '../sandbox/sysctl.js';
import { OverlayDriver } from '../overlay/overlay-driver.js';
import type { TaskSupervisor } from '../tasks/supervisor.js';
import type { DnsService } from '../dns/dns-service.js';
import type { HealthServers } from '../mesh/health-server.js';
import { applyHostRules, applyTaskRules } from '../mesh/iptables-apply.js';
import { IptablesWriter } from '../mesh/iptables-writer.js';
import { syncReturnRoute } from '../mesh/return-route.js';
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
  // One iptables writer per namespace: it remembers what it applied, so an unchanged pass forks nothing.
  const hostWriter = new IptablesWriter({ netns: deps.hostNetns, log: deps.log });
  const taskWriters = new Map<string, IptablesWriter>();
  return {
    namespaces: deps.netnsDir,
    sysctl: (netns, key, value) => setSysctl(netns ?? deps.hostNetns, key, value),
    gw,
    overlay: new OverlayDriver({ netnsDir: deps.netnsDir, hostNetns: deps.hostNetns, allowHostNamespace: true }),
    lbFor: (netns) => createLbBackend(deps.lbKind, netns),
    mesh: {
      applyHost: async (plan, opts) => (await applyHostRules(hostWriter, plan, opts)).changed,
      applyTask: async (rules, opts) => {
        let writer = taskWriters.get(rules.netns);
        if (!writer) taskWriters.set(rules.netns, (writer = new IptablesWriter({ netns: rules.netns, log: deps.log })));
        const changed = (await applyTaskRules(writer, rules, opts)).changed;
        const sb = Rtnl.open(rules.netns);
        try {
          return (await syncReturnRoute(sb, rules.returnRoute)) || changed;
        } finally {
          sb.close();
        }
      },
      forgetTask: (netns) => void taskWriters.delete(netns),
    },
    health: deps.health,
    dns: deps.dns,
    processes: deps.supervisor,
    close: () => host.close(),
  };
}
