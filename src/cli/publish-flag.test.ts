import { describe, expect, it } from 'vitest';
import { parsePublishFlag, PublishFlagError } from './publish-flag.js';

describe('parsePublishFlag', () => {
  it('reads the short form with options', () => {
    expect(parsePublishFlag('8000:80')).toEqual({ published: 8000, target: 80 });
    expect(parsePublishFlag('5353:53/udp')).toEqual({ published: 5353, target: 53, protocol: 'udp' });
    expect(parsePublishFlag('mode=host,policy=local,8080:80')).toEqual({ published: 8080, target: 80, mode: 'host', policy: 'local' });
    expect(parsePublishFlag('80')).toEqual({ target: 80 });
  });

  it('reads the long form', () => {
    expect(parsePublishFlag('published=9000,target=90,protocol=udp,mode=ingress')).toEqual({ published: 9000, target: 90, protocol: 'udp', mode: 'ingress' });
  });

  for (const bad of ['', '8000:', 'a:b', '70000:80', '8000:0', 'mode=bridge,80:80', 'proto=udp,80', '1:2:3', '8000:80/sctp', 'published=80']) {
    it(`rejects ${JSON.stringify(bad)} with the accepted forms`, () => {
      expect(() => parsePublishFlag(bad)).toThrow(PublishFlagError);
      expect(() => parsePublishFlag(bad)).toThrow(/Use \[mode=ingress\|host,\]/);
    });
  }
});
