import http from "node:http";

/**
 * The HTTP ceiling of this machine: node:http answering a constant JSON body, no framework, no work. Whatever the
 * service does per request is measured against this.
 */
const body = JSON.stringify({ status: "ok" });
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 3099), "127.0.0.1");
process.once("SIGTERM", () => server.close(() => process.exit(0)).closeIdleConnections());
