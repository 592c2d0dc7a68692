/** Errors of the DNS resolver: each says what failed and what the operator can do about it. */

/** Base class: `code` is stable for programs, `message` is for people. */
export class DnsError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A NameView or service option that can never be served (bad name, bad address, too many upstreams). */
export class InvalidDnsInputError extends DnsError {
  constructor(message: string) {
    super('DNS_INVALID_INPUT', message);
  }
}

/** The resolver could not open its sockets inside a task namespace. */
export class DnsAttachError extends DnsError {
  constructor(netnsPath: string, reason: string) {
    super(
      'DNS_ATTACH_FAILED',
      `cannot serve 127.0.0.11 in ${netnsPath}: ${reason}; ` +
        'check that the namespace exists and that nothing else listens on 127.0.0.11 at the port asked there (answers also need lo up)',
    );
  }
}

/** attach/update/detach named a namespace the service does not serve (or serves already). */
export class DnsNamespaceStateError extends DnsError {
  constructor(netnsPath: string, state: 'attached' | 'not attached') {
    super(
      state === 'attached' ? 'DNS_ALREADY_ATTACHED' : 'DNS_NOT_ATTACHED',
      state === 'attached'
        ? `${netnsPath} is already served: use update() to change its names`
        : `${netnsPath} is not served: attach() it first`,
    );
  }
}

/** The service was closed; the agent should create a new DnsService and re-attach (a dead worker is restarted by the service itself). */
export class DnsServiceClosedError extends DnsError {
  constructor(reason: string) {
    super('DNS_SERVICE_CLOSED', `the DNS service is not running (${reason}): create a new one and attach the task namespaces again`);
  }
}
