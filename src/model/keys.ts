// Store key layout. Everything lives under /meshnet/ so one prefix watch sees every change.
//
//   /meshnet/nodes/<nodeId>                      NodeRecord (put with the agent's lease: the liveness signal)
//   /meshnet/node-info/<nodeId>                  NodeInfoRecord (no lease: availability, labels, address; until node rm)
//   /meshnet/ingress-endpoints/<nodeId>          the node's ingress_sbox address (no lease; written by its agent)
//   /meshnet/networks/<network>                  NetworkRecord
//   /meshnet/services/<service>                  ServiceRecord
//   /meshnet/tasks/<service>/<slot>              TaskRecord (one per slot; replaced by CAS when re-placed)
//   /meshnet/tasks/<service>/<slot>/next         its start-first successor during a rolling update (src/model/successor-task.ts)
//   /meshnet/task-history/<service>/<slot>       JSON: the slot's last finished tasks (src/model/task-history.ts)
//   /meshnet/ipam/subnets                        JSON {<cidr>: <network>}: one key, so overlap checks are one CAS
//   /meshnet/ipam/vnis/<vni>                     owning network name
//   /meshnet/ipam/ips/<network>/<ip>             owner: "gateway", "vip:<service>" or "task:<taskId>"
//   /meshnet/ipam/ports/<protocol>/<port>        owning service name (published and health ports)
//   /meshnet/ipam/netusers/<network>             JSON string[] of services attached (guards removeNetwork)
//   /meshnet/encryption/keyring                  the encrypted overlays' keyring (src/overlay/keyring-store.ts)

/** Root of all meshnet keys. */
export const ROOT = '/meshnet/';
/** Prefix of node records. */
export const NODES = `${ROOT}nodes/`;
/** Prefix of persistent node records. */
export const NODE_INFO = `${ROOT}node-info/`;
/** Prefix of the nodes' ingress endpoints (src/agent/ingress-endpoint.ts writes them). */
export const INGRESS_ENDPOINTS = `${ROOT}ingress-endpoints/`;
/** Prefix of network records. */
export const NETWORKS = `${ROOT}networks/`;
/** Prefix of service records. */
export const SERVICES = `${ROOT}services/`;
/** Prefix of task records. */
export const TASKS = `${ROOT}tasks/`;
/** Prefix of the slots' task histories (not under TASKS: a history is no task record). */
export const TASK_HISTORY = `${ROOT}task-history/`;
/** The subnet allocation table. */
export const SUBNETS_KEY = `${ROOT}ipam/subnets`;
/** Prefix of VNI claims. */
export const VNIS = `${ROOT}ipam/vnis/`;
/** Prefix of IP claims. */
export const IPS = `${ROOT}ipam/ips/`;
/** Prefix of port claims. */
export const PORTS = `${ROOT}ipam/ports/`;
/** Prefix of network user lists. */
export const NETUSERS = `${ROOT}ipam/netusers/`;

/** Prefix of the encrypted overlays' records. */
export const ENCRYPTION = `${ROOT}encryption/`;
/** The encrypted overlays' keyring. */
export const KEYRING_KEY = `${ENCRYPTION}keyring`;

/** Key of a node record. */
export const nodeKey = (id: string): string => `${NODES}${id}`;
/** Key of a node's persistent record. */
export const nodeInfoKey = (id: string): string => `${NODE_INFO}${id}`;
/** Key of a node's ingress endpoint. */
export const ingressEndpointKey = (id: string): string => `${INGRESS_ENDPOINTS}${id}`;
/** Key of a network record. */
export const networkKey = (name: string): string => `${NETWORKS}${name}`;
/** Key of a service record. */
export const serviceKey = (name: string): string => `${SERVICES}${name}`;
/** Prefix of a service's task records. */
export const serviceTasksPrefix = (service: string): string => `${TASKS}${service}/`;
/** Key of the task record of one slot. */
export const taskKey = (service: string, slot: number): string => `${TASKS}${service}/${slot}`;
/** Key of a slot's start-first successor task (moved to taskKey when the old task is removed). */
export const taskSuccessorKey = (service: string, slot: number): string => `${TASKS}${service}/${slot}/next`;
/** Prefix of a service's task histories. */
export const serviceTaskHistoryPrefix = (service: string): string => `${TASK_HISTORY}${service}/`;
/** Key of one slot's task history. */
export const taskHistoryKey = (service: string, slot: number): string => `${TASK_HISTORY}${service}/${slot}`;
/** Key of a VNI claim. */
export const vniKey = (vni: number): string => `${VNIS}${vni}`;
/** Prefix of a network's IP claims. */
export const networkIpsPrefix = (network: string): string => `${IPS}${network}/`;
/** Key of an IP claim. */
export const ipKey = (network: string, ip: string): string => `${IPS}${network}/${ip}`;
/** Key of a port claim. */
export const portKey = (protocol: string, port: number): string => `${PORTS}${protocol}/${port}`;
/** Key of a network's user list. */
export const netusersKey = (network: string): string => `${NETUSERS}${network}`;
