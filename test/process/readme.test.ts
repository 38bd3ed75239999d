import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../lib/runtime/dev-token.ts";
import { freePort } from "../support/ports.ts";

/**
 * Starts the service exactly as the README says (`npm start`: build, then the bundle) and pastes the README's
 * walk-through into bash against it. Then serves functions from the same build through functions-framework.
 */
const run = promisify(execFile);
let server: ChildProcess | undefined;
let dataDir: string;
let port: number;
let token: string;
let output = "";

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; output:\n${output}`);
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "payment-readme-"));
  port = await freePort();
  const env = {
    ...process.env,
    PORT: String(port),
    DATA_DIR: dataDir,
    NODE_ENV: "development",
    JWT_SECRET: "",
  };
  server = spawn("npm", ["start"], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  server.stdout?.on("data", (d) => {
    output += d;
  });
  server.stderr?.on("data", (d) => {
    output += d;
  });
  await waitFor(() => /export TOKEN=(\S+)/.test(output), 120_000, "the development token");
  token = /export TOKEN=(\S+)/.exec(output)?.[1] as string;
}, 150_000);

afterAll(async () => {
  if (server?.pid) process.kill(-server.pid, "SIGTERM");
  await rm(dataDir, { recursive: true, force: true });
});

describe("README", () => {
  it("the walk-through works as pasted", async () => {
    const readme = await readFile("README.md", "utf8");
    const section = readme.slice(readme.indexOf("## Walk-through"));
    const script = /```bash\n([\s\S]*?)```/.exec(section)?.[1];
    expect(script).toBeTruthy();
    const { stdout } = await run("bash", ["-euo", "pipefail", "-c", script as string], {
      env: { ...process.env, TOKEN: token, BASE: `http://127.0.0.1:${port}` },
      timeout: 30_000,
    });
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^order ord_[0-9a-f]{32}$/);
    expect(lines[1]).toMatch(/^payment pay_[0-9a-f]{32}$/);
    const json = lines.slice(2).map((l) => JSON.parse(l));
    expect(json[0]).toMatchObject({ object: "payment", status: "succeeded", amount_captured: 1999 });
    expect(json[1]).toMatchObject({ object: "payment", status: "succeeded" });
    expect(json[2]).toMatchObject({ object: "order", status: "paid", amount_paid: 1999 });
    expect(json[3]).toMatchObject({
      object: "payment",
      status: "canceled",
      cancellation_reason: "requested_by_customer",
    });
    expect(json[4]).toMatchObject({ object: "order", status: "canceled" });
    expect(json[5]).toMatchObject({ object: "list" });
    expect(json[5].data.map((o: { status: string }) => o.status)).toEqual(["canceled", "paid"]);
  });

  it("npm run token mints a token the running server accepts", async () => {
    const { stdout } = await run("npx", ["tsx", "scripts/token.ts", "--merchant", "acct_readme"], {
      env: { ...process.env, DATA_DIR: dataDir, JWT_SECRET: "" },
    });
    const res = await fetch(`http://127.0.0.1:${port}/v1/orders`, {
      headers: { Authorization: `Bearer ${stdout.trim()}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ object: "list", data: [] });
  });

  it("serves /docs and a complete /openapi.json", async () => {
    const docs = await fetch(`http://127.0.0.1:${port}/docs`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain("/openapi.json");
    const spec = (await (await fetch(`http://127.0.0.1:${port}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>>;
    };
    expect(spec.openapi).toBe("3.1.0");
    const operations = Object.entries(spec.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    for (const op of [
      "POST /v1/orders",
      "POST /v1/payments",
      "POST /v1/payments/{id}/confirm",
      "POST /v1/payments/{id}/capture",
      "POST /v1/payments/{id}/cancel",
      "POST /v1/orders/{id}/cancel",
      "POST /v1/refunds",
      "GET /v1/orders",
      "GET /v1/orders/{id}",
      "GET /v1/payments",
      "GET /v1/payments/{id}",
      "GET /v1/refunds/{id}",
    ]) {
      expect(operations).toContain(op);
    }
    const create = spec.paths["/v1/orders"]?.post;
    expect(create?.requestBody).toBeTruthy();
    expect(Object.keys(create?.responses ?? {})).toEqual(
      expect.arrayContaining(["201", "400", "401", "403", "409", "413", "415", "422", "429"]),
    );
  });
});

describe("functions-framework", () => {
  for (const target of ["create", "status"]) {
    it(`serves ${target} from the same build`, async () => {
      const ffPort = await freePort();
      // Its own database: two processes must never open one embedded data directory.
      const ffData = await mkdtemp(join(tmpdir(), "payment-ff-"));
      const secret = "functions-framework-test-secret-0123456789";
      const ffToken = await mintToken(new TextEncoder().encode(secret), "acct_ff");
      // A CloudEvents sink: the framework's process sends the outbox as the fast runtime does.
      const received: IncomingHttpHeaders[] = [];
      const sink = createServer((req, res) => {
        received.push(req.headers);
        req.resume().on("end", () => res.writeHead(202).end());
      });
      await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
      const sinkUrl = `http://127.0.0.1:${(sink.address() as { port: number }).port}`;
      let ffOutput = "";
      const ff = spawn(
        "npx",
        [
          "functions-framework",
          "--source=dist/functions-framework.js",
          `--target=${target}`,
          `--port=${ffPort}`,
        ],
        {
          env: {
            ...process.env,
            DATA_DIR: ffData,
            JWT_SECRET: secret,
            NODE_ENV: "development",
            K_SINK: sinkUrl,
          },
          detached: true,
        },
      );
      ff.stdout?.on("data", (d) => {
        ffOutput += d;
      });
      ff.stderr?.on("data", (d) => {
        ffOutput += d;
      });
      try {
        const base = `http://127.0.0.1:${ffPort}`;
        await waitFor(
          () =>
            fetch(`${base}/health`).then(
              (r) => r.ok,
              () => false,
            ),
          30_000,
          `functions-framework ${target}: ${ffOutput}`,
        );
        const auth = { Authorization: `Bearer ${ffToken}`, "Content-Type": "application/json" };
        if (target === "create") {
          const res = await fetch(`${base}/v1/orders`, {
            method: "POST",
            headers: auth,
            body: JSON.stringify({ amount: 42, currency: "JPY" }),
          });
          expect(res.status).toBe(201);
          expect(await res.json()).toMatchObject({ object: "order", amount: 42, currency: "JPY" });
          await waitFor(
            () => received.some((h) => h["ce-type"] === "io.payment-service.order.created"),
            10_000,
            `order.created at the sink from functions-framework: ${ffOutput}`,
          );
          const bad = await fetch(`${base}/v1/orders`, {
            method: "POST",
            headers: auth,
            body: JSON.stringify({ amount: 4.2, currency: "JPY" }),
          });
          expect(bad.status).toBe(400);
          expect(bad.headers.get("content-type")).toContain("application/problem+json");
        } else {
          const res = await fetch(`${base}/v1/orders?limit=1`, { headers: auth });
          expect(res.status).toBe(200);
          expect(await res.json()).toMatchObject({ object: "list" });
          // Only its own routes: the create route belongs to another function.
          const other = await fetch(`${base}/v1/orders`, { method: "POST", headers: auth, body: "{}" });
          expect(other.status).toBe(404);
        }
      } finally {
        if (ff.pid) process.kill(-ff.pid, "SIGTERM");
        sink.close();
        await rm(ffData, { recursive: true, force: true });
      }
    }, 60_000);
  }
});
