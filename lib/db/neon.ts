import { neonConfig, Pool } from "@neondatabase/serverless";
import ws from "ws";
import type { DbConfig } from "../config/index.ts";
import type { Db } from "./db.ts";
import { poolDb, poolOptions } from "./pg.ts";

/**
 * The Neon serverless driver: node-postgres' Pool API over a WebSocket, for interactive transactions. Against a
 * Neon endpoint Neon's proxy terminates the socket; NEON_WS_PROXY points at a wsproxy for any other PostgreSQL.
 */
export function openNeon(config: DbConfig): Db {
  neonConfig.webSocketConstructor = ws;
  if (config.neonWsProxy) {
    const proxy = config.neonWsProxy;
    neonConfig.wsProxy = (host, port) => `${proxy.replace(/\/$/, "")}/v2?address=${host}:${port}`;
    // The wsproxy speaks plain TCP to PostgreSQL; TLS belongs to the hop in front of it.
    neonConfig.useSecureWebSocket = proxy.startsWith("wss:");
    neonConfig.forceDisablePgSSL = true;
    neonConfig.pipelineConnect = false;
  }
  const pool = new Pool(poolOptions(config));
  pool.on("error", () => {});
  return poolDb(pool as never, "neon");
}
