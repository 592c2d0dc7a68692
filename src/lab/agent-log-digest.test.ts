import { describe, expect, it } from 'vitest';
import { digestAgentLog, formatDigest } from './agent-log-digest.js';

describe('digestAgentLog', () => {
  const text = [
    '{"level":"info","event":"reconcile.pass","overlayOps":2}',
    '{"level":"warn","event":"node.keepalive_failed","error":"database is locked"}',
    '{"level":"warn","event":"node.keepalive_failed","error":"database is locked"}',
    'node:internal warning, not JSON',
    '{"level":50,"event":"reconcile.failed","error":{"message":"boom"}}',
    '{"level":"info","event":"reconcile.pass"}',
  ].join('\n');

  it('counts events, most frequent first, and keeps each distinct problem once', () => {
    expect(digestAgentLog(text)).toEqual({
      events: { 'node.keepalive_failed': 2, 'reconcile.pass': 2, 'reconcile.failed': 1 },
      problems: ['node.keepalive_failed: database is locked', 'reconcile.failed: {"message":"boom"}'],
    });
  });

  it('formats a digest on one line', () => {
    expect(formatDigest(digestAgentLog(text, 1))).toBe('node.keepalive_failed x2, reconcile.pass x2, reconcile.failed x1 | node.keepalive_failed: database is locked');
    expect(formatDigest(digestAgentLog(''))).toBe('nothing logged');
  });
});
