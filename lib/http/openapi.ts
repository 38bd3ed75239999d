import { toJsonSchema } from "@valibot/to-json-schema";
import type * as v from "valibot";
import { ERROR_STATUS, type ErrorCode } from "./errors.ts";
import type { FunctionDefinition, RouteSpec } from "./route.ts";

// Every authenticated endpoint can answer these.
const COMMON_ERRORS: ErrorCode[] = [
  "unauthenticated",
  "insufficient_scope",
  "rate_limited",
  "internal",
  "service_unavailable",
];
const POST_ERRORS: ErrorCode[] = [
  "payload_too_large",
  "unsupported_media_type",
  "idempotency_key_in_use",
  "idempotency_key_reused",
  "validation_failed",
];

const jsonSchema = (schema: v.GenericSchema) =>
  // Transforms (query strings to numbers) have no JSON Schema; the input side is what clients send.
  toJsonSchema(schema, { errorMode: "ignore", target: "openapi-3.0" } as never) as Record<string, unknown>;

/** OpenAPI 3.1 generated from the same valibot schemas that validate requests. */
export function buildOpenApi(functions: FunctionDefinition[], serverUrl: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const fn of functions) {
    for (const route of fn.routes) {
      const path = route.path.replace(/:(\w+)/g, "{$1}");
      paths[path] ??= {};
      (paths[path] as Record<string, unknown>)[route.method] = operation(fn.name, route);
    }
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Payment Service API",
      version: "1.0.0",
      description:
        "Orders, payments and refunds. Money is integer minor units. Errors are RFC 9457 problem+json with a closed list of codes.",
    },
    servers: [{ url: serverUrl }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
      schemas: { Problem: problemSchema() },
      headers: {
        "X-Request-Id": { schema: { type: "string" }, description: "Echoed or generated request id." },
      },
    },
  };
}

function operation(fnName: string, route: RouteSpec) {
  const parameters: unknown[] = [];
  if (route.params) {
    const props = (jsonSchema(route.params).properties ?? {}) as Record<string, unknown>;
    for (const [name, schema] of Object.entries(props))
      parameters.push({ name, in: "path", required: true, schema });
  }
  if (route.query) {
    const q = jsonSchema(route.query);
    const props = (q.properties ?? {}) as Record<string, unknown>;
    const required = (q.required ?? []) as string[];
    for (const [name, schema] of Object.entries(props)) {
      parameters.push({ name, in: "query", required: required.includes(name), schema });
    }
  }
  if (route.method === "post") {
    parameters.push({
      name: "Idempotency-Key",
      in: "header",
      required: false,
      schema: { type: "string", minLength: 1, maxLength: 255 },
      description: "Makes the request safe to retry: the first response is replayed for 24 h.",
    });
  }
  const errors = [
    ...new Set([...route.errors, ...COMMON_ERRORS, ...(route.method === "post" ? POST_ERRORS : [])]),
  ];
  const responses: Record<string, unknown> = {
    [route.status]: {
      description: route.status === 201 ? "Created" : "OK",
      content: { "application/json": { schema: jsonSchema(route.response) } },
    },
  };
  for (const code of errors) {
    const status = String(ERROR_STATUS[code]);
    const existing = responses[status] as { description: string } | undefined;
    responses[status] = {
      description: existing ? `${existing.description}, ${code}` : code,
      content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
    };
  }
  return {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    "x-function": fnName,
    "x-scope": route.scope,
    parameters,
    ...(route.body
      ? {
          requestBody: {
            required: true,
            content: { "application/json": { schema: jsonSchema(route.body) } },
          },
        }
      : {}),
    responses,
  };
}

function problemSchema() {
  return {
    type: "object",
    required: ["type", "title", "status", "detail", "code", "request_id"],
    properties: {
      type: { type: "string" },
      title: { type: "string" },
      status: { type: "integer" },
      detail: { type: "string" },
      code: { type: "string", enum: Object.keys(ERROR_STATUS) },
      request_id: { type: "string" },
      errors: {
        type: "array",
        items: { type: "object", properties: { path: { type: "string" }, message: { type: "string" } } },
      },
    },
  };
}
