import http from "node:http";

export interface Reply {
  status: number;
  body: string;
}

/**
 * A keep-alive HTTP/1.1 client on node:http: one socket per concurrent request, reused across requests, like the
 * connection pool of a real API client. Global fetch allocates far more per request and would become the
 * bottleneck of the load generator long before the service does.
 */
export class HttpClient {
  private readonly agent: http.Agent;

  constructor(
    private readonly port: number,
    connections: number,
    private readonly timeoutMs = 30_000,
    private readonly host = "127.0.0.1",
  ) {
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: connections,
      maxFreeSockets: connections,
      scheduling: "lifo",
    });
  }

  request(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.host,
          port: this.port,
          method,
          path,
          agent: this.agent,
          headers:
            body === undefined
              ? headers
              : { ...headers, "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            text += chunk;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on("error", reject);
        },
      );
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on("error", reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
