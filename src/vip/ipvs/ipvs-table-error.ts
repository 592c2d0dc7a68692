/** The table holds something IPVS cannot express; the message says what to change. */
export class IpvsTableError extends Error {
  readonly code = 'IPVS_INVALID_TABLE';
  constructor(message: string) {
    super(message);
    this.name = 'IpvsTableError';
  }
}
