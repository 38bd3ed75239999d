import { functions } from "../../functions/registry.ts";
import type { Config, FunctionName } from "../config/index.ts";
import { buildApp } from "../http/app.ts";
import type { FunctionDefinition } from "../http/route.ts";
import type { ServiceContext } from "../payments/context.ts";

export function functionsFor(target: Config["functionTarget"]): FunctionDefinition[] {
  return target === "all" ? Object.values(functions) : [functions[target as FunctionName]];
}

/** The Hono app of one function, or of all of them for the local all-in-one process. */
export function appFor(
  service: ServiceContext,
  target: Config["functionTarget"] = service.config.functionTarget,
) {
  return buildApp(service, functionsFor(target));
}
