import { CliError, EXIT } from '../cli/cli-context.js';
import { ENCRYPTED_OPTION } from './encryption-plan.js';

const OPTION_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * A network's driver options from `--opt KEY[=VALUE]` (repeatable, Docker's form) and `--encrypted`
 * (the same as `--opt encrypted`). Throws the CLI's usage error (exit 2) naming the flag.
 */
export function networkOptions(opts: readonly string[], encrypted: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of opts) {
    const eq = o.indexOf('=');
    const key = eq < 0 ? o : o.slice(0, eq);
    const value = eq < 0 ? '' : o.slice(eq + 1);
    if (!OPTION_KEY.test(key)) throw new CliError(`invalid --opt ${JSON.stringify(o)}: use KEY or KEY=VALUE, KEY of letters, digits, ".", "_", "-" (e.g. --opt encrypted)`, EXIT.usage);
    if (key === ENCRYPTED_OPTION && !['', 'true', 'false'].includes(value)) throw new CliError(`invalid --opt ${JSON.stringify(o)}: encrypted takes no value, or true or false`, EXIT.usage);
    out[key] = value;
  }
  if (encrypted) {
    if (out[ENCRYPTED_OPTION] === 'false') throw new CliError('--encrypted contradicts --opt encrypted=false: give one of them', EXIT.usage);
    out[ENCRYPTED_OPTION] = '';
  }
  return out;
}
