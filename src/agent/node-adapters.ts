import type { NetnsDir } from '../sandbox/netns.js';
import { Rtnl } from '../sandbox/rtnl.js';
import { ensureSysctl } from '../sandbox/sysctl.js';
import { OverlayDriver } from '../overlay/overlay-driver.js';
import { EncryptionDriver } from '../overlay/encryption-driver.js';
import type { TaskSupervisor } from '../tasks/supervisor.js';
import type { DnsService } from '../dns/dns-service.js';
import { HealthServers } from '../mesh/health-server.js';
import { applyHostRules, applyTaskRules } from '../mesh/iptables-apply.js';
import { emptyHostRuleSet, TASK_COMMENT } from '../mesh/iptables-render.js';
import { IptablesWriter } from '../mesh/iptables-writer.js';
import { syncReturnRoute } from '../mesh/return-route.js';
import { ipv6ReturnRouteNetlink } from '../mesh/return-route-v6.js';
import { DNS_NAT_COMMENT, resolverNatRuleSet } from '../dns/resolver-nat.js';
import type { Logger } from '../log/logger.js';
import { GwBridge } from './gwbridge.js';
import { createLbBackend } from './lb-backend-choice.js';
import { DualStackLb, libnftablesIo } from '../vip/dual-stack-lb.js';
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
  /** The root logger: each part adds its own component. */
  log: Logger;
}

/** The real adapters: rtnetlink for the host and sandboxes, the iptables owner, nftables/IPVS, /proc/sys. */
export function realNodeAdapters(deps: RealAdapterDeps): NodeAdapters {
  const host = Rtnl.open(deps.hostNetns, { allowHostNamespace: true });
  const gw = new GwBridge(host, deps.settings.gwbridge);
  const encryption = new EncryptionDriver({ hostNetns: deps.hostNetns, allowHostNamespace: true });
  // One iptables writer per namespace: it remembers what it applied, so an unchanged pass forks nothing.
  const meshLog = deps.log.child({ component: 'mesh' });
  const hostWriter = new IptablesWriter({ netns: deps.hostNetns, log: meshLog });
  // The host's ip6tables writer exists only once some plan has v6 published ports: a v4-only node forks no ip6tables.
  let hostWriter6: IptablesWriter | undefined;
  // Health ports on the host's v6 addresses: a v6-only socket per port beside the v4 one, once a plan asks for it.
  let health6: HealthServers | undefined;
  const taskWriters = new Map<string, IptablesWriter>();
  const writerFor = (netns: string): IptablesWriter => {
    let w = taskWriters.get(netns);
    if (!w) taskWriters.set(netns, (w = new IptablesWriter({ netns, log: meshLog })));
    return w;
  };
  return {
    namespaces: deps.netnsDir,
    sysctl: (netns, key, value) => ensureSysctl(netns ?? deps.hostNetns, key, value),
    gw,
    overlay: new OverlayDriver({ netnsDir: deps.netnsDir, hostNetns: deps.hostNetns, allowHostNamespace: true }),
    encryption,
    // v6 services (dual-stack networks only) go to an ip6 nftables table beside the v4 backend.
    lbFor: (netns) => {
      const writer = writerFor(netns);
      return new DualStackLb(createLbBackend(deps.lbKind, netns, deps.log, writer), netns, libnftablesIo(netns, writer.generations));
    },
    mesh: {
      applyHost: async (plan, opts) => (await applyHostRules(hostWriter, plan, opts)).changed,
      // A v6 underlay's VXLAN filter is an ip6tables owner: the v6 writer, made only then.
      applyHostFirewall: async (set, opts) => (await (set.family === 'ipv6' ? (hostWriter6 ??= new IptablesWriter({ netns: deps.hostNetns, log: meshLog, family: 'ipv6' })) : hostWriter).apply(set, opts)).changed,
      applyHost6: async (set, opts) => {
        if (!set && !hostWriter6) return false;
        hostWriter6 ??= new IptablesWriter({ netns: deps.hostNetns, log: meshLog, family: 'ipv6' });
        return (await hostWriter6.apply(set ?? emptyHostRuleSet(), opts)).changed;
      },
      applyTask: async (rules, opts) => {
        const changed = (await applyTaskRules(writerFor(rules.netns), rules, opts)).changed;
        const sb = Rtnl.open(rules.netns);
        try {
          const changed4 = (await syncReturnRoute(sb, rules.returnRoute)) || changed;
          return rules.returnRoute6 === undefined ? changed4 : (await syncReturnRoute(ipv6ReturnRouteNetlink(sb), rules.returnRoute6)) || changed4;
        } finally {
          sb.close();
        }
      },
      forgetTask: (netns) => void taskWriters.delete(netns),
      // Both owners of a task's nat table (its redirects, its resolver's NAT): every namespace read by one
      // process. A failed read is the apply's to meet and report.
      prefetchTasks: (netnsList) => IptablesWriter.warmMany(netnsList.map(writerFor), [TASK_COMMENT, DNS_NAT_COMMENT], 'nat'),
    },
    health: {
      reconcile: async (plans) => {
        let changes = await deps.health.reconcile(plans);
        const v6 = plans.filter((p) => p.v6);
        if (v6.length > 0 || health6) changes += await (health6 ??= new HealthServers(deps.hostNetns, '::')).reconcile(v6);
        return changes;
      },
    },
    dns: {
      attach: async (sandbox, view) => void (await deps.dns.attach(sandbox, view)),
      update: async (sandbox, view) => deps.dns.update(sandbox, view),
      detach: (sandbox) => deps.dns.detach(sandbox),
      portOf: (sandbox) => deps.dns.portOf(sandbox),
      // The resolver serves each task on 127.0.0.11 at a port of its own; NAT in the task maps :53 to it
      // (Docker's DOCKER_OUTPUT/DOCKER_POSTROUTING), so a task may bind 0.0.0.0:53 itself.
      applyNat: async (sandbox, port, opts) => (await writerFor(sandbox).apply(resolverNatRuleSet(port), opts)).changed,
    },
    processes: deps.supervisor,
    close: () => {
      host.close();
      encryption.close();
      void health6?.close();
    },
  };
}
