import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy a test puts between a client and a real server (PostgreSQL, Redis) to simulate outages without
 * touching the server other suites use: `cut()` drops every connection and refuses new ones, `blackhole()`
 * accepts connections and never answers (a dead host behind a live load balancer), `restore()` forwards again.
 */
export interface TcpProxy {
  readonly port: number;
  /** `scheme://…@127.0.0.1:<proxy port>/…`: the target URL with its host and port replaced by the proxy's. */
  via(url: string): string;
  cut(): Promise<void>;
  blackhole(): void;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: "forward" | "blackhole" = "forward";
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const onConnection = (client: Socket) => {
    track(client);
    if (mode === "blackhole") return; // held open, never answered
    const upstream = connect(target);
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
  };
  let server: Server = createServer(onConnection);
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
    });
  const dropAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  const stop = () =>
    new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  const port = await listen(0);

  return {
    port,
    via: (url) => {
      const parsed = new URL(url);
      parsed.hostname = "127.0.0.1";
      parsed.port = String(port);
      return parsed.toString();
    },
    async cut() {
      dropAll();
      await stop();
    },
    blackhole() {
      mode = "blackhole";
      dropAll();
    },
    async restore() {
      mode = "forward";
      if (!server.listening) {
        server = createServer(onConnection);
        await listen(port);
      }
    },
    async close() {
      dropAll();
      await stop();
    },
  };
}
