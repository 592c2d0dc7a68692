/** The address family of an iptables rule set: `ipv6` sets go to the ip6tables writer of the namespace. */
export type AddressFamily = 'ipv4' | 'ipv6';

/** How each family writes a host address and an address:port in iptables rules. */
export const FAMILY_TEXT: Record<AddressFamily, { hostBits: number; hostPort: (address: string, port: number) => string }> = {
  ipv4: { hostBits: 32, hostPort: (a, p) => `${a}:${p}` },
  // ip6tables' DNAT takes the bracketed form, as URLs do.
  ipv6: { hostBits: 128, hostPort: (a, p) => `[${a}]:${p}` },
};
