import functionsFramework from "@google-cloud/functions-framework";
import type { Hono } from "hono";
import { functions } from "../../functions/registry.ts";
import { loadConfig } from "../config/index.ts";
import type { FunctionDefinition } from "../http/route.ts";
import { loadApp } from "./apps.ts";
import { withDevSecret } from "./dev-secret.ts";
import { createService } from "./service.ts";

type Request = import("express").Request & { rawBody?: Buffer };
type Response = import("express").Response;

/**
 * Registers every function with @google-cloud/functions-framework so `functions-framework --target=<name>` serves
 * it (Cloud Run functions and other FaaS hosts). The framework parses the body before our handler runs, so the
 * Fetch request is rebuilt from req.rawBody. This is the portable path; @hono/node-server is the fast one.
 */
const service = createService(withDevSecret(loadConfig()));
// With K_SINK, the outbox is sent from here as from the fast runtime: events are not left for another process.
// The framework exits on SIGTERM by itself; unsent rows stay in the outbox for the next instance.
service.then((s) => s.outbox?.start());
const apps = new Map<string, Promise<Hono>>();

function appOf(name: FunctionDefinition["name"]): Promise<Hono> {
  let app = apps.get(name);
  if (!app) {
    app = service.then(async (s) => (await loadApp(s, name)) as unknown as Hono);
    apps.set(name, app);
  }
  return app;
}

for (const name of Object.keys(functions) as FunctionDefinition["name"][]) {
  functionsFramework.http(name, async (req: Request, res: Response) => {
    const app = await appOf(name);
    const headers = new Headers();
    for (const [key, value] of Object.entries(req.headers)) {
      if (Array.isArray(value)) for (const v of value) headers.append(key, v);
      else if (value !== undefined) headers.set(key, value);
    }
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const url = `http://${req.headers.host ?? "localhost"}${req.originalUrl}`;
    const response = await app.fetch(
      new Request(url, {
        method: req.method,
        headers,
        body: hasBody && req.rawBody ? new Uint8Array(req.rawBody) : null,
      }),
      { incoming: req },
    );
    res.status(response.status);
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.end(Buffer.from(await response.arrayBuffer()));
  });
}
