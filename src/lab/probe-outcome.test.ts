import { describe, expect, it } from 'vitest';
import { classifyError, judgeAnswer, judgeDnsAnswer, resolverProbeQuery } from './probe-outcome.js';

describe('judgeAnswer', () => {
  it('reads the task and node from an echo line', () => {
    expect(judgeAnswer(200, 'web.2 on host-b (client 192.0.2.100)\n')).toEqual({ outcome: 'ok', task: 'web.2', node: 'host-b' });
  });

  it('calls any other body or status a wrong answer, keeping what came back', () => {
    expect(judgeAnswer(200, '<html>directory listing</html>')).toMatchObject({ outcome: 'wrong', detail: 'HTTP 200: <html>directory listing</html>' });
    expect(judgeAnswer(502, 'web.2 on host-b (client 192.0.2.100)')).toMatchObject({ outcome: 'wrong' });
  });
});

describe('classifyError', () => {
  it('names refusals and resets by their socket error code', () => {
    expect(classifyError({ code: 'ECONNREFUSED' }, false)).toEqual({ outcome: 'refused', detail: 'ECONNREFUSED' });
    expect(classifyError({ code: 'ECONNRESET', message: 'socket hang up' }, false).outcome).toBe('reset');
    expect(classifyError({ code: 'EPIPE' }, false).outcome).toBe('reset');
  });

  it('reports a timed-out attempt as a timeout even though destroying it raised an error', () => {
    expect(classifyError({ code: 'ECONNRESET' }, true).outcome).toBe('timeout');
  });

  it('keeps unexpected errors as errors with their code', () => {
    expect(classifyError({ code: 'EHOSTUNREACH' }, false)).toEqual({ outcome: 'error', detail: 'EHOSTUNREACH' });
    expect(classifyError({ message: 'boom' }, false)).toEqual({ outcome: 'error', detail: 'boom' });
  });
});

describe('the DNS probe', () => {
  it('asks the resolver itself (CHAOS TXT probe.meshnet.) and counts any response with its id as answered', () => {
    const q = resolverProbeQuery(0x1234);
    expect(q.readUInt16BE(0)).toBe(0x1234);
    expect(q.readUInt16BE(4)).toBe(1);
    expect(q.subarray(12, 12 + 15).toString('latin1')).toBe('\x05probe\x07meshnet\x00');
    expect(q.readUInt16BE(q.length - 2)).toBe(3);
    const refused = Buffer.from(q);
    refused[2] = 0x81;
    refused[3] = 0x05;
    expect(judgeDnsAnswer(0x1234, refused)).toEqual({ outcome: 'ok' });
    expect(judgeDnsAnswer(0x1235, refused).outcome).toBe('wrong');
    expect(judgeDnsAnswer(0x1234, q)).toEqual({ outcome: 'wrong', detail: 'a query, not a response' });
    expect(judgeDnsAnswer(0x1234, Buffer.alloc(3)).outcome).toBe('wrong');
  });
});
