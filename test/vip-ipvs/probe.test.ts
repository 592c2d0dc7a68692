/**
 * probeIpvs / IpvsClient.open on this host's kernel, in the home namespace and in a test
 * namespace entered through the enterNamespace hook. The oracle is /proc/net/ip_vs, which
 * exists exactly when the ip_vs module (and so the IPVS genl family) is loaded.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withNetns } from '../../src/sandbox/netns-switch.js';
import { IpvsClient, IpvsUnavailableError, probeIpvs, type EnterNamespace } from '../../src/vip/ipvs/ipvs-client.js';

const NS = `mnipvs-probe-${process.pid}`;
const NS_PATH = `/run/netns/${NS}`;
const kernelHasIpvs = existsSync('/proc/net/ip_vs');

describe('probeIpvs on this kernel', () => {
  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', NS]);
  });
  afterAll(() => {
    execFileSync('ip', ['netns', 'delete', NS]);
  });

  it(`answers ${kernelHasIpvs} in the home namespace, like /proc/net/ip_vs`, async () => {
    expect(await probeIpvs()).toBe(kernelHasIpvs);
  });

  it('opens its socket through the enterNamespace hook, and gives the same answer there', async () => {
    let entered = 0;
    const enter: EnterNamespace = (fn) => {
      entered++;
      return withNetns(NS_PATH, fn);
    };
    expect(await probeIpvs(enter)).toBe(kernelHasIpvs);
    expect(entered).toBe(1);
  });

  it.skipIf(kernelHasIpvs)('fails with a typed error telling the operator what to do', async () => {
    const err = await IpvsClient.open().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IpvsUnavailableError);
    expect((err as IpvsUnavailableError).code).toBe('IPVS_UNAVAILABLE');
    expect((err as Error).message).toMatch(/modprobe ip_vs/);
    expect((err as Error).message).toMatch(/--lb-backend nftables/);
  });
});
