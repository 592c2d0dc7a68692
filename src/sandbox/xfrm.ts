import { createRequire } from 'node:module';
import type * as NL from 'netlink';
import { HostNamespaceRefusedError, NetlinkError, toNetlinkError } from './errors.js';
import { homeNetnsIdentity, netnsIdentity, withNetns } from './netns-switch.js';
import {
  decodePolicy,
  decodeSa,
  DUMP_POLICY_REQUEST,
  DUMP_SA_REQUEST,
  encodeOutPolicy,
  encodePolicyId,
  encodeSa,
  encodeSaId,
  NETLINK_XFRM,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  XfrmMsg,
  type XfrmOutPolicy,
  type XfrmPolicyView,
  type XfrmSa,
  type XfrmSaView,
} from './xfrm-codec.js';

// The netlink package is CommonJS with a native binding; only its generic socket is used here.
const nl = createRequire(import.meta.url)('netlink') as typeof NL;

const TIMEOUT_MS = 5000;

/** The kernel cannot make ESP states: no ESP or no AES-GCM in it. */
export class EspUnavailableError extends NetlinkError {
  constructor(errno: string, object: string) {
    super(
      errno,
      'create',
      object,
      // ENOENT also when seqiv finds no "stdrng" to seed its IVs from: seen in the kernel VM before drbg was loaded.
      'this kernel has no ESP or no rfc4106(gcm(aes)): it needs CONFIG_INET_ESP, CONFIG_CRYPTO_GCM, CONFIG_CRYPTO_SEQIV and a default RNG (modprobe esp4 gcm seqiv drbg); until then the encrypted networks carry no traffic from this host, never cleartext',
    );
  }
}

/**
 * XFRM (IPsec states and policies) over NETLINK_XFRM for one network namespace: with rtnl.ts the
 * only code in meshnet that speaks netlink to the kernel's networking. The socket is created
 * inside the namespace and stays there, so every call acts on it. One request at a time.
 */
export class Xfrm {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly sock: NL.NetlinkSocket,
    private readonly where: string,
    private readonly writable: boolean,
  ) {}

  /** Opens XFRM netlink inside the namespace at `netnsPath` (null: this process's own, only with allowHostNamespace). */
  static open(netnsPath: string | null, opts: { allowHostNamespace?: boolean } = {}): Xfrm {
    const isHome = netnsPath === null || netnsIdentity(netnsPath) === homeNetnsIdentity();
    const sock = withNetns(netnsPath, () => nl.createNetlink(NETLINK_XFRM));
    return new Xfrm(sock, netnsPath ?? 'the home namespace', !isHome || opts.allowHostNamespace === true);
  }

  /** Closes the socket. */
  close(): void {
    this.sock.close();
  }

  private async call(operation: string, object: string, type: number, payload: Buffer, flags = 0): Promise<Buffer[]> {
    if (operation !== 'list' && !this.writable) throw new HostNamespaceRefusedError(`${operation} ${object}`);
    const run = this.queue.then(async () => {
      try {
        const [msgs] = await this.sock.request(type, payload, { flags, timeout: TIMEOUT_MS });
        return msgs.map((m) => m.data);
      } catch (err) {
        const e = toNetlinkError(err, operation, `${object} in ${this.where}`);
        // ESP or its AEAD missing from the kernel: the state's type or algorithm is not found.
        if (type === XfrmMsg.NEWSA && (e.errno === 'EPROTONOSUPPORT' || e.errno === 'ENOSYS' || e.errno === 'ENOENT')) throw new EspUnavailableError(e.errno, `${object} in ${this.where}`);
        throw e;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Every IPv4 SA in the namespace. */
  async states(): Promise<XfrmSaView[]> {
    const replies = await this.call('list', 'xfrm states', XfrmMsg.GETSA, DUMP_SA_REQUEST, NLM_F_DUMP);
    return replies.map((d) => decodeSa(d)).filter((s): s is XfrmSaView => s !== undefined);
  }

  /** Every IPv4 policy in the namespace. */
  async policies(): Promise<XfrmPolicyView[]> {
    const replies = await this.call('list', 'xfrm policies', XfrmMsg.GETPOLICY, DUMP_POLICY_REQUEST, NLM_F_DUMP);
    return replies.map((d) => decodePolicy(d)).filter((p): p is XfrmPolicyView => p !== undefined);
  }

  /** Adds an SA, or replaces the one with the same destination and SPI. */
  async putState(sa: XfrmSa): Promise<void> {
    const object = `ESP state ${sa.src}->${sa.dst} spi 0x${sa.spi.toString(16)}`;
    try {
      await this.call('create', object, XfrmMsg.NEWSA, encodeSa(sa), NLM_F_CREATE | NLM_F_EXCL);
    } catch (err) {
      if (!(err instanceof NetlinkError) || err.errno !== 'EEXIST') throw err;
      await this.call('update', object, XfrmMsg.UPDSA, encodeSa(sa));
    }
  }

  /** Deletes an SA; one already gone is fine. */
  async deleteState(id: { dst: string; spi: number }): Promise<void> {
    try {
      await this.call('delete', `ESP state to ${id.dst} spi 0x${id.spi.toString(16)}`, XfrmMsg.DELSA, encodeSaId(id));
    } catch (err) {
      if (!(err instanceof NetlinkError) || (err.errno !== 'ENOENT' && err.errno !== 'ESRCH')) throw err;
    }
  }

  /** Adds or replaces (same selector, direction and mark) an outbound policy. */
  async putOutPolicy(p: XfrmOutPolicy): Promise<void> {
    await this.call('update', `ESP policy ${p.src}->${p.dst} udp/${p.dport}`, XfrmMsg.UPDPOLICY, encodeOutPolicy(p), NLM_F_CREATE);
  }

  /** Deletes an outbound policy; one already gone is fine. */
  async deleteOutPolicy(p: { src: string; dst: string; dport: number; mark: number }): Promise<void> {
    try {
      await this.call('delete', `ESP policy ${p.src}->${p.dst} udp/${p.dport}`, XfrmMsg.DELPOLICY, encodePolicyId(p));
    } catch (err) {
      if (!(err instanceof NetlinkError) || err.errno !== 'ENOENT') throw err;
    }
  }
}
