import { netnsIdentity, withNetns } from './netns-switch.js';
import { walkNlAttrs } from './netlink-attrs.js';
import { AF_NETLINK, close, NETLINK_NETFILTER, recvfrom, sendto, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW, socket } from './libc-sockets.js';

/**
 * The nf_tables generation of a namespace: a counter the kernel moves on every committed nf_tables
 * transaction there, whoever made it (nft, iptables-nft, another agent, an operator). Two equal
 * readings mean nothing in that namespace's nf_tables changed between them, so a resync that finds
 * the generation it last knew can skip re-reading tables it would find unchanged (an iptables-save
 * fork, a listing of a large table). Legacy iptables rules are outside nf_tables and do not move it.
 *
 * One NFT_MSG_GETGEN request on a netlink socket made inside the namespace: no netlink library
 * speaks nfnetlink here, and the request is one fixed 20-byte message, so it is hand-written.
 */

const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_NEWGEN = 15;
const NFT_MSG_GETGEN = 16;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 1;
const NFTA_GEN_ID = 1;

/** The GETGEN request: nlmsghdr (16 bytes) and nfgenmsg (family AF_UNSPEC, version 0, res_id 0). */
export function generationRequest(seq: number): Buffer {
  const msg = Buffer.alloc(20);
  msg.writeUInt32LE(20, 0);
  msg.writeUInt16LE((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN, 4);
  msg.writeUInt16LE(NLM_F_REQUEST, 6);
  msg.writeUInt32LE(seq >>> 0, 8);
  return msg;
}

/** The generation in a reply to generationRequest, or null when it is an error or holds none. */
export function parseGenerationReply(buf: Buffer): number | null {
  let at = 0;
  while (at + 16 <= buf.length) {
    const len = buf.readUInt32LE(at);
    if (len < 16 || at + len > buf.length) return null;
    const type = buf.readUInt16LE(at + 4);
    if (type === NLMSG_ERROR) return null;
    if (type === ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN)) {
      // nfgenmsg (4 bytes) after the header, then the attributes; nf_tables writes them in network order.
      const id = walkNlAttrs(buf.subarray(at + 20, at + len)).attrs.find((a) => a.type === NFTA_GEN_ID);
      return id && id.data.length >= 4 ? id.data.readUInt32BE(0) : null;
    }
    at += (len + 3) & ~3;
  }
  return null;
}

/** struct sockaddr_nl of the kernel (port id 0), where requests go. */
const KERNEL = Buffer.alloc(12);
KERNEL.writeUInt16LE(AF_NETLINK, 0);
const reply = Buffer.alloc(256);
const from = Buffer.alloc(12);
let seq = 1;

/**
 * The nf_tables generation of the namespace at `netns` (null: this process's own), or null when it
 * cannot be read (a kernel without nf_tables, a namespace that is gone). The kernel answers a
 * netlink request before sendto returns, so the non-blocking read that follows finds the reply.
 */
export function nftGeneration(netns: string | null): number | null {
  let fd = -1;
  try {
    fd = withNetns(netns, () => socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER));
  } catch {
    return null;
  }
  if (fd < 0) return null;
  try {
    const req = generationRequest(seq++);
    if (sendto(fd, req, req.length, 0, KERNEL, KERNEL.length) !== req.length) return null;
    const n = recvfrom(fd, reply, reply.length, 0, from, [from.length]);
    return n > 0 ? parseGenerationReply(reply.subarray(0, n)) : null;
  } finally {
    close(fd);
  }
}

/** Own commits remembered per namespace; a resync comes within far fewer (an idle node makes none). */
const LEDGER_SIZE = 64;

/**
 * The nf_tables generation of one namespace as meshnet's writers there see it (its iptables writer,
 * its nftables load-balancing table). Each writer remembers the generation at which it last knew its
 * state; every writer records its own commits here, so one writer's commit does not make another's
 * state unknown: a state known at generation K is still known now when every commit since K was one
 * of ours. Anyone else's commit breaks that chain, and the writers re-read.
 */
export class NftGenerations {
  /** Our own commits: generation before -> generation after. */
  private readonly ledger = new Map<number, number>();

  /** `read` gives the namespace's generation (null: unknown, as with legacy iptables or a test's fake). */
  constructor(private readonly read: () => number | null) {}

  /** A tracker of the real generation of the namespace at `netns` (null: this process's own). */
  static of(netns: string | null): NftGenerations {
    let identity: string | null = null;
    let epoch = 0;
    return new NftGenerations(() => {
      if (netns !== null) {
        // A namespace re-made at the same path counts from 1 again: its generations must never
        // meet the old one's, or a state known in the old namespace would pass for the new one's.
        let id: string;
        try {
          id = netnsIdentity(netns);
        } catch {
          return null;
        }
        if (identity !== null && id !== identity) epoch++;
        identity = id;
      }
      const g = nftGeneration(netns);
      return g === null ? null : epoch * 2 ** 32 + g;
    });
  }

  /** A tracker that never knows the generation: every check re-reads. */
  static unknown(): NftGenerations {
    return new NftGenerations(() => null);
  }

  /** The generation now, or null. */
  current(): number | null {
    return this.read();
  }

  /** One of our writes, of `commits` transactions, moved the generation from `before` to `after`: recorded when nothing else came between. */
  recordOwn(before: number | null, after: number | null, commits: number): boolean {
    if (before === null || after === null || commits <= 0 || after !== before + commits) return false;
    if (this.ledger.size >= LEDGER_SIZE) this.ledger.delete(this.ledger.keys().next().value!);
    this.ledger.set(before, after);
    return true;
  }

  /** The generation now, when only our own recorded commits moved it since `known`; else null (re-read). */
  since(known: number | null): number | null {
    if (known === null) return null;
    const now = this.read();
    if (now === null) return null;
    let g: number | undefined = known;
    for (let hops = 0; g !== undefined && hops <= LEDGER_SIZE; hops++) {
      if (g === now) return now;
      g = this.ledger.get(g);
    }
    return null;
  }
}
