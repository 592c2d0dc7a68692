/**
 * Splits a byte stream into lines and prefixes each, as `docker service logs` does
 * (`web.1@host-a | line`). A line cut across chunks is joined; a last line without its newline is
 * given one at `flush()`. UTF-8 is decoded per line, so a character cut across chunks stays whole.
 */
export class LineSplitter {
  private carry: Buffer = Buffer.alloc(0);

  /** The complete lines in `chunk` (with what was carried before), without their newlines. */
  push(chunk: Buffer): string[] {
    const buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, start)) {
      lines.push(buf.subarray(start, i).toString('utf8').replace(/\r$/, ''));
      start = i + 1;
    }
    this.carry = Buffer.from(buf.subarray(start));
    return lines;
  }

  /** The last line when it had no newline. */
  flush(): string[] {
    if (this.carry.length === 0) return [];
    const last = this.carry.toString('utf8');
    this.carry = Buffer.alloc(0);
    return [last];
  }
}

/** `web.1@host-a`: a task as service logs names it. */
export function taskLabel(service: string, slot: number, node: string): string {
  return `${service}.${slot}@${node}`;
}
