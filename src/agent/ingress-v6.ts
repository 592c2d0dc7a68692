import { addressIpv6, ipv6On, isDualStack } from '../model/dual-stack.js';
import type { MeshInput } from '../mesh/mesh-input.js';
import type { MeshPlan, ReturnRoute } from '../mesh/mesh-plan.js';
import { ingressV6Plan, returnRoute6, type IngressV6Plan } from '../mesh/published-ports-v6.js';
import { gwbridgeIpv6, type GwLeg6 } from './gwbridge-v6.js';
import type { NodePlan, NodeSettings } from './node-plan.js';

// The node plan's v6 published ports, in one place so node-plan.ts calls it in a line or two: nothing at all unless
// the ingress network is dual stack (a v4-only cluster plans exactly what it planned before).

/** The ingress sandbox leg's v6 side, or nothing while the ingress network is v4 only. */
export function ingressLeg6(ingress: NodePlan['ingress'], gw: NodeSettings['gwbridge']): { v6?: GwLeg6 } {
  if (!ingress || !isDualStack(ingress.network)) return {};
  const g6 = gwbridgeIpv6(gw);
  return { v6: { ip6: g6.sbox6, gateway6: g6.gateway6 } };
}

/** The v6 twin of the node's mesh plan, or null while the ingress network is v4 only. */
export function ingressV6(ingress: NodePlan['ingress'], gw: NodeSettings['gwbridge'], plan: MeshPlan, input: MeshInput): (IngressV6Plan & { returnRoute6(route: ReturnRoute | null): ReturnRoute | null }) | null {
  if (!ingress || !isDualStack(ingress.network)) return null;
  const sboxIngress6 = addressIpv6(ingress.network, ingress.endpoint);
  if (sboxIngress6 === undefined) return null;
  const g6 = gwbridgeIpv6(gw);
  const net = ingress.network;
  const addrs = { sboxGw6: g6.sbox6, gwSubnet6: g6.subnet6, sboxIngress6, taskIngress6: (ip4: string) => ipv6On(net, ip4), ingressSubnet6: net.subnet6! };
  return { ...ingressV6Plan(plan, input, addrs), returnRoute6: (route) => returnRoute6(route, addrs) };
}
