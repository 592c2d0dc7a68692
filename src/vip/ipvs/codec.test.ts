import { describe, expect, it } from 'vitest';
import {
  canonicalAddress,
  decodeDestReply,
  decodeIpvsRequest,
  decodeServiceReply,
  decodeTimeouts,
  encodeDestReply,
  encodeIpvsRequest,
  encodeServiceReply,
  IpvsCmd,
  IpvsCodecError,
  NLM_F_DUMP,
  type IpvsDestStatus,
  type IpvsRequest,
  type IpvsService,
} from './codec.js';

/**
 * Bytes written by hand from include/uapi/linux/ip_vs.h. Each line is one netlink attribute:
 * nla_len (u16 LE, header included, padding excluded), nla_type (u16 LE), payload, pad to 4.
 * Everything after "#" on a line is a comment.
 */
function hex(text: string): Buffer {
  const digits = text
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .join('')
    .replace(/\s+/g, '');
  return Buffer.from(digits, 'hex');
}

const tcpVip: IpvsService = {
  key: { kind: 'vip', family: 'inet', protocol: 'tcp', address: '10.0.0.1', port: 80 },
  scheduler: 'rr',
  flags: 0,
  timeout: 0,
  netmaskPrefix: 32,
};

describe('IPVS codec: golden bytes from ip_vs.h', () => {
  it('NEW_SERVICE for tcp 10.0.0.1:80 rr', () => {
    const e = encodeIpvsRequest({ op: 'newService', service: tcpVip });
    expect(e.cmd).toBe(1); // IPVS_CMD_NEW_SERVICE
    expect(e.flags).toBe(0);
    expect(e.payload.toString('hex')).toBe(
      hex(`
        5400 0100                             # IPVS_CMD_ATTR_SERVICE (1), nested, 4 + 80 bytes
          0600 0100 0200 0000                 #   IPVS_SVC_ATTR_AF (1) u16 = AF_INET 2, padded
          0600 0200 0600 0000                 #   IPVS_SVC_ATTR_PROTOCOL (2) u16 = IPPROTO_TCP 6
          1400 0300 0a000001 00000000 00000000 00000000 # IPVS_SVC_ATTR_ADDR (3) union nf_inet_addr, 16 bytes
          0600 0400 0050 0000                 #   IPVS_SVC_ATTR_PORT (4) be16 = 80
          0700 0600 727200 00                 #   IPVS_SVC_ATTR_SCHED_NAME (6) "rr\\0", padded
          0c00 0700 00000000 ffffffff         #   IPVS_SVC_ATTR_FLAGS (7) struct ip_vs_flags {flags 0, mask ~0}
          0800 0800 00000000                  #   IPVS_SVC_ATTR_TIMEOUT (8) u32 = 0
          0800 0900 ffffffff                  #   IPVS_SVC_ATTR_NETMASK (9) be32 255.255.255.255
      `).toString('hex'),
    );
  });

  it('NEW_SERVICE for fwmark 256 wrr, persistent 300 s per /24', () => {
    const e = encodeIpvsRequest({
      op: 'newService',
      service: { key: { kind: 'fwmark', family: 'inet', fwmark: 256 }, scheduler: 'wrr', flags: 1, timeout: 300, netmaskPrefix: 24 },
    });
    expect(e.payload.toString('hex')).toBe(
      hex(`
        3800 0100                             # IPVS_CMD_ATTR_SERVICE (1), 4 + 52 bytes
          0600 0100 0200 0000                 #   IPVS_SVC_ATTR_AF (1) = AF_INET
          0800 0500 00010000                  #   IPVS_SVC_ATTR_FWMARK (5) u32 = 256
          0800 0600 77727200                  #   IPVS_SVC_ATTR_SCHED_NAME (6) "wrr\\0"
          0c00 0700 01000000 ffffffff         #   IPVS_SVC_ATTR_FLAGS (7) {IP_VS_SVC_F_PERSISTENT, ~0}
          0800 0800 2c010000                  #   IPVS_SVC_ATTR_TIMEOUT (8) u32 = 300
          0800 0900 ffffff00                  #   IPVS_SVC_ATTR_NETMASK (9) be32 255.255.255.0
      `).toString('hex'),
    );
  });

  it('IPv6 service: 16-byte address and the netmask as a host-order prefix length', () => {
    const e = encodeIpvsRequest({
      op: 'delService',
      key: { kind: 'vip', family: 'inet6', protocol: 'udp', address: 'fd00::1', port: 53 },
    });
    expect(e.cmd).toBe(3); // IPVS_CMD_DEL_SERVICE
    expect(e.payload.toString('hex')).toBe(
      hex(`
        3000 0100                             # IPVS_CMD_ATTR_SERVICE (1), 4 + 44 bytes
          0600 0100 0a00 0000                 #   IPVS_SVC_ATTR_AF (1) = AF_INET6 10
          0600 0200 1100 0000                 #   IPVS_SVC_ATTR_PROTOCOL (2) = IPPROTO_UDP 17
          1400 0300 fd000000 00000000 00000000 00000001 # IPVS_SVC_ATTR_ADDR (3) fd00::1
          0600 0400 0035 0000                 #   IPVS_SVC_ATTR_PORT (4) be16 = 53
      `).toString('hex'),
    );
    const n = encodeIpvsRequest({
      op: 'setService',
      service: { key: { kind: 'fwmark', family: 'inet6', fwmark: 7 }, scheduler: 'sh', flags: 0, timeout: 0, netmaskPrefix: 128 },
    });
    expect(n.cmd).toBe(2); // IPVS_CMD_SET_SERVICE
    expect(n.payload.subarray(n.payload.length - 8).toString('hex')).toBe(hex('0800 0900 80000000 # IPVS_SVC_ATTR_NETMASK = 128').toString('hex'));
  });

  it('NEW_DEST: service key then destination 10.0.1.2:8080 masq weight 3', () => {
    const e = encodeIpvsRequest({
      op: 'newDest',
      service: tcpVip.key,
      dest: { family: 'inet', address: '10.0.1.2', port: 8080, forward: 'masq', weight: 3, upperThreshold: 0, lowerThreshold: 0 },
    });
    expect(e.cmd).toBe(5); // IPVS_CMD_NEW_DEST
    expect(e.payload.toString('hex')).toBe(
      hex(`
        3000 0100                             # IPVS_CMD_ATTR_SERVICE (1), key only, 4 + 44 bytes
          0600 0100 0200 0000                 #   IPVS_SVC_ATTR_AF = AF_INET
          0600 0200 0600 0000                 #   IPVS_SVC_ATTR_PROTOCOL = TCP
          1400 0300 0a000001 00000000 00000000 00000000 # IPVS_SVC_ATTR_ADDR 10.0.0.1
          0600 0400 0050 0000                 #   IPVS_SVC_ATTR_PORT 80
        4800 0200                             # IPVS_CMD_ATTR_DEST (2), 4 + 68 bytes
          1400 0100 0a000102 00000000 00000000 00000000 # IPVS_DEST_ATTR_ADDR (1) 10.0.1.2
          0600 0200 1f90 0000                 #   IPVS_DEST_ATTR_PORT (2) be16 = 8080
          0800 0300 00000000                  #   IPVS_DEST_ATTR_FWD_METHOD (3) u32 = IP_VS_CONN_F_MASQ 0
          0800 0400 03000000                  #   IPVS_DEST_ATTR_WEIGHT (4) u32 = 3
          0800 0500 00000000                  #   IPVS_DEST_ATTR_U_THRESH (5) = 0
          0800 0600 00000000                  #   IPVS_DEST_ATTR_L_THRESH (6) = 0
          0600 0b00 0200 0000                 #   IPVS_DEST_ATTR_ADDR_FAMILY (11) u16 = AF_INET
      `).toString('hex'),
    );
  });

  it('SET_DEST to weight 0 with direct routing, DEL_DEST with the key only', () => {
    const svc = { kind: 'fwmark', family: 'inet', fwmark: 1 } as const;
    const set = encodeIpvsRequest({
      op: 'setDest',
      service: svc,
      dest: { family: 'inet', address: '192.168.0.9', port: 0, forward: 'route', weight: 0, upperThreshold: 100, lowerThreshold: 10 },
    });
    expect(set.cmd).toBe(6); // IPVS_CMD_SET_DEST
    expect(set.payload.toString('hex')).toBe(
      hex(`
        1400 0100                             # IPVS_CMD_ATTR_SERVICE, 4 + 16
          0600 0100 0200 0000                 #   IPVS_SVC_ATTR_AF = AF_INET
          0800 0500 01000000                  #   IPVS_SVC_ATTR_FWMARK = 1
        4800 0200                             # IPVS_CMD_ATTR_DEST, 4 + 68
          1400 0100 c0a80009 00000000 00000000 00000000 # IPVS_DEST_ATTR_ADDR 192.168.0.9
          0600 0200 0000 0000                 #   IPVS_DEST_ATTR_PORT 0 (fwmark: keep the packet's port)
          0800 0300 03000000                  #   IPVS_DEST_ATTR_FWD_METHOD = IP_VS_CONN_F_DROUTE 3
          0800 0400 00000000                  #   IPVS_DEST_ATTR_WEIGHT = 0 (draining)
          0800 0500 64000000                  #   IPVS_DEST_ATTR_U_THRESH = 100
          0800 0600 0a000000                  #   IPVS_DEST_ATTR_L_THRESH = 10
          0600 0b00 0200 0000                 #   IPVS_DEST_ATTR_ADDR_FAMILY = AF_INET
      `).toString('hex'),
    );
    const del = encodeIpvsRequest({ op: 'delDest', service: svc, dest: { family: 'inet', address: '192.168.0.9', port: 0 } });
    expect(del.cmd).toBe(7); // IPVS_CMD_DEL_DEST
    expect(del.payload.subarray(20).toString('hex')).toBe(
      hex(`
        2800 0200                             # IPVS_CMD_ATTR_DEST, 4 + 36
          1400 0100 c0a80009 00000000 00000000 00000000 # IPVS_DEST_ATTR_ADDR
          0600 0200 0000 0000                 #   IPVS_DEST_ATTR_PORT 0
          0600 0b00 0200 0000                 #   IPVS_DEST_ATTR_ADDR_FAMILY
      `).toString('hex'),
    );
  });

  it('SET_CONFIG timeouts, GET_CONFIG, FLUSH and the dumps', () => {
    const set = encodeIpvsRequest({ op: 'setConfig', timeouts: { tcp: 900, tcpFin: 120, udp: 300 } });
    expect(set.cmd).toBe(12); // IPVS_CMD_SET_CONFIG
    expect(set.payload.toString('hex')).toBe(
      hex(`
        0800 0400 84030000                    # IPVS_CMD_ATTR_TIMEOUT_TCP (4) = 900
        0800 0500 78000000                    # IPVS_CMD_ATTR_TIMEOUT_TCP_FIN (5) = 120
        0800 0600 2c010000                    # IPVS_CMD_ATTR_TIMEOUT_UDP (6) = 300
      `).toString('hex'),
    );
    expect(encodeIpvsRequest({ op: 'getConfig' })).toEqual({ cmd: 13, flags: 0, payload: Buffer.alloc(0) });
    expect(encodeIpvsRequest({ op: 'flush' })).toEqual({ cmd: 17, flags: 0, payload: Buffer.alloc(0) });
    expect(encodeIpvsRequest({ op: 'dumpServices' })).toEqual({ cmd: 4, flags: 0x300, payload: Buffer.alloc(0) });
    const dd = encodeIpvsRequest({ op: 'dumpDests', service: { kind: 'fwmark', family: 'inet', fwmark: 9 } });
    expect(dd.cmd).toBe(8); // IPVS_CMD_GET_DEST
    expect(dd.flags).toBe(NLM_F_DUMP);
    expect(dd.payload.toString('hex')).toBe(hex('1400 0100 0600 0100 0200 0000 0800 0500 09000000').toString('hex'));
  });
});

describe('IPVS codec: replies as the kernel sends them', () => {
  it('decodes a GET_SERVICE dump part with stats, HASHED flag and NLA_F_NESTED bits', () => {
    const reply = hex(`
      6c00 0180                               # IPVS_CMD_ATTR_SERVICE with NLA_F_NESTED (0x8000), 4 + 104
        0600 0100 0200 0000                   #   AF_INET
        0600 0200 1100 0000                   #   IPPROTO_UDP
        1400 0300 0a000005 00000000 00000000 00000000 # 10.0.0.5
        0600 0400 0035 0000                   #   port 53
        0700 0600 6c6300 00                   #   sched "lc"
        0c00 0700 03000000 ffffffff           #   flags PERSISTENT|HASHED, mask ~0
        0800 0800 b4000000                    #   timeout 180
        0800 0900 ffffffff                    #   netmask /32
        1800 0a80                             #   IPVS_SVC_ATTR_STATS (10), nested, ignored
          0800 0100 05000000                  #     conns 5
          0c00 0400 0100000000000000          #     bytes in (u64) 1
    `);
    expect(decodeServiceReply(reply)).toEqual({
      key: { kind: 'vip', family: 'inet', protocol: 'udp', address: '10.0.0.5', port: 53 },
      scheduler: 'lc',
      flags: 1,
      timeout: 180,
      netmaskPrefix: 32,
    });
  });

  it('decodes a GET_DEST dump part with counters and tunnel attributes it does not use', () => {
    const reply = hex(`
      7c00 0200                               # IPVS_CMD_ATTR_DEST, 4 + 120
        1400 0100 0a000102 00000000 00000000 00000000 # 10.0.1.2
        0600 0200 0050 0000                   #   port 80
        0800 0300 00000000                    #   masq
        0800 0400 01000000                    #   weight 1
        0500 0d00 00 000000                   #   IPVS_DEST_ATTR_TUN_TYPE (13) u8, ignored
        0600 0e00 0000 0000                   #   IPVS_DEST_ATTR_TUN_PORT (14), ignored
        0800 0500 00000000                    #   u_thresh 0
        0800 0600 00000000                    #   l_thresh 0
        0800 0700 02000000                    #   active conns 2
        0800 0800 07000000                    #   inactive conns 7
        0800 0900 00000000                    #   persistent conns 0
        0600 0b00 0200 0000                   #   AF_INET
        0c00 0a00 0800 0100 09000000          #   stats (nested), ignored
    `);
    expect(decodeDestReply(reply)).toEqual({
      family: 'inet',
      address: '10.0.1.2',
      port: 80,
      forward: 'masq',
      weight: 1,
      upperThreshold: 0,
      lowerThreshold: 0,
      activeConns: 2,
      inactiveConns: 7,
      persistConns: 0,
    });
  });

  it('decodes GET_CONFIG timeouts', () => {
    expect(decodeTimeouts(hex('0800 0400 84030000  0800 0500 78000000  0800 0600 2c010000'))).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
  });

  it('round-trips kernel-style service and destination replies', () => {
    const svc: IpvsService = { key: { kind: 'fwmark', family: 'inet6', fwmark: 4096 }, scheduler: 'mh', flags: 1, timeout: 60, netmaskPrefix: 64, peName: 'sip' };
    expect(decodeServiceReply(encodeServiceReply(svc))).toEqual(svc);
    const dest: IpvsDestStatus = {
      family: 'inet6', address: '2001:db8::a:0:0:1', port: 443, forward: 'tunnel', weight: 65535,
      upperThreshold: 5, lowerThreshold: 1, activeConns: 1, inactiveConns: 2, persistConns: 3,
    };
    expect(decodeDestReply(encodeDestReply(dest), 'inet6')).toEqual(dest);
  });
});

describe('IPVS codec: decode(encode(x)) = x', () => {
  const requests: IpvsRequest[] = [
    { op: 'newService', service: tcpVip },
    { op: 'setService', service: { ...tcpVip, scheduler: 'wrr', flags: 1, timeout: 3600, netmaskPrefix: 16 } },
    { op: 'newService', service: { key: { kind: 'fwmark', family: 'inet', fwmark: 0xffffffff }, scheduler: 'sh', flags: 0, timeout: 0, netmaskPrefix: 0 } },
    { op: 'delService', key: { kind: 'vip', family: 'inet6', protocol: 'sctp', address: '::', port: 1 } },
    { op: 'getService', key: { kind: 'vip', family: 'inet', protocol: 'udp', address: '255.255.255.255', port: 65535 } },
    { op: 'dumpServices' },
    { op: 'newDest', service: tcpVip.key, dest: { family: 'inet', address: '10.0.1.2', port: 80, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0 } },
    { op: 'setDest', service: { kind: 'fwmark', family: 'inet6', fwmark: 5 }, dest: { family: 'inet6', address: 'fe80::1', port: 0, forward: 'local', weight: 0, upperThreshold: 9, lowerThreshold: 3 } },
    { op: 'delDest', service: tcpVip.key, dest: { family: 'inet', address: '10.0.1.3', port: 8080 } },
    { op: 'dumpDests', service: tcpVip.key },
    { op: 'getConfig' },
    { op: 'setConfig', timeouts: { tcp: 7200, tcpFin: 0, udp: 30 } },
    { op: 'flush' },
  ];
  for (const r of requests) {
    it(`${r.op} ${JSON.stringify(r).slice(0, 80)}`, () => {
      expect(decodeIpvsRequest(encodeIpvsRequest(r))).toEqual(r);
    });
  }

  it('every command number matches ip_vs.h', () => {
    expect(IpvsCmd).toEqual({
      NEW_SERVICE: 1, SET_SERVICE: 2, DEL_SERVICE: 3, GET_SERVICE: 4, NEW_DEST: 5, SET_DEST: 6, DEL_DEST: 7, GET_DEST: 8,
      SET_CONFIG: 12, GET_CONFIG: 13, FLUSH: 17,
    });
  });
});

describe('IPVS codec: input validation', () => {
  it('rejects what the kernel would refuse, with a message naming the field', () => {
    const bad = (s: Partial<IpvsService>) => () => encodeIpvsRequest({ op: 'newService', service: { ...tcpVip, ...s } });
    expect(bad({ key: { ...tcpVip.key, kind: 'vip', address: '10.0.0.256' } as IpvsService['key'] })).toThrow(IpvsCodecError);
    expect(bad({ key: { ...tcpVip.key, kind: 'vip', port: 70000 } as IpvsService['key'] })).toThrow(/port/);
    expect(bad({ key: { kind: 'fwmark', family: 'inet', fwmark: 0 } })).toThrow(/fwmark 0/);
    expect(bad({ scheduler: 'a-very-long-scheduler-name' })).toThrow(/scheduler/);
    expect(bad({ netmaskPrefix: 33 })).toThrow(/netmask/);
    expect(() =>
      encodeIpvsRequest({
        op: 'newDest', service: tcpVip.key,
        dest: { family: 'inet', address: '10.0.0.2', port: 1, forward: 'masq', weight: -1, upperThreshold: 0, lowerThreshold: 0 },
      }),
    ).toThrow(/weight/);
    expect(() => decodeServiceReply(Buffer.from('ff00010000', 'hex'))).toThrow(/malformed/);
  });

  it('canonicalises addresses the way the kernel reports them', () => {
    expect(canonicalAddress('inet6', 'FD00:0:0:0:0:0:0:1')).toBe('fd00::1');
    expect(canonicalAddress('inet6', '2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonicalAddress('inet6', '::ffff:10.0.0.1')).toBe('::ffff:a00:1');
    expect(canonicalAddress('inet', '010.0.0.1')).toBe('10.0.0.1');
    expect(() => canonicalAddress('inet6', '1::2::3')).toThrow(IpvsCodecError);
  });
});

describe('IPVS codec: the v6 VIP meshnet sends (an AF_INET6 fwmark service, 16-byte destinations)', () => {
  const v6Vip: IpvsService = { key: { kind: 'fwmark', family: 'inet6', fwmark: 0x40000007 }, scheduler: 'rr', flags: 1, timeout: 60, netmaskPrefix: 128 };

  it('NEW_SERVICE: AF_INET6, the mark, persistence per client address (netmask = prefix length 128, host order)', () => {
    const e = encodeIpvsRequest({ op: 'newService', service: v6Vip });
    expect(e.cmd).toBe(1);
    expect(e.payload.toString('hex')).toBe(
      hex(`
        3800 0100                             # IPVS_CMD_ATTR_SERVICE (1), 4 + 52 bytes
          0600 0100 0a00 0000                 #   IPVS_SVC_ATTR_AF (1) u16 = AF_INET6 10
          0800 0500 07000040                  #   IPVS_SVC_ATTR_FWMARK (5) u32 = 0x40000007
          0700 0600 727200 00                 #   IPVS_SVC_ATTR_SCHED_NAME (6) "rr\\0"
          0c00 0700 01000000 ffffffff         #   IPVS_SVC_ATTR_FLAGS (7) {IP_VS_SVC_F_PERSISTENT, ~0}
          0800 0800 3c000000                  #   IPVS_SVC_ATTR_TIMEOUT (8) u32 = 60
          0800 0900 80000000                  #   IPVS_SVC_ATTR_NETMASK (9): ip_vs_ctl.c reads a v6 one as a plain u32 prefix, 1-128
      `).toString('hex'),
    );
    expect(decodeIpvsRequest(e)).toEqual({ op: 'newService', service: v6Vip });
  });

  it('NEW_DEST: the service key, then fd00:9::3 port 0 (keep the packet port) masq weight 2, AF_INET6', () => {
    const dest = { family: 'inet6', address: 'fd00:9::3', port: 0, forward: 'masq', weight: 2, upperThreshold: 0, lowerThreshold: 0 } as const;
    const e = encodeIpvsRequest({ op: 'newDest', service: v6Vip.key, dest });
    expect(e.cmd).toBe(5);
    expect(e.payload.toString('hex')).toBe(
      hex(`
        1400 0100                             # IPVS_CMD_ATTR_SERVICE, key only, 4 + 16
          0600 0100 0a00 0000                 #   IPVS_SVC_ATTR_AF = AF_INET6
          0800 0500 07000040                  #   IPVS_SVC_ATTR_FWMARK
        4800 0200                             # IPVS_CMD_ATTR_DEST, 4 + 68
          1400 0100 fd000009 00000000 00000000 00000003 # IPVS_DEST_ATTR_ADDR (1) fd00:9::3, all 16 bytes
          0600 0200 0000 0000                 #   IPVS_DEST_ATTR_PORT 0
          0800 0300 00000000                  #   IPVS_DEST_ATTR_FWD_METHOD = masq
          0800 0400 02000000                  #   IPVS_DEST_ATTR_WEIGHT = 2
          0800 0500 00000000                  #   IPVS_DEST_ATTR_U_THRESH
          0800 0600 00000000                  #   IPVS_DEST_ATTR_L_THRESH
          0600 0b00 0a00 0000                 #   IPVS_DEST_ATTR_ADDR_FAMILY (11) = AF_INET6
      `).toString('hex'),
    );
    expect(decodeIpvsRequest(e)).toEqual({ op: 'newDest', service: v6Vip.key, dest });
  });

  it('decodes a v6 GET_SERVICE reply and a GET_DEST reply of a kernel that sends no ADDR_FAMILY (the service family holds)', () => {
    const svc = hex(`
      3800 0180                               # IPVS_CMD_ATTR_SERVICE, nested
        0600 0100 0a00 0000                   #   AF_INET6
        0800 0500 07000040                    #   fwmark 0x40000007
        0700 0600 727200 00                   #   "rr"
        0c00 0700 03000000 ffffffff           #   PERSISTENT|HASHED
        0800 0800 3c000000                    #   60 s
        0800 0900 80000000                    #   /128
    `);
    expect(decodeServiceReply(svc)).toEqual(v6Vip);
    const dest = hex(`
      5800 0280                               # IPVS_CMD_ATTR_DEST, nested, 4 + 84
        1400 0100 fd000009 00000000 00000000 00000003 # fd00:9::3
        0600 0200 0000 0000                   #   port 0
        0800 0300 00000000                    #   masq
        0800 0400 00000000                    #   weight 0 (draining)
        0800 0500 00000000                    #   u_thresh
        0800 0600 00000000                    #   l_thresh
        0800 0700 01000000                    #   active 1
        0800 0800 00000000                    #   inactive 0
        0800 0900 00000000                    #   persistent 0
    `);
    expect(decodeDestReply(dest, 'inet6')).toEqual({
      family: 'inet6', address: 'fd00:9::3', port: 0, forward: 'masq', weight: 0, upperThreshold: 0, lowerThreshold: 0, activeConns: 1, inactiveConns: 0, persistConns: 0,
    });
  });

  it('refuses a v6 persistence prefix the kernel refuses (1-128), and a v4 literal as a v6 destination', () => {
    expect(() => encodeIpvsRequest({ op: 'newService', service: { ...v6Vip, netmaskPrefix: 0 } })).toThrow(/netmask \/0 .* inet6/);
    expect(() => encodeIpvsRequest({ op: 'newService', service: { ...v6Vip, netmaskPrefix: 129 } })).toThrow(/netmask \/129/);
    expect(() =>
      encodeIpvsRequest({ op: 'newDest', service: v6Vip.key, dest: { family: 'inet6', address: '10.0.0.3', port: 0, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0 } }),
    ).toThrow(/"10\.0\.0\.3" is not an IPv6 address/);
  });
});
