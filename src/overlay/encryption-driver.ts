import { Xfrm } from '../sandbox/xfrm.js';
import { planXfrm, type XfrmOp } from './encryption-diff.js';
import { ESP_MARK, ESP_SELECTED_PORT, type EncryptionPlan } from './encryption-plan.js';

/** The XFRM adapter for encrypted overlays: reads the host's SAs and policies, applies the difference. */
export class EncryptionDriver {
  private xfrm: Xfrm | null = null;
  /** A null plan found nothing of meshnet's: later null plans need no dump (a cluster that never encrypts). */
  private clean = false;

  constructor(private readonly opts: { hostNetns: string | null; allowHostNamespace?: boolean }) {}

  /**
   * Makes the host's XFRM match `plan` (null: remove meshnet's SAs and policies, touching no other).
   * The kernel is read each time: this runs only when the plan changed or on a resync, and a
   * restarted agent adopts what is there (same SPIs and keys: no operation, no dropped packet).
   * A state that fails (a kernel without ESP) does not stop the policies: without their SA they
   * drop the traffic they select, so an encrypted network never goes out in cleartext.
   */
  async apply(plan: EncryptionPlan | null): Promise<{ ops: XfrmOp[] }> {
    if (plan === null && this.clean) return { ops: [] };
    this.xfrm ??= Xfrm.open(this.opts.hostNetns, { allowHostNamespace: this.opts.allowHostNamespace ?? false });
    const x = this.xfrm;
    const [states, policies] = [await x.states(), await x.policies()];
    const ops = planXfrm({ states, policies }, plan);
    let firstError: unknown = null;
    for (const op of ops) {
      try {
        switch (op.op) {
          case 'putState':
            await x.putState(op.sa);
            break;
          case 'putPolicy':
            await x.putOutPolicy(op.policy);
            break;
          case 'deletePolicy':
            await x.deleteOutPolicy({ src: op.src, dst: op.dst, dport: ESP_SELECTED_PORT, mark: ESP_MARK });
            break;
          case 'deleteState':
            await x.deleteState(op);
            break;
        }
      } catch (err) {
        firstError ??= err;
      }
    }
    if (firstError) throw firstError;
    this.clean = plan === null;
    return { ops };
  }

  /** Closes the XFRM socket; the kernel state stays. */
  close(): void {
    this.xfrm?.close();
    this.xfrm = null;
  }
}
