import { describe, expect, it } from 'vitest';
import { parseGroupLine, parsePasswdLine, parseUserSpec, resolveUser, UnknownUserError, type AccountLookup } from './task-user.js';

const accounts: AccountLookup = {
  passwd: (key) =>
    [{ name: 'app', uid: 1001, gid: 1002, home: '/srv/app' }, { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' }].find(
      (e) => e.name === key || String(e.uid) === key,
    ),
  group: (key) => [{ name: 'web', gid: 33 }].find((g) => g.name === key || String(g.gid) === key),
};

describe('parseUserSpec', () => {
  it.each([
    ['1000', { user: '1000' }],
    ['app', { user: 'app' }],
    ['app:web', { user: 'app', group: 'web' }],
    ['1000:33', { user: '1000', group: '33' }],
  ])('splits %s', (value, expected) => expect(parseUserSpec(value)).toEqual(expected));

  it.each(['', ':', 'app:', ':web', '-app', 'a b', 'app:web:x', 'x'.repeat(33), '4294967295', 'root;reboot'])('refuses %j', (value) => {
    expect(parseUserSpec(value)).toBeUndefined();
  });
});

describe('resolveUser', () => {
  it('follows Docker: names from passwd, the primary group by default, numbers need no entry', () => {
    expect(resolveUser('app', accounts)).toEqual({ uid: 1001, gid: 1002, initGroups: true, home: '/srv/app' });
    expect(resolveUser('app:web', accounts)).toEqual({ uid: 1001, gid: 33, initGroups: true, home: '/srv/app' });
    expect(resolveUser('65534', accounts)).toEqual({ uid: 65534, gid: 65534, initGroups: true, home: '/nonexistent' });
    expect(resolveUser('4242', accounts)).toEqual({ uid: 4242, gid: 0, initGroups: false, home: '/' });
    expect(resolveUser('4242:4242', accounts)).toEqual({ uid: 4242, gid: 4242, initGroups: false, home: '/' });
  });

  it('names a missing user or group and what to do', () => {
    expect(() => resolveUser('ghost', accounts)).toThrow(UnknownUserError);
    expect(() => resolveUser('ghost', accounts)).toThrow(/user "ghost" does not exist on this node: create it/);
    expect(() => resolveUser('app:ghosts', accounts)).toThrow(/group "ghosts" does not exist/);
  });
});

describe('getent lines', () => {
  it('parses passwd and group lines and refuses garbage', () => {
    expect(parsePasswdLine('nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n')).toEqual({ name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' });
    expect(parseGroupLine('nogroup:x:65534:')).toEqual({ name: 'nogroup', gid: 65534 });
    expect(parsePasswdLine('broken')).toBeUndefined();
    expect(parseGroupLine('g:x:abc:')).toBeUndefined();
  });
});
