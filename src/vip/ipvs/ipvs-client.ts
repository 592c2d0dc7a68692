/**
 * Thin adapter from the IPVS codec to a generic-netlink socket. Holds no policy: every
 * method is one kernel request (or one dump).
 */
// Only the genl part of the package: its index also loads rtnetlink, nl80211 and wireguard
// tables, which costs seconds of startup on a slow (emulated) CPU.
import { createGenericNetlink, type GenericNetlinkSocket } from 'netlink/dist/genl/genl.js';
import { Commands as GenlCommands } from 'netlink/dist/genl/structs.js';
import {
  IPVS_GENL_NAME,
  IPVS_GENL_VERSION,
  decodeDestReply,
  decodeServiceReply,
  decodeTimeouts,
  encodeIpvsRequest,
  type IpvsDest,
  type IpvsDestKey,
  type IpvsDestStatus,
  type IpvsRequest,
  type IpvsService,
  type IpvsServiceKey,
  type IpvsTimeouts,
} from './codec.js';

/**
 * Runs `fn` synchronously with the calling thread inside a network namespace (for example
 * `(fn) => withNetns(path, fn)`); the netlink socket is created inside it and stays there.
 */
export type EnterNamespace = <T>(fn: () => T) => T;

/** The IPVS generic-netlink family does not exist in this kernel. */
export class IpvsUnavailableError extends Error {
  readonly code = 'IPVS_UNAVAILABLE';
  constructor(cause: string) {
    super(
      `the kernel has no IPVS generic-netlink family (${cause}): load it with \`modprobe ip_vs\` ` +
        '(and the scheduler modules ip_vs_rr, ip_vs_wrr, ...), or run with `--lb-backend nftables`',
    );
    this.name = 'IpvsUnavailableError';
  }
}

/** The kernel refused an IPVS request. */
export class IpvsRequestError extends Error {
  readonly code = 'IPVS_REQUEST_FAILED';
  /** Errno name from the kernel, e.g. EEXIST, ESRCH (no such service), ENOENT (no such destination). */
  readonly errno: string;
  constructor(what: string, errno: string) {
    super(`IPVS ${what} failed: ${errno}${hint(errno)}`);
    this.name = 'IpvsRequestError';
    this.errno = errno;
  }
}

function hint(errno: string): string {
  switch (errno) {
    case 'ENOENT':
      return ' (no such destination, or the scheduler module is not loaded: modprobe ip_vs_<scheduler>)';
    case 'ESRCH':
      return ' (no such virtual service)';
    case 'EEXIST':
      return ' (it already exists)';
    case 'EPERM':
      return ' (needs CAP_NET_ADMIN in the namespace)';
    default:
      return '';
  }
}

function errnoOf(e: unknown): string {
  const m = /Request rejected: (\S+)/.exec(e instanceof Error ? e.message : String(e));
  return m?.[1] ?? (e instanceof Error ? e.message : String(e));
}

/** One IPVS session on one network namespace. Close it when done. */
export class IpvsClient {
  private constructor(
    private readonly socket: GenericNetlinkSocket,
    private readonly familyId: number,
  ) {}

  /** Open a socket (inside the namespace when `enterNamespace` is given) and resolve the IPVS family. */
  static async open(enterNamespace?: EnterNamespace): Promise<IpvsClient> {
    const create = () => createGenericNetlink();
    const socket = enterNamespace ? enterNamespace(create) : create();
    try {
      let replies;
      try {
        replies = await socket.ctrlRequest(GenlCommands.GET_FAMILY, { familyName: IPVS_GENL_NAME }, { timeout: 5000 });
      } catch (e) {
        throw new IpvsUnavailableError(errnoOf(e));
      }
      const id = replies[0]?.familyId;
      if (id === undefined) throw new IpvsUnavailableError('no family id in the controller reply');
      return new IpvsClient(socket, id);
    } catch (e) {
      socket.socket.close();
      throw e;
    }
  }

  private async send(req: IpvsRequest, what: string): Promise<Buffer[]> {
    const e = encodeIpvsRequest(req);
    try {
      const [msgs] = await this.socket.request(this.familyId, e.cmd, IPVS_GENL_VERSION, e.payload, { flags: e.flags, timeout: 5000 });
      return msgs.map((m) => m.data);
    } catch (err) {
      throw new IpvsRequestError(what, errnoOf(err));
    }
  }

  /** Every virtual service in the namespace. */
  async listServices(): Promise<IpvsService[]> {
    return (await this.send({ op: 'dumpServices' }, 'list services')).map((d) => decodeServiceReply(d));
  }

  /** One service, or undefined when the kernel has none with that key. */
  async getService(key: IpvsServiceKey): Promise<IpvsService | undefined> {
    try {
      const [d] = await this.send({ op: 'getService', key }, 'get service');
      return d ? decodeServiceReply(d) : undefined;
    } catch (e) {
      if (e instanceof IpvsRequestError && e.errno === 'ESRCH') return undefined;
      throw e;
    }
  }

  /** The destinations of one service, with their connection counters. */
  async listDests(key: IpvsServiceKey): Promise<IpvsDestStatus[]> {
    return (await this.send({ op: 'dumpDests', service: key }, 'list destinations')).map((d) => decodeDestReply(d, key.family));
  }

  /** Create a virtual service (EEXIST if it exists). */
  async addService(service: IpvsService): Promise<void> {
    await this.send({ op: 'newService', service }, `add service ${describeKey(service.key)}`);
  }

  /** Change scheduler, flags or persistence of an existing service. */
  async updateService(service: IpvsService): Promise<void> {
    await this.send({ op: 'setService', service }, `update service ${describeKey(service.key)}`);
  }

  /** Delete a service and its destinations. */
  async deleteService(key: IpvsServiceKey): Promise<void> {
    await this.send({ op: 'delService', key }, `delete service ${describeKey(key)}`);
  }

  /** Add a destination to a service. */
  async addDest(service: IpvsServiceKey, dest: IpvsDest): Promise<void> {
    await this.send({ op: 'newDest', service, dest }, `add destination ${dest.address}:${dest.port} to ${describeKey(service)}`);
  }

  /** Change weight, forwarding or thresholds of a destination. */
  async updateDest(service: IpvsServiceKey, dest: IpvsDest): Promise<void> {
    await this.send({ op: 'setDest', service, dest }, `update destination ${dest.address}:${dest.port} of ${describeKey(service)}`);
  }

  /** Remove a destination from a service. */
  async deleteDest(service: IpvsServiceKey, dest: IpvsDestKey): Promise<void> {
    await this.send({ op: 'delDest', service, dest }, `delete destination ${dest.address}:${dest.port} of ${describeKey(service)}`);
  }

  /** The connection timeouts (tcp established idle, tcp fin-wait, udp). */
  async getTimeouts(): Promise<IpvsTimeouts> {
    const [d] = await this.send({ op: 'getConfig' }, 'get timeouts');
    if (!d) throw new IpvsRequestError('get timeouts', 'empty reply');
    return decodeTimeouts(d);
  }

  /** Set the connection timeouts; a 0 leaves that one unchanged. */
  async setTimeouts(t: IpvsTimeouts): Promise<void> {
    await this.send({ op: 'setConfig', timeouts: t }, 'set timeouts');
  }

  /** Delete every service in the namespace. */
  async flush(): Promise<void> {
    await this.send({ op: 'flush' }, 'flush');
  }

  /** Close the socket. */
  close(): void {
    this.socket.socket.close();
  }
}

/** Human-readable service key, in ipvsadm's style (TCP 10.0.0.1:80, FWM 256). */
export function describeKey(key: IpvsServiceKey): string {
  if (key.kind === 'fwmark') return `FWM ${key.fwmark}${key.family === 'inet6' ? ' IPv6' : ''}`;
  const addr = key.family === 'inet6' ? `[${key.address}]` : key.address;
  return `${key.protocol.toUpperCase()} ${addr}:${key.port}`;
}

/** True when the IPVS family resolves (in the namespace, when `enterNamespace` is given). */
export async function probeIpvs(enterNamespace?: EnterNamespace): Promise<boolean> {
  try {
    const c = await IpvsClient.open(enterNamespace);
    c.close();
    return true;
  } catch (e) {
    if (e instanceof IpvsUnavailableError) return false;
    throw e;
  }
}
