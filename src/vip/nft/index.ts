/** The nftables load-balancing backend: what the agent wires in. */
export { NftBackend, type NftApplyDetails, type NftBackendOptions } from './nft-backend.js';
export { HostNamespaceNotAllowedError, InvalidLbTableError, NftApplyError, NftBackendError, NftParseError, NftReadError } from './errors.js';
export { LibnftablesMissingError, NftCommandError, NftContextError } from './libnftables.js';
export { renderLbTable } from './render.js';
export { parseRuleset, tracePacket, type TracePacket, type TraceResult } from './packet-tracer.js';
export { staleConntrackDeletions, conntrackDeleteArgv, type ConntrackDeletion } from './stale-conntrack.js';
export { validateLbTable } from './validate-table.js';
