import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { bundle } from "../../../scripts/bundle.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

/**
 * The service bundled exactly as `npm run build` bundles it (scripts/bundle.ts), into a directory of its own, so a
 * test never races another suite's `npm start` for dist/. It sits under node_modules so the external packages
 * resolve from it as they do from dist/. A bundle starts in about half the time tsx needs, which matters when a
 * test restarts the service five times.
 */
export async function buildService(): Promise<{ main: string; remove(): Promise<void> }> {
  const outdir = join(ROOT, "node_modules", ".cache", `payment-service-${randomBytes(4).toString("hex")}`);
  await bundle(outdir, ROOT);
  return { main: join(outdir, "main.js"), remove: () => rm(outdir, { recursive: true, force: true }) };
}

export interface ChildService {
  readonly url: string;
  /** What the processes printed (warnings and errors), for the failure message. */
  readonly output: string[];
  /** How many times the service was started. */
  readonly starts: number;
  start(): Promise<void>;
  /** SIGKILL: no shutdown hook runs, in-flight requests and transactions are cut, as in a crash. */
  kill(): Promise<void>;
  /** SIGTERM and wait: the graceful path. Resolves to the exit code (the shutdown deadline exits with 1). */
  stop(): Promise<number | null>;
}

/**
 * `node <bundle>` as a child process on a fixed port, restartable. The environment is built from scratch (PATH
 * and the given variables only) so nothing of the test runner's configuration leaks into the service.
 */
export function childService(main: string, port: number, env: Record<string, string>): ChildService {
  const url = `http://127.0.0.1:${port}`;
  const output: string[] = [];
  let child: ChildProcess | undefined;
  let starts = 0;
  const exited = (process: ChildProcess) =>
    process.exitCode !== null || process.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => process.once("exit", () => resolve()));
  return {
    url,
    output,
    get starts() {
      return starts;
    },
    async start() {
      starts++;
      const started = spawn(process.execPath, [main], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? "", PORT: String(port), ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child = started;
      const keep = (chunk: Buffer) => {
        output.push(chunk.toString());
        if (output.length > 200) output.shift();
      };
      started.stdout?.on("data", keep);
      started.stderr?.on("data", keep);
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (started.exitCode !== null)
          throw new Error(`service exited with ${started.exitCode}:\n${output.join("")}`);
        const up = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) }).then(
          (res) => res.ok,
          () => false,
        );
        if (up) return;
        if (Date.now() > deadline) throw new Error(`service did not start in 30 s:\n${output.join("")}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async kill() {
      const running = child;
      child = undefined;
      if (!running) return;
      running.kill("SIGKILL");
      await exited(running);
    },
    async stop() {
      const running = child;
      child = undefined;
      if (!running) return null;
      running.kill("SIGTERM");
      await exited(running);
      return running.exitCode;
    },
  };
}
