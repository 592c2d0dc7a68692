/** Errors of `meshnet explain`: each says what the operator can do. `usage` marks bad input (exit 2). */
export class ExplainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly usage = false,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The target or --from could not be understood or names nothing in the cluster. */
export class ExplainInputError extends ExplainError {
  constructor(message: string) {
    super('EXPLAIN_INPUT', message, true);
  }
}

/** A node's kernel cannot be read from where explain runs. */
export class KernelViewUnavailableError extends ExplainError {
  constructor(
    readonly node: string,
    reason: string,
  ) {
    super(
      'KERNEL_VIEW_UNAVAILABLE',
      `cannot read the kernel of node ${node}: ${reason}; run meshnet explain on ${node} itself (its agent must run there), or through the agent API once it serves GET /v1/kernel-view`,
    );
  }
}
