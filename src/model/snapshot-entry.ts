import * as keys from './keys.js';
import { RecordInvalidError, type ObjectKind } from './model-errors.js';
import {
  decodeRecord,
  NetworkRecordSchema,
  NodeRecordSchema,
  ServiceRecordSchema,
  TaskRecordSchema,
  type NetworkRecord,
  type NodeRecord,
  type ServiceRecord,
  type TaskRecord,
} from './records.js';

// One stored key decoded into the record it holds, the same way for a full snapshot and for a single watch event,
// so every reader draws the line between "record" and "invalid record" at the same place.

/**
 * A stored record this meshnet cannot read (bad JSON, bad type, bad address). It is reported, never treated as a
 * deletion: readers keep acting on what they last knew of `key`.
 */
export interface InvalidRecord {
  key: string;
  /** The kind of record the key holds (from its prefix). */
  kind?: ObjectKind;
  /** What is wrong, naming the fields (from RecordInvalidError). */
  error: string;
}

/** A decoded key: the record, or why it could not be read. */
export type SnapshotEntry =
  | { kind: 'node'; key: string; record: NodeRecord }
  | { kind: 'network'; key: string; record: NetworkRecord }
  | { kind: 'service'; key: string; record: ServiceRecord }
  | { kind: 'task'; key: string; record: TaskRecord }
  | { kind: ObjectKind; key: string; invalid: InvalidRecord };

/** The kind of record stored at `key`, or undefined for keys that hold no record (allocation claims, ...). */
export function recordKindOf(key: string): ObjectKind | undefined {
  if (key.startsWith(keys.NODES)) return 'node';
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
