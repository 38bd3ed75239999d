import http from "node:http";

/**
 * Where the service's events go during a run, as a Knative Broker's ingress would take them: every POST is a
 * CloudEvent (binary mode), read whole and answered 202. `GET /count` says how many arrived, so the run can
 * report that the outbox kept up. Without a sink the service keeps its events in the outbox and the run would
 * leave out the work of sending them.
 */
let received = 0;
const server = http.createServer((req, res) => {
  if (req.method === "GET") {
    const body = JSON.stringify({ received });
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  req.resume();
  req.on("end", () => {
    if (req.headers["ce-id"]) received++;
    res.writeHead(202, { "Content-Length": "0" });
    res.end();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 3098), "127.0.0.1");
process.once("SIGTERM", () => server.close(() => process.exit(0)).closeIdleConnections());
