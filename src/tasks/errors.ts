/** Errors of the task runtime: each names the task, what failed and what the operator can do. */

/** Base class: `code` is stable for programs, `message` is for people. */
export class TaskError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A task spec or option that can never run (bad id, empty command, relative path). */
export class InvalidTaskSpecError extends TaskError {
  constructor(message: string) {
    super('TASK_INVALID_SPEC', message);
  }
}

/** The task's state directory holds a meta.json that cannot be read as ours. */
export class CorruptTaskMetaError extends TaskError {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super('TASK_CORRUPT_META', `${path} is not a valid task record (${reason}); remove the task directory to let the supervisor start afresh`);
  }
}

/** The supervisor was closed and refuses further work. */
export class SupervisorClosedError extends TaskError {
  constructor() {
    super('TASK_SUPERVISOR_CLOSED', 'this TaskSupervisor was closed; create a new one on the same state directory to adopt the running tasks');
  }
}
