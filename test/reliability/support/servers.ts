import { createServer as createHttpServer, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { serve } from "@hono/node-server";

export { freePort } from "../../support/ports.ts";

export interface LiveApp {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves an in-process app on a real loopback port, as lib/runtime/server.ts does: for what only a socket shows
 * (the peer address, raw bytes, the sandbox calling our webhook endpoint back).
 */
export async function serveApp(
  app: { fetch: (request: Request, env?: unknown) => Response | Promise<Response> },
  port = 0,
): Promise<LiveApp> {
  const server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" });
  await new Promise<void>((resolve, reject) => {
    if (server.listening) resolve();
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const bound = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

export interface RawResponse {
  statusLine: string;
  status: number;
  /** Header lines as received, lower-cased names. */
  headers: [string, string][];
  body: string;
  raw: string;
}

/**
 * Sends bytes exactly as given over a TCP socket and reads the answer until the server closes the connection
 * (requests should carry `Connection: close`). For what HTTP clients refuse to send: CR/LF inside header values,
 * literal `..` path segments.
 */
export function rawRequest(port: number, bytes: string, timeoutMs = 5_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms:\n${Buffer.concat(chunks).toString()}`));
    }, timeoutMs);
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(parseRaw(Buffer.concat(chunks).toString("latin1")));
    });
    socket.write(bytes, "latin1");
  });
}

function parseRaw(raw: string): RawResponse {
  const end = raw.indexOf("\r\n\r\n");
  const head = end === -1 ? raw : raw.slice(0, end);
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers = lines.map((line) => {
    const i = line.indexOf(":");
    return [line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim()] as [string, string];
  });
  return {
    statusLine,
    status: Number(statusLine.split(" ")[1] ?? 0),
    headers,
    body: end === -1 ? "" : raw.slice(end + 4),
    raw,
  };
}

export interface ReceivedEvent {
  id: string;
  type: string;
  subject: string;
  headers: IncomingHttpHeaders;
}

/**
 * A Knative Broker's ingress stand-in that outlives the service processes of a test: records the CloudEvents
 * (binary mode) it accepted, deduplicated by nothing (at least once means duplicates are allowed).
 */
export async function startEventSink(): Promise<{
  url: string;
  received: ReceivedEvent[];
  ids(): Set<string>;
  close(): Promise<void>;
}> {
  const received: ReceivedEvent[] = [];
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received.push({
        id: String(req.headers["ce-id"]),
        type: String(req.headers["ce-type"]),
        subject: String(req.headers["ce-subject"]),
        headers: req.headers,
      });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/`,
    received,
    ids: () => new Set(received.map((e) => e.id)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
