import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createSinkPost } from "./sink-client.ts";

let server: http.Server | undefined;
afterEach(async () => {
  const open = server;
  server = undefined;
  if (!open) return;
  open.closeAllConnections();
  await new Promise((resolve) => open.close(resolve));
});

async function sink(handler: http.RequestListener): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  server = http.createServer(handler);
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, connections: () => connections };
}

describe("the sink client", () => {
  it("posts the event as given and reuses its connection", async () => {
    const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
    const target = await sink((req, res) => {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        received.push({ headers: req.headers, body });
        res.writeHead(received.length === 1 ? 202 : 503).end();
      });
    });
    const post = await createSinkPost(target.url, 1_000);
    const body = JSON.stringify({ amount: 1000, note: "é" });
    expect(await post({ "ce-id": "evt_1", "content-type": "application/json" }, body)).toBe(202);
    expect(await post({ "ce-id": "evt_2" }, "{}")).toBe(503);
    expect(received[0]?.headers["ce-id"]).toBe("evt_1");
    expect(received[0]?.headers["content-length"]).toBe(String(Buffer.byteLength(body)));
    expect(received[0]?.body).toBe(body);
    expect(target.connections()).toBe(1);
  });

  it("gives up on a sink that does not answer within the timeout", async () => {
    const target = await sink(() => {}); // reads the request, never answers
    const post = await createSinkPost(target.url, 150);
    await expect(post({ "ce-id": "evt_1" }, "{}")).rejects.toThrow(/did not answer within 150 ms/);
  });

  it("rejects when the sink is not there", async () => {
    const post = await createSinkPost("http://127.0.0.1:1/", 1_000);
    await expect(post({ "ce-id": "evt_1" }, "{}")).rejects.toThrow(/ECONNREFUSED/);
  });
});
