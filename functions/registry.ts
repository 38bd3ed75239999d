import type { FunctionDefinition } from "../lib/http/route.ts";
import { cancelFunction } from "./cancel/index.ts";
import { confirmFunction } from "./confirm/index.ts";
import { createFunction } from "./create/index.ts";
import { healthFunction } from "./health/index.ts";
import { statusFunction } from "./status/index.ts";
import { webhookFunction } from "./webhook/index.ts";

const apiFunctions: FunctionDefinition[] = [
  createFunction,
  confirmFunction,
  cancelFunction,
  statusFunction,
  webhookFunction,
];

/** Every function, by name; one Knative Service each. */
export const functions: Record<FunctionDefinition["name"], FunctionDefinition> = {
  create: createFunction,
  confirm: confirmFunction,
  cancel: cancelFunction,
  status: statusFunction,
  webhook: webhookFunction,
  health: healthFunction(() => apiFunctions),
};

/** Method and path of every route, per function (deployment routing is checked against this). */
export const functionDefinitions = Object.values(functions).map((fn) => ({
  name: fn.name,
  routes: [
    ...fn.routes.map((r) => ({ method: r.method.toUpperCase(), path: r.path })),
    ...(fn.extraRoutes ?? []),
  ],
}));
