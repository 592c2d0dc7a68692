import { ESP_AEAD, ESP_ICV_BITS, IPPROTO_ESP, IPPROTO_UDP, type XfrmOutPolicy, type XfrmPolicyView, type XfrmSa, type XfrmSaView } from '../sandbox/xfrm-codec.js';
import { ESP_MARK, ESP_POLICY_PRIORITY, ESP_REPLAY_WINDOW, ESP_REQID, ESP_SELECTED_PORT, saKey, type EncryptionPlan } from './encryption-plan.js';

/** One XFRM change, in the order it must be made. */
export type XfrmOp =
  | { op: 'putState'; sa: XfrmSa }
  | { op: 'putPolicy'; policy: XfrmOutPolicy }
  | { op: 'deletePolicy'; src: string; dst: string }
  | { op: 'deleteState'; dst: string; spi: number; src: string };

/** What the kernel holds, as dumped. */
export interface ObservedXfrm {
  states: XfrmSaView[];
  policies: XfrmPolicyView[];
}

/** meshnet's SAs: ESP, transport mode, its reqid. */
export function ownState(s: XfrmSaView): boolean {
  return s.reqid === ESP_REQID && s.proto === IPPROTO_ESP;
}

/** meshnet's policies: outbound UDP to the VXLAN port carrying its mark. */
export function ownPolicy(p: XfrmPolicyView): boolean {
  return p.dir === 1 && p.proto === IPPROTO_UDP && p.dport === ESP_SELECTED_PORT && p.mark?.value === ESP_MARK && p.mark.mask === 0xffffffff;
}

/**
 * Pure: the operations that turn what the kernel holds into `desired` (null: nothing of meshnet's).
 * New states first (a new key receives before anyone sends with it), then the policies (which
 * switch the sending key, or start or stop encryption to a peer), then what is no longer wanted:
 * policies before the states they pin. Objects that are not meshnet's are never touched.
 */
export function planXfrm(observed: ObservedXfrm, desired: EncryptionPlan | null): XfrmOp[] {
  const ops: XfrmOp[] = [];
  const haveStates = new Map(observed.states.filter(ownState).map((s) => [`${s.dst}/${s.spi}`, s]));
  const havePolicies = new Map(observed.policies.filter(ownPolicy).map((p) => [`${p.src}>${p.dst}`, p]));
  const wantStates = new Set<string>();
  const wantPolicies = new Set<string>();
  for (const s of desired?.states ?? []) {
    const id = `${s.dst}/${s.spi}`;
    wantStates.add(id);
    const key = saKey(desired!.keys.get(s.keyTag)!, s.src, s.dst);
    const have = haveStates.get(id);
    const same = have && have.src === s.src && have.mode === 0 && have.aead?.name === ESP_AEAD && have.aead.icvBits === ESP_ICV_BITS && have.aead.key.equals(key);
    if (!same) ops.push({ op: 'putState', sa: { src: s.src, dst: s.dst, spi: s.spi, reqid: ESP_REQID, key, replayWindow: ESP_REPLAY_WINDOW } });
  }
  for (const p of desired?.policies ?? []) {
    const id = `${p.src}>${p.dst}`;
    wantPolicies.add(id);
    const have = havePolicies.get(id);
    const t = have?.tmpl;
    const same = have && have.srcPrefix === 32 && have.dstPrefix === 32 && have.priority === ESP_POLICY_PRIORITY && t && t.spi === p.spi && t.src === p.src && t.dst === p.dst && t.reqid === ESP_REQID && t.proto === IPPROTO_ESP && t.mode === 0;
    if (!same) ops.push({ op: 'putPolicy', policy: { src: p.src, dst: p.dst, dport: ESP_SELECTED_PORT, mark: ESP_MARK, priority: ESP_POLICY_PRIORITY, spi: p.spi, reqid: ESP_REQID } });
  }
  for (const [id, p] of havePolicies) if (!wantPolicies.has(id)) ops.push({ op: 'deletePolicy', src: p.src, dst: p.dst });
  for (const [id, s] of haveStates) if (!wantStates.has(id)) ops.push({ op: 'deleteState', src: s.src, dst: s.dst, spi: s.spi });
  return ops;
}
