import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { readTaskLog } from '../tasks/task-log.js';
import { TASK_ID } from '../tasks/task-spec.js';
import { ApiBadRequestError, ApiNotFoundError } from './api-errors.js';
import type { ApiRequest, ApiServer } from './api-server.js';

/** What the log routes need of the node's task runtime. */
export interface TaskLogSource {
  /** This node's name, for messages. */
  node: string;
  /** The live log file of a task run here, or undefined when the task is not on this node. */
  logPath(taskId: string): string | undefined;
  /** True once no process of the task will write again (failed, stopped, gone): a follow then ends. */
  ended(taskId: string): boolean;
}

/** Most lines a tail may ask for; more is "all". */
const MAX_TAIL = 10_000_000;

/** The query of a log request, validated: `tail` (a count or `all`) and `follow` (1/0, true/false). */
export function parseLogQuery(query: URLSearchParams): { tail?: number; follow: boolean } {
  const tail = query.get('tail');
  const follow = query.get('follow');
  const out: { tail?: number; follow: boolean } = { follow: false };
  if (tail !== null && tail !== 'all') {
    if (!/^[0-9]{1,9}$/.test(tail) || Number(tail) > MAX_TAIL) throw new ApiBadRequestError(`tail=${JSON.stringify(tail)}: give a number of lines from 0 to ${MAX_TAIL}, or all`);
    out.tail = Number(tail);
  }
  if (follow !== null) {
    if (!['1', '0', 'true', 'false'].includes(follow)) throw new ApiBadRequestError(`follow=${JSON.stringify(follow)}: give 1 or 0`);
    out.follow = follow === '1' || follow === 'true';
  }
  return out;
}

/**
 * `GET /v1/tasks/:id/logs?tail=N&follow=1`: the task's stdout and stderr as text, rotated files
 * included; a follow streams until the task ends, the client leaves or the agent stops.
 */
export function addTaskLogRoutes(api: ApiServer, source: TaskLogSource): void {
  api.route('GET', '/v1/tasks/:id/logs', async (req: ApiRequest, res: ServerResponse) => {
    const id = req.params['id']!;
    if (!TASK_ID.test(id)) throw new ApiBadRequestError(`invalid task id ${JSON.stringify(id)}`);
    const query = parseLogQuery(req.query);
    const path = source.logPath(id);
    if (path === undefined) throw new ApiNotFoundError(`task ${id} does not run on node ${source.node} (see meshnet task ls for its node)`);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    // The head goes out now: a follow of a quiet task still tells the client it is connected.
    res.flushHeaders();
    const follow = query.follow ? { ended: () => source.ended(id), signal: req.signal } : undefined;
    for await (const chunk of readTaskLog(path, { ...(query.tail !== undefined ? { tail: query.tail } : {}), ...(follow ? { follow } : {}) })) {
      if (req.signal.aborted) break;
      if (!res.write(chunk)) {
        try {
          await once(res, 'drain', { signal: req.signal });
        } catch {
          break; // the client left
        }
      }
    }
    res.end();
  });
}
