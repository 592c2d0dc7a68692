// Typed errors of the cluster model: callers switch on `code`, operators read `message`.

/** Base class of all model errors. */
export class ModelError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A record or a spec failed schema validation. */
export class RecordInvalidError extends ModelError {
  constructor(
    readonly kind: string,
    readonly where: string,
    readonly issues: string[],
  ) {
    super('RECORD_INVALID', `invalid ${kind} ${where}: ${issues.join('; ')}`);
  }
}

/** The kinds of objects the model stores. */
export type ObjectKind = 'node' | 'network' | 'service' | 'task';

/** A named object does not exist. */
export class NotFoundError extends ModelError {
  constructor(
    readonly kind: ObjectKind,
    readonly id: string,
    hint = '',
  ) {
    super(`${kind.toUpperCase()}_NOT_FOUND`, `${kind} ${JSON.stringify(id)} does not exist${hint ? `; ${hint}` : ''}`);
  }
}

/** A named object exists already. */
export class AlreadyExistsError extends ModelError {
  constructor(
    readonly kind: ObjectKind,
    readonly id: string,
  ) {
    super(`${kind.toUpperCase()}_EXISTS`, `${kind} ${JSON.stringify(id)} already exists; remove it first or pick another name`);
  }
}

/** A requested subnet overlaps one in use (or the reserved ingress range). */
export class SubnetOverlapError extends ModelError {
  constructor(
    readonly subnet: string,
    readonly other: string,
    readonly owner: string,
  ) {
    super('SUBNET_OVERLAP', `subnet ${subnet} overlaps ${other} (${owner}); choose a non-overlapping subnet or omit it to get a free /24`);
  }
}

/** What a pool hands out. */
export type PoolKind = 'subnet' | 'vni' | 'ip' | 'port';

/** A pool has nothing left. */
export class PoolExhaustedError extends ModelError {
  constructor(
    readonly pool: PoolKind,
    detail: string,
  ) {
    super(`${pool.toUpperCase()}_EXHAUSTED`, `no free ${pool} left: ${detail}`);
  }
}

/** An explicit published port is already taken by another service. */
export class PortConflictError extends ModelError {
  constructor(
    readonly port: number,
    readonly protocol: string,
    readonly owner: string,
  ) {
    super('PORT_CONFLICT', `published port ${port}/${protocol} is already used by service ${JSON.stringify(owner)}; pick another port or omit it for a dynamic one`);
  }
}

/** A network still has services attached. */
export class NetworkInUseError extends ModelError {
  constructor(
    readonly network: string,
    readonly services: string[],
  ) {
    super('NETWORK_IN_USE', `network ${JSON.stringify(network)} is used by service(s) ${services.join(', ')}; remove them first`);
  }
}

/** A spec that is well-formed but not allowed (e.g. dnsrr with ingress ports). */
export class InvalidSpecError extends ModelError {
  constructor(message: string) {
    super('INVALID_SPEC', message);
  }
}

/** A compare-and-swap loop kept losing to concurrent writers. */
export class ContentionError extends ModelError {
  constructor(operation: string, attempts: number) {
    super('CONTENTION', `${operation} lost ${attempts} compare-and-swap rounds to concurrent writers; retry later`);
  }
}

/** A task record was replaced by another claim (its id changed). */
export class TaskReplacedError extends ModelError {
  constructor(
    readonly service: string,
    readonly slot: number,
    readonly taskId: string,
  ) {
    super('TASK_REPLACED', `task ${taskId} no longer owns ${service} slot ${slot}; stop it and let the agent reconcile`);
  }
}

/** `node rm` of a node whose agent still holds its lease. */
export class NodeLiveError extends ModelError {
  constructor(readonly node: string) {
    super('NODE_LIVE', `node ${JSON.stringify(node)} is live (its agent holds its lease); stop its agent and wait for the node to be down, or give --force (a running agent registers again)`);
  }
}
