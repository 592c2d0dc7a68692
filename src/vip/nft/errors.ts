/** Errors of the nftables load-balancing backend: each says what failed and what the operator can do. */

/** Base class: `code` is stable for programs, `message` is for people. */
export class NftBackendError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A load-balancing table that can never be applied (bad id, address, port, duplicate frontend). */
export class InvalidLbTableError extends NftBackendError {
  constructor(message: string) {
    super('INVALID_LB_TABLE', `invalid load-balancing table: ${message}`);
  }
}

/** `nft` rejected a transaction; nothing was applied (nft transactions are atomic). */
export class NftApplyError extends NftBackendError {
  constructor(
    readonly nftMessage: string,
    readonly netns: string | null,
    readonly mode: 'full' | 'incremental',
  ) {
    super(
      'NFT_APPLY_FAILED',
      `nft rejected the ${mode} meshnet transaction${netns ? ` in ${netns}` : ''}; the previous ruleset is still in place: ${nftMessage.trim().slice(0, 2000)}`,
    );
  }
}

/** The kernel's meshnet table could not be read or understood. */
export class NftReadError extends NftBackendError {
  constructor(message: string) {
    super('NFT_READ_FAILED', `cannot read back table ip meshnet: ${message}`);
  }
}

/** Refused to touch the namespace meshnet runs in without an explicit opt-in. */
export class HostNamespaceNotAllowedError extends NftBackendError {
  constructor() {
    super(
      'HOST_NETNS_REFUSED',
      'NftBackend was given no namespace path: pass allowHostNamespace: true if programming the namespace meshnet itself runs in is really intended',
    );
  }
}

/** The packet tracer met ruleset text outside the subset it understands. */
export class NftParseError extends NftBackendError {
  constructor(message: string) {
    super('NFT_PARSE_FAILED', message);
  }
}
