import { serve } from "@hono/node-server";
import { type Config, loadConfig } from "../config/index.ts";
import type { ServiceContext } from "../payments/context.ts";
import { appFor } from "./apps.ts";
import { withDevSecret } from "./dev-secret.ts";
import { mintToken } from "./dev-token.ts";
import { createService } from "./service.ts";

// Knative sends SIGTERM and waits terminationGracePeriodSeconds (default 30 s) before SIGKILL.
const SHUTDOWN_DEADLINE_MS = 20_000;

/** Serves one function (FUNCTION_TARGET) or all of them on @hono/node-server; stops gracefully on SIGTERM. */
export async function startServer(
  loaded: Config = loadConfig(),
): Promise<{ close: () => Promise<void>; service: ServiceContext }> {
  const config = withDevSecret(loaded);
  const service = await createService(config);
  const app = appFor(service);
  const server = serve({ fetch: app.fetch, port: config.port, hostname: "0.0.0.0" });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  service.log.info({ port: config.port, function: config.functionTarget, db: config.db.driver }, "listening");
  if (config.auth.generatedSecret && config.auth.secret) {
    const token = await mintToken(config.auth.secret, "acct_dev");
    // Development only: no JWT_SECRET was set, so this process made one up and hands out a token for it.
    process.stdout.write(
      `\nDevelopment token (merchant acct_dev, both scopes, 24 h):\n  export TOKEN=${token}\n\n`,
    );
  }

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      service.log.info("shutting down");
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive sockets would hold close() open; idle ones are dropped, busy ones finish first.
        (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      });
      await service.db.close().catch(() => {});
      await service.cache.close().catch(() => {});
    })());

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      const deadline = setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS);
      deadline.unref();
      close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
  return { close, service };
}
