import type { PortSpec } from '../model/records.js';

/** A --publish value that cannot be understood; the message shows the accepted forms. */
export class PublishFlagError extends Error {
  constructor(value: string, why: string) {
    super(
      `invalid --publish ${JSON.stringify(value)}: ${why}. ` +
        'Use [mode=ingress|host,][policy=cluster|local,]PUBLISHED:TARGET[/tcp|/udp] (e.g. 8000:80, mode=host,53:53/udp) ' +
        'or published=8000,target=80,protocol=udp,mode=host,policy=local',
    );
    this.name = 'PublishFlagError';
  }
}

function port(value: string, raw: string, what: string, allowZero = false): number {
  if (!/^\d{1,5}$/.test(raw)) throw new PublishFlagError(value, `${what} ${JSON.stringify(raw)} is not a port number`);
  const n = Number(raw);
  if (n > 65535 || (n === 0 && !allowZero)) throw new PublishFlagError(value, `${what} ${n} is outside 1-65535`);
  return n;
}

/** Parses Docker's short (`8000:80/udp`) and long (`published=8000,target=80`) --publish syntaxes. */
export function parsePublishFlag(value: string): PortSpec {
  const spec: PortSpec = { target: 0 };
  let short: string | undefined;
  for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (short !== undefined) throw new PublishFlagError(value, 'more than one PUBLISHED:TARGET');
      short = part;
      continue;
    }
    const key = part.slice(0, eq);
    const val = part.slice(eq + 1);
    switch (key) {
      case 'mode':
        if (val !== 'ingress' && val !== 'host') throw new PublishFlagError(value, `mode must be ingress or host, not ${JSON.stringify(val)}`);
        spec.mode = val;
        break;
      case 'policy':
        if (val !== 'cluster' && val !== 'local') throw new PublishFlagError(value, `policy must be cluster or local, not ${JSON.stringify(val)}`);
        spec.policy = val;
        break;
      case 'protocol':
        if (val !== 'tcp' && val !== 'udp') throw new PublishFlagError(value, `protocol must be tcp or udp, not ${JSON.stringify(val)}`);
        spec.protocol = val;
        break;
      case 'published':
        spec.published = port(value, val, 'published port', true);
        break;
      case 'target':
        spec.target = port(value, val, 'target port');
        break;
      default:
        throw new PublishFlagError(value, `unknown key ${JSON.stringify(key)}`);
    }
  }
  if (short !== undefined) {
    const m = /^(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(short);
    if (!m) throw new PublishFlagError(value, `${JSON.stringify(short)} is not PUBLISHED:TARGET[/PROTO]`);
    if (m[1] !== undefined) spec.published = port(value, m[1], 'published port', true);
    spec.target = port(value, m[2]!, 'target port');
    if (m[3]) spec.protocol = m[3] as 'tcp' | 'udp';
  }
  if (!spec.target) throw new PublishFlagError(value, 'no target port');
  return spec;
}
