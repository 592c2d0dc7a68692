import { describe, expect, it } from 'vitest';
import { CliError, EXIT } from './cli-context.js';
import { NetworkFlagError, networkAttachments, parseNetworkFlag } from './network-flag.js';

describe('parseNetworkFlag', () => {
  it('reads a plain name and Docker’s long form with aliases', () => {
    expect(parseNetworkFlag('appnet')).toEqual({ network: 'appnet', aliases: [] });
    expect(parseNetworkFlag('name=appnet')).toEqual({ network: 'appnet', aliases: [] });
    expect(parseNetworkFlag('name=appnet,alias=api-v2')).toEqual({ network: 'appnet', aliases: ['api-v2'] });
    expect(parseNetworkFlag('alias=a,name=appnet,alias=api.internal,alias=a')).toEqual({ network: 'appnet', aliases: ['a', 'api.internal'] });
  });

  const bad: [string, RegExp][] = [
    ['', /invalid network name ""/],
    ['App', /invalid network name "App"/],
    ['appnet,alias=x', /"appnet" is not KEY=VALUE \(write name=appnet\)/],
    ['front,back', /a plain network name has no ","/],
    ['alias=x', /needs name=NETWORK/],
    ['name=a,name=b', /name is given twice/],
    ['name=appnet,alias=Api', /invalid network alias "Api"/],
    ['name=appnet,alias=-x', /invalid network alias/],
    ['name=appnet,alias=tasks.api', /invalid network alias "tasks\.api"/],
    ['name=appnet,alias=a..b', /invalid network alias/],
    [`name=appnet,alias=${'a'.repeat(64)}`, /invalid network alias/],
    ['name=appnet,ip=10.0.0.9', /ip is not supported/],
    ['name=appnet,color=red', /unknown key "color" \(known: name, alias\)/],
    ['name=appnet,aliasx', /"aliasx" is not KEY=VALUE/],
  ];
  for (const [value, why] of bad) {
    it(`rejects ${JSON.stringify(value)} with exit 2 and the accepted forms`, () => {
      let err: unknown;
      try {
        parseNetworkFlag(value);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NetworkFlagError);
      expect((err as CliError).exitCode).toBe(EXIT.usage);
      expect((err as Error).message).toMatch(why);
      expect((err as Error).message).toMatch(/name=NETWORK\[,alias=ALIAS\.\.\.\]/);
    });
  }
});

describe('networkAttachments', () => {
  it('puts --network-alias on every --network, beside the long form’s own aliases', () => {
    expect(networkAttachments(['front', 'name=back,alias=db'], ['shared'])).toEqual({ networks: ['front', 'back'], aliases: { front: ['shared'], back: ['db', 'shared'] } });
    expect(networkAttachments(['front', 'back'], [])).toEqual({ networks: ['front', 'back'] });
    expect(networkAttachments([], [])).toEqual({ networks: [] });
  });

  it('refuses --network-alias without --network (it never applies to ingress), a bad alias, a network given twice', () => {
    expect(() => networkAttachments([], ['x'])).toThrow(/give --network too/);
    expect(() => networkAttachments(['front'], ['Bad'])).toThrow(/invalid --network-alias: invalid network alias "Bad"/);
    expect(() => networkAttachments(['front', 'name=front,alias=x'], [])).toThrow(/network front is given twice/);
  });
});
