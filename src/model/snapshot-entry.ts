import * as keys from './keys.js';
import { RecordInvalidError, type ObjectKind } from './model-errors.js';
import {
  decodeRecord,
  NetworkRecordSchema,
  NodeInfoRecordSchema,
  NodeRecordSchema,
  ServiceRecordSchema,
  TaskRecordSchema,
  type NetworkRecord,
  type NodeInfoRecord,
  type NodeRecord,
  type ServiceRecord,
  type TaskRecord,
} from './records.js';

// One stored key decoded into the record it holds, the same way for a full snapshot and for a single watch event,
// so every reader draws the line between "record" and "invalid record" at the same place.

/** The kinds of records a snapshot holds: the model's objects, plus nodes' persistent records. */
export type RecordKind = ObjectKind | 'node-info';

/**
 * A stored record this meshnet cannot read (bad JSON, bad type, bad address). It is reported, never treated as a
 * deletion: readers keep acting on what they last knew of `key`.
 */
export interface InvalidRecord {
  key: string;
  /** The kind of record the key holds (from its prefix). */
  kind?: RecordKind;
  /** What is wrong, naming the fields (from RecordInvalidError). */
  error: string;
}

/** A decoded key: the record, or why it could not be read. */
export type SnapshotEntry =
  | { kind: 'node'; key: string; record: NodeRecord }
  | { kind: 'node-info'; key: string; record: NodeInfoRecord }
  | { kind: 'network'; key: string; record: NetworkRecord }
  | { kind: 'service'; key: string; record: ServiceRecord }
  | { kind: 'task'; key: string; record: TaskRecord }
  | { kind: RecordKind; key: string; invalid: InvalidRecord };

/** The kind of record stored at `key`, or undefined for keys that hold no record (allocation claims, ...). */
export function recordKindOf(key: string): RecordKind | undefined {
  if (key.startsWith(keys.NODES)) return 'node';
  if (key.startsWith(keys.NODE_INFO)) return 'node-info';
  if (key.startsWith(keys.NETWORKS)) return 'network';
  if (key.startsWith(keys.SERVICES)) return 'service';
  if (key.startsWith(keys.TASKS)) return 'task';
  return undefined;
}

/** Decodes the value stored at `key`; undefined when the key holds no record. */
export function decodeSnapshotEntry(key: string, value: string): SnapshotEntry | undefined {
  const kind = recordKindOf(key);
  try {
    switch (kind) {
      case 'node':
        return { kind, key, record: decodeRecord(NodeRecordSchema, kind, key, value) };
      case 'node-info':
        return { kind, key, record: decodeRecord(NodeInfoRecordSchema, 'node info', key, value) };
      case 'network':
        return { kind, key, record: decodeRecord(NetworkRecordSchema, kind, key, value) };
      case 'service':
        return { kind, key, record: decodeRecord(ServiceRecordSchema, kind, key, value) };
      case 'task':
        return { kind, key, record: decodeRecord(TaskRecordSchema, kind, key, value) };
      case undefined:
        return undefined;
    }
  } catch (err) {
    if (!(err instanceof RecordInvalidError)) throw err;
    return { kind: kind!, key, invalid: { key, kind: kind!, error: err.message } };
  }
}
