import { describe, expect, it } from 'vitest';
import { LineSplitter, taskLabel } from './log-lines.js';

describe('LineSplitter', () => {
  it('joins lines cut across chunks and keeps a cut UTF-8 character whole', () => {
    const s = new LineSplitter();
    const euro = Buffer.from('€');
    expect(s.push(Buffer.from('one\ntw'))).toEqual(['one']);
    expect(s.push(Buffer.concat([Buffer.from('o '), euro.subarray(0, 1)]))).toEqual([]);
    expect(s.push(Buffer.concat([euro.subarray(1), Buffer.from('\r\nthree')]))).toEqual(['two €']);
    expect(s.flush()).toEqual(['three']);
    expect(s.flush()).toEqual([]);
  });

  it('keeps empty lines', () => {
    expect(new LineSplitter().push(Buffer.from('\n\nx\n'))).toEqual(['', '', 'x']);
  });
});

describe('taskLabel', () => {
  it('names a task as docker service logs does', () => {
    expect(taskLabel('web', 2, 'host-a')).toBe('web.2@host-a');
  });
});
