import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * meshnet's version, from its package.json: the nearest one named "meshnet" above this file, which
 * is found both from src/cli (tests) and from dist/src/cli (the built CLI, run from a checkout or
 * from /opt/meshnet).
 */
export function meshnetVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'meshnet' && pkg.version) return pkg.version;
    } catch {
      // No package.json here (or not ours): look one level up.
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}
