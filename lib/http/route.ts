import type { Context } from "hono";
import type * as v from "valibot";
import type { VerbContext } from "../payments/context.ts";
import type { ErrorCode } from "./errors.ts";

export type Scope = "payments:read" | "payments:write";
type Schema = v.GenericSchema;
type Out<S> = S extends Schema ? v.InferOutput<S> : undefined;

/** One endpoint: its contract (for validation and OpenAPI) and its thin handler, which calls one verb. */
export interface RouteSpec<
  P extends Schema | undefined = Schema | undefined,
  B extends Schema | undefined = Schema | undefined,
  Q extends Schema | undefined = Schema | undefined,
> {
  method: "get" | "post";
  /** Hono syntax: /v1/payments/:id/confirm */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  scope: Scope;
  params?: P;
  body?: B;
  query?: Q;
  response: Schema;
  status: 200 | 201;
  /** Error codes this endpoint can answer with, beyond those every authenticated endpoint has. */
  errors: ErrorCode[];
  /**
   * For routes that create an object: answers a retry whose first run committed but died before its response was
   * stored, with the object it created (id from the Idempotency-Key record's recovery point).
   */
  recover?: (ctx: VerbContext, id: string) => Promise<unknown>;
  handler: (input: {
    params: Out<P>;
    body: Out<B>;
    query: Out<Q>;
    ctx: VerbContext;
    c: Context;
  }) => Promise<unknown>;
}

// The handler's input is typed from the schemas; stored routes are erased to the common shape.
export function defineRoute<
  P extends Schema | undefined,
  B extends Schema | undefined,
  Q extends Schema | undefined,
>(spec: RouteSpec<P, B, Q>): RouteSpec {
  return spec as unknown as RouteSpec;
}

/** A function (one Knative Service): its name and its routes. */
export interface FunctionDefinition {
  name: "create" | "confirm" | "cancel" | "status" | "webhook" | "health";
  routes: RouteSpec[];
  /** Extra, non-JSON-API endpoints (webhooks, CloudEvents, pages, internal triggers). */
  mount?: (app: import("hono").Hono, service: import("../payments/context.ts").ServiceContext) => void;
  /** Method and path of what `mount` serves, for routing checks and docs. */
  extraRoutes?: { method: string; path: string }[];
}
