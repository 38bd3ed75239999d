import { Client, Pool } from "@neondatabase/serverless";
import pg from "pg";
import ws from "ws";
import type { DbConfig } from "../config/index.ts";
import type { Db } from "./db.ts";
import { poolDb, poolOptions } from "./pg.ts";

export interface WsProxySettings {
  /** What `neonConfig.wsProxy` returns: `host:port/path?address=…`, without a scheme (the driver adds it). */
  wsProxy: (host: string, port: number | string) => string;
  useSecureWebSocket: boolean;
}

/**
 * NEON_WS_PROXY as `ws://host:port[/path]`, `wss://…` or a bare `host:port[/path]` (secure by default). The driver
 * prepends `ws:`/`wss:` itself from useSecureWebSocket, so the scheme is moved there; the proxy learns the
 * database's address from `?address=host:port`, as Neon's wsproxy expects.
 */
export function wsProxySettings(proxy: string): WsProxySettings {
  const match = /^(wss?):\/\/(.*)$/i.exec(proxy);
  const rest = (match ? (match[2] ?? "") : proxy).replace(/\/+$/, "");
  const withPath = rest.includes("/") ? rest : `${rest}/v2`;
  return {
    wsProxy: (host, port) => `${withPath}?address=${host}:${port}`,
    useSecureWebSocket: match?.[1]?.toLowerCase() !== "ws",
  };
}

/**
 * The Neon serverless driver: node-postgres' Pool API over a WebSocket, for interactive transactions. Against a
 * Neon endpoint Neon's proxy terminates the socket (TLS on the wss hop, password auth pipelined with start-up);
 * NEON_WS_PROXY points at a wsproxy in front of any other PostgreSQL. Settings go on each client rather than on
 * the global neonConfig, so two pools in one process (a test, a benchmark) can use different proxies.
 */
export function openNeon(config: DbConfig): Db {
  const proxy = config.neonWsProxy ? wsProxySettings(config.neonWsProxy) : undefined;
  class ConfiguredClient extends Client {
    constructor(options?: ConstructorParameters<typeof Client>[0]) {
      super(options);
      const settings = this.neonConfig;
      settings.webSocketConstructor = ws;
      if (proxy) {
        settings.wsProxy = proxy.wsProxy;
        settings.useSecureWebSocket = proxy.useSecureWebSocket;
        // The wsproxy speaks plain TCP to PostgreSQL on its side; encryption belongs to the wss hop in front of it.
        settings.forceDisablePgSSL = true;
        // Pipelining start-up assumes cleartext password auth, which only Neon's proxy guarantees.
        settings.pipelineConnect = false;
      }
    }
  }
  const pool = new Pool({
    ...poolOptions(config),
    ssl: false,
    // The same type parsers as the pg backend (int8 as number), so both drivers return identical rows.
    types: pg.types,
  });
  // NeonPool sets its own Client class after the base constructor has read `options.Client`: replace it here.
  pool.Client = ConfiguredClient;
  pool.on("error", () => {});
  return poolDb(pool as never, "neon", config.preparedStatements);
}
