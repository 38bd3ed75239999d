import type { Config } from "../config/index.ts";
import { type AppOptions, buildApp } from "../http/app.ts";
import type { FunctionDefinition } from "../http/route.ts";
import type { ServiceContext } from "../payments/context.ts";

/**
 * Loads only the function a process serves, for the all-in-one entry and the sources under tsx: each import below
 * is its own chunk of the ESM build. A deployed function starts from its own bundle instead (dist/functions/, see
 * lib/runtime/launch.ts), which holds no other function's code at all.
 */
export async function loadFunctions(target: Config["functionTarget"]): Promise<FunctionDefinition[]> {
  switch (target) {
    case "create":
      return [(await import("../../functions/create/index.ts")).createFunction];
    case "confirm":
      return [(await import("../../functions/confirm/index.ts")).confirmFunction];
    case "cancel":
      return [(await import("../../functions/cancel/index.ts")).cancelFunction];
    case "status":
      return [(await import("../../functions/status/index.ts")).statusFunction];
    case "webhook":
      return [(await import("../../functions/webhook/index.ts")).webhookFunction];
    case "health":
      return [(await import("../../functions/registry.ts")).functions.health];
    case "all":
      return Object.values((await import("../../functions/registry.ts")).functions);
  }
}

/** The Hono app of one function, or of all of them for the local all-in-one process. */
export async function loadApp(
  service: ServiceContext,
  target: Config["functionTarget"] = service.config.functionTarget,
  options?: AppOptions,
) {
  return buildApp(service, await loadFunctions(target), options);
}
