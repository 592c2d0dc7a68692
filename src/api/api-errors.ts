/** Errors of the agent API, server and client: each says what the operator can do. */

/** Base class: `code` is stable for programs, `status` is the HTTP status a server answers with. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number = 500,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The request asks for something malformed (a bad tail, a bad task id). */
export class ApiBadRequestError extends ApiError {
  constructor(message: string) {
    super('API_BAD_REQUEST', message, 400);
  }
}

/** The request names something this agent does not have. */
export class ApiNotFoundError extends ApiError {
  constructor(message: string) {
    super('API_NOT_FOUND', message, 404);
  }
}

/** API settings that cannot work (half a certificate, a bad address); found before anything listens or connects. */
export class ApiSettingsError extends ApiError {
  constructor(message: string) {
    super('API_SETTINGS', message, 400);
  }
}

/** The agent cannot be reached, or refused us, or is not who the cluster CA says it should be. */
export class ApiUnreachableError extends ApiError {
  constructor(
    readonly endpoint: string,
    reason: string,
  ) {
    super('API_UNREACHABLE', `cannot reach the agent API at ${endpoint}: ${reason}`, 502);
  }
}
