import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { reachable } from "../../support/backends.ts";
import { freePort } from "../../support/ports.ts";

/**
 * A redis-server of the test's own on a free port, so a test can kill and restart it without disturbing the
 * Redis other suites share. Nothing is persisted: a restart comes back empty, like a crashed cache.
 */
export interface OwnRedis {
  readonly port: number;
  readonly url: string;
  start(): Promise<void>;
  /** SIGKILL: the server vanishes mid-run, as in a crash. */
  kill(): Promise<void>;
}

export function redisServerSkipReason(): string | undefined {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    return undefined;
  } catch {
    return "redis-server is not installed: skipped";
  }
}

export async function ownRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const self: OwnRedis = {
    port,
    url,
    async start() {
      child = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        { stdio: "ignore" },
      );
      const deadline = Date.now() + 5_000;
      while (!(await reachable(url, 200))) {
        if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async kill() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null) return;
      const exited = new Promise((resolve) => running.once("exit", resolve));
      running.kill("SIGKILL");
      await exited;
    },
  };
  return self;
}
