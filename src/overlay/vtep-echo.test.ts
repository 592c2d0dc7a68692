import { describe, expect, it } from 'vitest';
import { echoReplySeq, echoRequest } from './vtep-echo.js';

/** What the peer's kernel sends back: the request with type 0 (checksum and identifier do not matter here). */
const replyTo = (req: Buffer): Buffer => {
  const r = Buffer.from(req);
  r.writeUInt8(0, 0);
  r.writeUInt16BE(0xbeef, 2);
  return r;
};

describe('VTEP echo probes', () => {
  it('reads the sequence number back from the reply to a request', () => {
    for (const seq of [0, 1, 513, 0xffff]) expect(echoReplySeq(replyTo(echoRequest(seq)))).toBe(seq);
  });

  it('wraps sequence numbers at 16 bits', () => {
    expect(echoReplySeq(replyTo(echoRequest(0x10002)))).toBe(2);
  });

  it('is an ICMP echo request with code 0, as a ping socket requires', () => {
    const req = echoRequest(7);
    expect(req.readUInt8(0)).toBe(8);
    expect(req.readUInt8(1)).toBe(0);
    expect(echoReplySeq(req)).toBeNull();
  });

  it('takes nothing that is not a reply to one of its probes', () => {
    const other = replyTo(echoRequest(3));
    other.write('someone-else', 8);
    expect(echoReplySeq(other)).toBeNull();
    expect(echoReplySeq(Buffer.alloc(4))).toBeNull();
    const unreachable = replyTo(echoRequest(3));
    unreachable.writeUInt8(3, 0);
    expect(echoReplySeq(unreachable)).toBeNull();
  });
});
