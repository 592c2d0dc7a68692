import type { ConntrackCount } from './kernel-view.js';

/**
 * Counts DNATed connections in `/proc/net/nf_conntrack` text per original destination and the
 * backend the reply comes from. Entries whose reply source is their original destination were not
 * balanced and are left out. Packets and bytes are summed when the kernel accounts them
 * (nf_conntrack_acct). Pure.
 */
export function countConntrack(text: string): ConntrackCount[] {
  const byKey = new Map<string, ConntrackCount>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    const protocol = f[2];
    if (protocol !== 'tcp' && protocol !== 'udp') continue;
    const fields = f.filter((x) => x.includes('='));
    const all = (name: string) => fields.filter((x) => x.startsWith(`${name}=`)).map((x) => x.slice(name.length + 1));
    const src = all('src');
    const dst = all('dst');
    const sport = all('sport');
    const dport = all('dport');
    if (dst.length < 2 || src.length < 2 || dport.length < 1 || sport.length < 2) continue;
    const [origDst, backend] = [dst[0]!, src[1]!];
    const [origDport, backendPort] = [Number(dport[0]), Number(sport[1])];
    if (backend === origDst && backendPort === origDport) continue;
    const key = `${protocol} ${origDst} ${origDport} ${backend} ${backendPort}`;
    let c = byKey.get(key);
    if (!c) byKey.set(key, (c = { protocol, dst: origDst, dport: origDport, backend, backendPort, connections: 0 }));
    c.connections++;
    const packets = all('packets').map(Number);
    const bytes = all('bytes').map(Number);
    if (packets.length > 0) c.packets = (c.packets ?? 0) + packets.reduce((a, b) => a + b, 0);
    if (bytes.length > 0) c.bytes = (c.bytes ?? 0) + bytes.reduce((a, b) => a + b, 0);
  }
  return [...byKey.values()];
}
