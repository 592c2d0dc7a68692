import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { knownState } from './fixtures.test-data.js';
import { hostFirewallRuleSets } from './host-firewall.js';
import { hostRuleSet, renderRestore, taskRuleSet } from './iptables-render.js';
import { computeMeshPlan } from './published-ports.js';

// Run with UPDATE_GOLDEN=1 to rewrite the files after an intended change; review the diff.
function golden(name: string, actual: string): void {
  const path = fileURLToPath(new URL(`./__golden__/${name}`, import.meta.url));
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, actual);
  expect(existsSync(path), `${path} is missing: run with UPDATE_GOLDEN=1 once and review it`).toBe(true);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}

describe('golden rule sets for a known state (node n1)', () => {
  const plan = computeMeshPlan(knownState());

  it('host namespace: iptables-restore input on a fresh host', () => {
    golden('host.iptables-restore', renderRestore(hostRuleSet(plan.host), new Map()) ?? '');
  });

  it('ingress_sbox: VirtualServices for the VIP layer', () => {
    golden('sbox-virtual-services.json', `${JSON.stringify(plan.sbox.virtualServices, null, 2)}\n`);
  });

  it('tasks: redirects and return routes', () => {
    const text = plan.tasks
      .map((t) => `# task ${t.taskId}\n${renderRestore(taskRuleSet(t), new Map()) ?? ''}# return route ${JSON.stringify(t.returnRoute)}\n`)
      .join('\n');
    golden('tasks.txt', text);
  });

  it('health ports and sysctls', () => {
    golden(
      'node-extras.json',
      `${JSON.stringify({ health: plan.health, hostSysctls: plan.host.sysctls, sboxSysctls: plan.sbox.sysctls }, null, 2)}\n`,
    );
  });

  it('host firewall: localnet guard, gwbridge isolation, VXLAN peers, each an owner on a fresh host', () => {
    const sets = hostFirewallRuleSets({
      gwbridge: plan.host.gwbridge,
      legs: [
        { hostIf: 'mn-sbox', address: plan.host.sboxAddress },
        { hostIf: 'mg0a1b2c3d4e5', address: '172.18.0.3' },
      ],
      vxlanPeers: ['192.0.2.3', '192.0.2.2'],
    });
    golden('host-firewall.iptables-restore', sets.map((s) => `# owner ${s.comment}\n${renderRestore(s, new Map()) ?? ''}`).join('\n'));
  });
});
