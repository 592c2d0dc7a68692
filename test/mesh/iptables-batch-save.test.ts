import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { saveTableIn } from '../../src/mesh/iptables-batch-save.js';

// A stand-in for iptables-save that reads nothing of the kernel: what it prints (or whether it fails)
// depends on a file named after its table argument, so one batch can mix good, failed and cut-short reads.
const dir = mkdtempSync(join(tmpdir(), 'meshnet-batch-save-'));
const tool = join(dir, 'fake-save');
writeFileSync(tool, `#!/bin/sh\ncase "$(cat ${dir}/mode)" in\n  ok) printf '*nat\\n:PREROUTING ACCEPT [0:0]\\nCOMMIT\\n' ;;\n  fail) echo 'no table' >&2; exit 1 ;;\n  cut) printf '*nat\\n:PREROUTING ACCEPT [0:0]\\n'; kill -9 $PPID ;;\nesac\n`);
chmodSync(tool, 0o755);
// Two throwaway namespaces: the reads only need somewhere nsenter can enter.
const names = [`mn-bsave-${process.pid}-a`, `mn-bsave-${process.pid}-b`];
for (const n of names) execFileSync('ip', ['netns', 'add', n]);
const [here, there] = names.map((n) => `/run/netns/${n}`) as [string, string];

afterAll(() => {
  for (const n of names) execFileSync('ip', ['netns', 'del', n]);
  rmSync(dir, { recursive: true, force: true });
});

describe('saveTableIn', () => {
  it('maps each namespace to what the tool printed there', async () => {
    writeFileSync(join(dir, 'mode'), 'ok');
    const out = await saveTableIn([here, there], tool, 'nat');
    expect(out.get(here)).toBe('*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n');
    expect(out.get(there)).toBe(out.get(here));
  });

  it('leaves unread a namespace whose read failed, one that does not exist, and one cut short by a killed shell', async () => {
    writeFileSync(join(dir, 'mode'), 'fail');
    expect((await saveTableIn([here], tool, 'nat')).get(here)).toBeNull();
    writeFileSync(join(dir, 'mode'), 'ok');
    expect((await saveTableIn(['/run/meshnet-no-such-netns'], tool, 'nat')).get('/run/meshnet-no-such-netns')).toBeNull();
    // The shell dies in the middle of the first namespace's output: half a table must not pass for a table.
    writeFileSync(join(dir, 'mode'), 'cut');
    const out = await saveTableIn([here, there], tool, 'nat');
    expect(out.get(here)).toBeNull();
    expect(out.get(there)).toBeNull();
  });
});
