import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_PATH, compiledRoot } from '../../src/lab/cluster-lab.js';

// `meshnet --version` and `meshnet completion bash|zsh`, as a shell user meets them.

function meshnet(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

let dir: string;
beforeAll(() => {
  // Generated once by the CLI itself: each completion below sources the saved script.
  dir = mkdtempSync(join(tmpdir(), 'meshnet-completion-'));
  for (const shell of ['bash', 'zsh']) {
    const r = meshnet('completion', shell);
    expect(r.code, r.err).toBe(0);
    writeFileSync(join(dir, shell), r.out);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Completes the words of `line` (the last may be partial) with the generated script, in a real shell. */
function complete(shell: 'bash' | 'zsh', words: string[]): string[] {
  const script =
    shell === 'bash'
      ? `source "$SCRIPTS/bash"
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=\${#COMP_LINE}
_meshnet; printf '%s\\n' "\${COMPREPLY[@]}"`
      : // zsh completes only inside its line editor: stand-ins for the builtins the function calls print what it offers.
        `compdef() { :; }
_describe() { local -a it; it=("\${(@P)4}"); print -rl -- "\${it[@]%%:*}"; }
compadd() { print -rl -- "\${(@P)2}"; }
_files() { print -- '(files)'; }
source "$SCRIPTS/zsh"
words=("$@"); CURRENT=$#
_meshnet`;
  const r = spawnSync(shell, ['-c', script, 'complete', ...words], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SCRIPTS: dir } });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('meshnet --version', () => {
  it('prints the version of package.json, exit 0', () => {
    const pkg = JSON.parse(readFileSync(join(compiledRoot, '..', 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = meshnet(flag);
      expect(r.code).toBe(0);
      expect(r.out.trim()).toBe(pkg.version);
    }
  });
});

describe('meshnet completion', () => {
  it('bash: `meshnet se` completes to service, and subcommands, options and option values follow the command tree', () => {
    expect(complete('bash', ['meshnet', 'se'])).toEqual(['service']);
    expect(complete('bash', ['meshnet', 'service', ''])).toEqual(expect.arrayContaining(['create', 'ls', 'inspect', 'scale', 'update', 'rm']));
    expect(complete('bash', ['meshnet', 'service', 'create', '--pub'])).toEqual(['--publish']);
    // A program option with its value before the command does not hide the command.
    expect(complete('bash', ['meshnet', '--store', 'sqlite:/x', 'net'])).toEqual(['network']);
    expect(complete('bash', ['meshnet', 'agent', '--lb-backend', ''])).toEqual(['auto', 'nftables', 'ipvs']);
    expect(complete('bash', ['meshnet', 'agent', '--log-level', 'd'])).toEqual(['debug']);
    expect(complete('bash', ['meshnet', 'completion', ''])).toEqual(['bash', 'zsh']);
    // Program options are offered under a command too; hidden ones never.
    const opts = complete('bash', ['meshnet', 'task', 'ls', '--']);
    expect(opts).toEqual(expect.arrayContaining(['--service', '--store', '--help']));
    expect(opts).not.toContain('--etcd-password');
    // After `--` the words are a task's command line: nothing of meshnet's is offered.
    expect(complete('bash', ['meshnet', 'service', 'create', '--name', 'x', '--', 'se'])).toEqual([]);
  });

  it('bash: every command of `meshnet --help` is offered at the top', () => {
    const help = meshnet('--help').out;
    const commands = [...help.split('Commands:')[1]!.matchAll(/^ {2}([a-z]+)/gm)].map((m) => m[1]);
    expect(commands.length).toBeGreaterThan(5);
    expect(complete('bash', ['meshnet', ''])).toEqual(expect.arrayContaining(commands));
  });

  it('zsh: the same tree, with descriptions, loads and completes', () => {
    const zsh = spawnSync('zsh', ['--version'], { encoding: 'utf8' });
    expect(zsh.status, 'zsh is installed by scripts/setup-test-tools').toBe(0);
    expect(complete('zsh', ['meshnet', 'se'])).toContain('service');
    expect(complete('zsh', ['meshnet', 'agent', '--lb-backend', ''])).toEqual(['auto', 'nftables', 'ipvs']);
    expect(complete('zsh', ['meshnet', 'network', 'create', '--'])).toEqual(expect.arrayContaining(['--subnet', '--store']));
    expect(meshnet('completion', 'zsh').out).toMatch(/^#compdef meshnet\n[\s\S]*'service:[^']+'/);
  });

  it('refuses an unknown shell with exit 2', () => {
    const r = meshnet('completion', 'fish');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/bash, zsh/);
  });
});
