import { type CloudEvent, HTTP, ValidationError } from "cloudevents";
import { ApiError } from "../http/errors.ts";

/**
 * Reads one CloudEvent from an HTTP request in binary or structured mode (the cloudevents SDK decides which from
 * the headers). Anything that is not a single valid CloudEvent 1.0 is 400: a broker must not retry it.
 */
export function parseCloudEvent(headers: Headers, body: string): CloudEvent<unknown> {
  const plain: Record<string, string> = {};
  headers.forEach((value, name) => {
    plain[name] = value;
  });
  let event: CloudEvent<unknown> | CloudEvent<unknown>[];
  try {
    event = HTTP.toEvent<unknown>({ headers: plain, body }) as CloudEvent<unknown> | CloudEvent<unknown>[];
  } catch (error) {
    throw invalid(error);
  }
  if (Array.isArray(event)) {
    throw new ApiError(
      "validation_failed",
      "Batched CloudEvents are not accepted; send one event per request.",
      {
        errors: [{ path: "body", message: "must be a single CloudEvent" }],
      },
    );
  }
  try {
    event.validate();
  } catch (error) {
    throw invalid(error);
  }
  if (event.specversion !== "1.0") {
    throw new ApiError("validation_failed", "Only CloudEvents 1.0 are accepted.", {
      errors: [{ path: "specversion", message: "must be 1.0" }],
    });
  }
  return event;
}

function invalid(error: unknown): ApiError {
  // The SDK's ValidationError describes the event's shape; other errors (a JSON parser's) may quote the body.
  const detail = error instanceof ValidationError ? error.message : "unreadable body";
  return new ApiError("validation_failed", `The request is not a valid CloudEvent: ${detail}`, {
    errors: [{ path: "body", message: "must be a CloudEvent 1.0 in binary or structured mode" }],
  });
}
