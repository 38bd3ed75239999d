import { createServer, type IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { pathToFileURL } from "node:url";
import { createWebSocketStream, WebSocketServer } from "ws";

/**
 * A WebSocket-to-TCP proxy for the Neon serverless driver, for tests and local development: the driver opens
 * `ws://<proxy>/<path>?address=<host>:<port>` and sends the PostgreSQL wire protocol as binary messages; each
 * socket becomes one TCP connection to that address. Only allow-listed addresses are reachable, so the proxy
 * cannot be used to open connections elsewhere. In production Neon's own proxy (or its wsproxy image) does this.
 *
 *   npx tsx scripts/ws-proxy.ts [--port 8081] [--host 127.0.0.1] [--allow 127.0.0.1:5432,127.0.0.1:5433]
 *   NEON_WS_PROXY=ws://127.0.0.1:8081 DATABASE_URL=postgres://postgres@127.0.0.1:5432/test DB_DRIVER=neon npm run dev
 */
export interface WsProxyOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** `host:port` addresses the proxy may connect to; the first is used when a request names none. */
  allow?: string[];
}

export interface WsProxy {
  /** `ws://host:port`, the value for NEON_WS_PROXY. */
  url: string;
  port: number;
  /** Open proxied connections. */
  connections: () => number;
  close: () => Promise<void>;
}

export const DEFAULT_ALLOW = ["127.0.0.1:5432"];

export async function startWsProxy(options: WsProxyOptions = {}): Promise<WsProxy> {
  const host = options.host ?? "127.0.0.1";
  const allow = new Set(options.allow ?? DEFAULT_ALLOW);
  const fallback = [...allow][0];
  const open = new Set<Socket>();
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer((_req, res) => {
    res.writeHead(426, { "Content-Type": "text/plain" }).end("WebSocket upgrade required\n");
  });

  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const address = new URL(req.url ?? "/", "http://proxy").searchParams.get("address") ?? fallback;
    if (!address || !allow.has(address)) {
      socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (client) => {
      const [targetHost, targetPort] = splitAddress(address);
      const upstream = connect({ host: targetHost, port: targetPort });
      upstream.setNoDelay(true);
      open.add(upstream);
      const downstream = createWebSocketStream(client);
      // Either side ending or failing ends the other: PostgreSQL sees a closed connection and rolls back.
      const finish = () => {
        open.delete(upstream);
        upstream.destroy();
        downstream.destroy();
      };
      upstream.on("error", finish).on("close", finish);
      downstream.on("error", finish).on("close", finish);
      downstream.pipe(upstream);
      upstream.pipe(downstream);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `ws://${host}:${port}`,
    port,
    connections: () => open.size,
    close: async () => {
      for (const socket of open) socket.destroy();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(":");
  return [address.slice(0, at).replace(/^\[|\]$/g, ""), Number(address.slice(at + 1))];
}

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const proxy = await startWsProxy({
    host: argument("host") ?? "127.0.0.1",
    port: Number(argument("port") ?? process.env.WS_PROXY_PORT ?? 8081),
    allow: (argument("allow") ?? process.env.WS_PROXY_ALLOW)?.split(",").map((s) => s.trim()),
  });
  process.stdout.write(`ws-proxy listening: NEON_WS_PROXY=${proxy.url}\n`);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => void proxy.close().then(() => process.exit(0)));
  }
}
