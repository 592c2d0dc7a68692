// What one probe attempt saw. Kept apart from the probe program so the classification is unit-tested
// and the summary, the bounds and the report all read one vocabulary.

/** How a fresh-connection request ended. */
export type ProbeOutcome = 'ok' | 'refused' | 'timeout' | 'reset' | 'wrong' | 'error';

/** Every outcome, in report order. */
export const PROBE_OUTCOMES: readonly ProbeOutcome[] = ['ok', 'refused', 'timeout', 'reset', 'wrong', 'error'];

/** One request on its own TCP connection. */
export interface ProbeAttempt {
  /** Start time, ms since the epoch (the machine clock the test runner shares). */
  t: number;
  /** How long it took until it ended, ms. */
  ms: number;
  outcome: ProbeOutcome;
  /** The task that answered ("web.2"), when the answer named one. */
  task?: string;
  /** The node that task runs on ("host-b"). */
  node?: string;
  /** The error code or the unexpected answer, for failures. */
  detail?: string;
}

/** A probe run as the probe program prints it on stdout. */
export interface ProbeReport {
  target: string;
  intervalMs: number;
  timeoutMs: number;
  startedAt: number;
  endedAt: number;
  attempts: ProbeAttempt[];
}

/** The reply line of the demo's echo apps: "<task> on <node> (client <ip>)". */
const ECHO_ANSWER = /^(\S+) on (\S+) \(client [^)]+\)/;

/** Reads who answered from an HTTP status and body; anything but a 200 echo line is a wrong answer. */
export function judgeAnswer(status: number, body: string): Pick<ProbeAttempt, 'outcome' | 'task' | 'node' | 'detail'> {
  const m = ECHO_ANSWER.exec(body.trim());
  if (status !== 200 || !m) return { outcome: 'wrong', detail: `HTTP ${status}: ${body.trim().slice(0, 80)}` };
  return { outcome: 'ok', task: m[1]!, node: m[2]! };
}

/** Maps a socket error to an outcome; `timedOut` wins because destroying a timed-out request also errors. */
export function classifyError(err: { code?: string; message?: string }, timedOut: boolean): Pick<ProbeAttempt, 'outcome' | 'detail'> {
  const detail = err.code ?? err.message ?? 'unknown error';
  if (timedOut) return { outcome: 'timeout', detail: 'no answer within the timeout' };
  if (err.code === 'ECONNREFUSED') return { outcome: 'refused', detail };
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return { outcome: 'reset', detail };
  return { outcome: 'error', detail };
}

/**
 * A DNS query the resolver answers itself, never forwarding it (class CHAOS, TXT "probe.meshnet."): what the
 * probe's --dns mode sends, so that an answer measures the resolver and not an upstream.
 */
export function resolverProbeQuery(id: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id & 0xffff, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // one question
  const name = Buffer.from([5, ...Buffer.from('probe'), 7, ...Buffer.from('meshnet'), 0]);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(16, 0); // TXT
  tail.writeUInt16BE(3, 2); // CHAOS
  return Buffer.concat([header, name, tail]);
}

/** Judges a datagram as the answer to query `id`: any response carrying that id counts, whatever its rcode. */
export function judgeDnsAnswer(id: number, msg: Buffer): Pick<ProbeAttempt, 'outcome' | 'detail'> {
  if (msg.length < 12) return { outcome: 'wrong', detail: `a ${msg.length}-byte datagram is no DNS message` };
  if (msg.readUInt16BE(0) !== (id & 0xffff)) return { outcome: 'wrong', detail: `answer to query ${msg.readUInt16BE(0)}, not ${id & 0xffff}` };
  if ((msg[2]! & 0x80) === 0) return { outcome: 'wrong', detail: 'a query, not a response' };
  return { outcome: 'ok' };
}
