import type { FunctionDefinition } from "../../lib/http/route.ts";

/** webhook: provider notifications in, over HTTP and as CloudEvents. */
export const webhookFunction: FunctionDefinition = {
  name: "webhook",
  routes: [],
  extraRoutes: [],
};
