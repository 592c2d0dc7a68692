/** Errors of the routing mesh: each names the port or object and says what the operator can do. */

/** Base class: `code` is stable for programs, `message` is for people. */
export class MeshError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Input that cannot describe a mesh (bad address, port out of range, missing field). */
export class InvalidMeshInputError extends MeshError {
  constructor(message: string) {
    super('MESH_INVALID_INPUT', message);
  }
}

/** The same ingress-published port is claimed twice (by two services, or twice by one). */
export class PublishedPortConflictError extends MeshError {
  constructor(
    readonly protocol: string,
    readonly port: number,
    readonly serviceId: string,
    readonly heldBy: string,
  ) {
    super(
      'MESH_PUBLISHED_PORT_CONFLICT',
      `service ${serviceId} cannot publish ${port}/${protocol}: it is already in use by ${heldBy}; ` +
        'choose another published port or unpublish it there first',
    );
  }
}

/** A mode=host port cannot be bound on this node because something already holds it. */
export class HostPortConflictError extends MeshError {
  constructor(
    readonly protocol: string,
    readonly port: number,
    readonly nodeId: string,
    readonly taskId: string,
    readonly heldBy: string,
  ) {
    super(
      'MESH_HOST_PORT_CONFLICT',
      `task ${taskId} cannot bind ${port}/${protocol} on node ${nodeId} (mode=host): the port is already used by ${heldBy}; ` +
        'run at most one task of a mode=host service per node (max_replicas_per_node=1) or publish another port',
    );
  }
}

/** A policy=local health-check port collides with a published or bound port. */
export class HealthPortConflictError extends MeshError {
  constructor(
    readonly port: number,
    readonly serviceId: string,
    readonly heldBy: string,
  ) {
    super(
      'MESH_HEALTH_PORT_CONFLICT',
      `service ${serviceId} cannot serve its health check on ${port}/tcp: the port is already used by ${heldBy}; ` +
        'choose another health port',
    );
  }
}

/** iptables-save, iptables-restore or conntrack failed in a namespace; the message carries the tool's own words. */
export class IptablesCommandError extends MeshError {
  constructor(
    readonly argv: readonly string[],
    readonly netns: string | null,
    readonly exitCode: number,
    readonly stderr: string,
  ) {
    super(
      'MESH_IPTABLES_FAILED',
      `${argv.join(' ')}${netns ? ` (in ${netns})` : ''} exited with ${exitCode}: ${stderr.trim().slice(0, 2000) || 'no output'}; ` +
        'check that iptables (with the nat, filter and mangle tables) is installed (scripts/setup installs it) and that the namespace still exists',
    );
  }
}

/** Any conflict the plan had to leave out; the rest of the plan still applies. */
export type MeshConflictError = PublishedPortConflictError | HostPortConflictError | HealthPortConflictError;
