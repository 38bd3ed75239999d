/** The closed list of error codes of the API contract, each with its one HTTP status. */
export const ERROR_STATUS = {
  validation_failed: 400,
  unauthenticated: 401,
  insufficient_scope: 403,
  not_found: 404,
  invalid_state: 409,
  idempotency_key_in_use: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  idempotency_key_reused: 422,
  rate_limited: 429,
  internal: 500,
  provider_unavailable: 502,
  service_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const TITLES: Record<ErrorCode, string> = {
  validation_failed: "Validation failed",
  unauthenticated: "Unauthenticated",
  insufficient_scope: "Insufficient scope",
  not_found: "Not found",
  invalid_state: "Invalid state",
  idempotency_key_in_use: "Idempotency key in use",
  payload_too_large: "Payload too large",
  unsupported_media_type: "Unsupported media type",
  idempotency_key_reused: "Idempotency key reused",
  rate_limited: "Rate limited",
  internal: "Internal error",
  provider_unavailable: "Provider unavailable",
  service_unavailable: "Service unavailable",
};

export interface FieldError {
  path: string;
  message: string;
}

export interface ProblemOptions {
  errors?: FieldError[];
  /** Seconds; sent as Retry-After. */
  retryAfter?: number;
  /** 502 or 503 for provider_unavailable. */
  status?: number;
  headers?: Record<string, string>;
}

/** The one error type the API raises; `onError` renders it as problem+json. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    detail: string,
    readonly options: ProblemOptions = {},
  ) {
    super(detail);
    this.status = options.status ?? ERROR_STATUS[code];
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  request_id: string;
  errors?: FieldError[];
}

export function toProblem(error: ApiError, requestId: string): Problem {
  return {
    type: `https://docs.payment-service.dev/errors/${error.code}`,
    title: TITLES[error.code],
    status: error.status,
    detail: error.message,
    code: error.code,
    request_id: requestId,
    ...(error.options.errors ? { errors: error.options.errors } : {}),
  };
}

/** No such object; with `path`, the request field that named it (a body's order_id, payment_id). */
export const notFound = (what: string, path?: string) =>
  new ApiError(
    "not_found",
    `No such ${what}.`,
    path ? { errors: [{ path, message: `No such ${what}.` }] } : undefined,
  );
export const invalidState = (detail: string) => new ApiError("invalid_state", detail);
export const validationFailed = (errors: FieldError[]) =>
  new ApiError(
    "validation_failed",
    errors.map((e) => `${e.path}: ${e.message}`).join("; ") || "Invalid request.",
    {
      errors,
    },
  );
