import { describe, expect, it } from 'vitest';
import { CLONE_NEWNET } from '../sandbox/libc.js';
import { netnsFileProblem } from './netns-file.js';

const NSFS = 4;
const host = [`${NSFS}:4026531840`];

describe('netnsFileProblem', () => {
  it('accepts a network namespace that is not the host\'s, with or without NS_GET_NSTYPE', () => {
    expect(netnsFileProblem({ dev: NSFS, ino: 4026532500, nsType: CLONE_NEWNET }, NSFS, host)).toBeUndefined();
    expect(netnsFileProblem({ dev: NSFS, ino: 4026532500, nsType: null }, NSFS, host)).toBeUndefined();
  });

  it('refuses a file off nsfs, another kind of namespace, and the host\'s own', () => {
    expect(netnsFileProblem({ dev: 2049, ino: 12, nsType: null }, NSFS, host)).toMatch(/not a namespace file/);
    expect(netnsFileProblem({ dev: NSFS, ino: 4026532501, nsType: 0x00020000 }, NSFS, host)).toMatch(/another kind/);
    expect(netnsFileProblem({ dev: NSFS, ino: 4026531840, nsType: CLONE_NEWNET }, NSFS, host)).toMatch(/host's own network namespace/);
  });
});
