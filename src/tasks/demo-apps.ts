import { fileURLToPath } from 'node:url';
import { compiledModuleUrl } from '../runtime/compiled-module.js';

/** The demo applications a task can run. */
export type DemoApp = 'echo-http' | 'echo-udp';

/** argv running demo `app` on `port` with this Node binary, from the compiled dist/ tree. */
export function demoAppCommand(app: DemoApp, port: number): string[] {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new RangeError(`port must be 1-65535, got ${port}`);
  const script = fileURLToPath(compiledModuleUrl(import.meta.url, `./apps/${app}.js`));
  return [process.execPath, script, '--port', String(port)];
}
