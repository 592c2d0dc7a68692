import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * URL of a sibling module as compiled JavaScript, for code run as a worker or child process.
 *
 * Under vitest the caller is a `src/**.ts` file that a Worker cannot load; the same module
 * compiled by `npm run build` lives at `dist/src/**.js`. From compiled code it is the sibling.
 */
export function compiledModuleUrl(callerUrl: string, relative: string): URL {
  const callerPath = fileURLToPath(callerUrl);
  if (!callerPath.endsWith('.ts')) return new URL(relative, callerUrl);
  const marker = '/src/';
  const at = callerPath.lastIndexOf(marker);
  if (at < 0) throw new Error(`cannot map ${callerPath} to its compiled location: it is not under src/`);
  const distPath = `${callerPath.slice(0, at)}/dist/src/${callerPath.slice(at + marker.length)}`;
  const target = new URL(relative, pathToFileURL(distPath));
  if (!existsSync(target)) {
    throw new Error(`${fileURLToPath(target)} is missing: run \`npm run build\` before starting workers or processes from source`);
  }
  return target;
}
