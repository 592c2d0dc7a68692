import { describe, expect, it } from 'vitest';
import { classifyError, judgeAnswer } from './probe-outcome.js';

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
