/**
 * Linux capabilities as Docker names them (`NET_BIND_SERVICE`, `ALL`) and the set a task keeps.
 * Hand-written: the list is the kernel's ABI (include/uapi/linux/capability.h, index = bit number)
 * and the set arithmetic is moby's TweakCapabilities; no maintained npm package carries either.
 */

/** Capability names without the CAP_ prefix, indexed by bit number (Linux 5.9: CHECKPOINT_RESTORE = 40). */
export const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID',
  'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const;

/** One capability name. */
export type Capability = (typeof CAPABILITIES)[number];

/** `ALL` in --cap-add or --cap-drop means every capability, as in Docker. */
export const ALL_CAPABILITIES = 'ALL';

/** What a task may name in --cap-add / --cap-drop. */
export type CapabilityName = Capability | typeof ALL_CAPABILITIES;

/** The bounding set of a root task given no --cap-add / --cap-drop: Docker's default (moby oci/caps/defaults.go). */
export const DEFAULT_CAPABILITIES: readonly Capability[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID',
  'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

const KNOWN = new Set<string>([...CAPABILITIES, ALL_CAPABILITIES]);

/** The canonical name (`net_bind_service`, `CAP_NET_BIND_SERVICE` -> `NET_BIND_SERVICE`), or undefined when Linux has no such capability. */
export function normalizeCapability(name: string): CapabilityName | undefined {
  const upper = name.trim().toUpperCase();
  const bare = upper.startsWith('CAP_') ? upper.slice(4) : upper;
  return KNOWN.has(bare) ? (bare as CapabilityName) : undefined;
}

/** The rule a capability name must follow, for error messages. */
export const CAPABILITY_RULE = `a Linux capability as Docker names it, e.g. NET_BIND_SERVICE or CAP_NET_ADMIN, or ALL`;

/**
 * The capabilities a task keeps, as Docker computes them: ALL in `add` gives every capability but
 * the dropped ones; ALL in `drop` gives only the added ones; otherwise the default set minus
 * `drop`, plus `add` (an added capability wins over the same one dropped). Sorted by bit number.
 */
export function effectiveCapabilities(add: readonly CapabilityName[] = [], drop: readonly CapabilityName[] = []): Capability[] {
  const kept = new Set<Capability>();
  const named = (list: readonly CapabilityName[]): Capability[] => list.filter((c): c is Capability => c !== ALL_CAPABILITIES);
  if (add.includes(ALL_CAPABILITIES)) {
    for (const c of CAPABILITIES) if (!drop.includes(c)) kept.add(c);
  } else if (drop.includes(ALL_CAPABILITIES)) {
    for (const c of named(add)) kept.add(c);
  } else {
    for (const c of DEFAULT_CAPABILITIES) if (!drop.includes(c)) kept.add(c);
    for (const c of named(add)) kept.add(c);
  }
  return CAPABILITIES.filter((c) => kept.has(c));
}

/** The capabilities set in a /proc/<pid>/status mask such as `CapBnd:\t00000000a80425fb`. */
export function capabilitiesInMask(hex: string): Capability[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}
