import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** A server under test, in its own process so the load generator never shares its event loop. */
export interface Child {
  name: string;
  pid: number;
  port: number;
  output: () => string;
  /** The child's warnings and errors (pino JSON lines at warn or above), counted by message and cause. */
  problems: () => Record<string, number>;
  stop: () => Promise<void>;
}

const live = new Set<ChildProcess>();

/** Children still running when the bench itself is interrupted are stopped with it. */
export function stopAllChildren(): void {
  for (const child of live) child.kill("SIGKILL");
}

/** "msg: cause" of a pino line at warn (40) or above; ids and numbers blanked so that alike problems group. */
function problemOf(line: string): string | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const entry = JSON.parse(line) as { level?: number; msg?: string; err?: unknown };
    if ((entry.level ?? 0) < 40) return undefined;
    const err = entry.err as { message?: string } | string | undefined;
    const cause = typeof err === "string" ? err : err?.message;
    return `${entry.msg ?? "(no message)"}${cause ? `: ${cause}` : ""}`
      .replace(/\b(pay|ord|evt|re|req)_\w+/g, "$1_…")
      .replace(/\d+/g, "N")
      .slice(0, 200);
  } catch {
    return undefined;
  }
}

export { freePort } from "../test/support/ports.ts";

/** The functions-framework CLI, run with node directly (not through npx) so that the pid we sample is the server. */
export function functionsFrameworkBin(): string {
  // Its exports map hides package.json, so walk up from the entry point to the package's root.
  let dir = dirname(createRequire(import.meta.url).resolve("@google-cloud/functions-framework"));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { bin: Record<string, string> };
  return join(dir, pkg.bin["functions-framework"] as string);
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(2_000, () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

export async function startChild(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  port: number,
  options: { readyPath?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<Child> {
  const child = spawn(process.execPath, args, { env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let output = "";
  let partial = "";
  const problems: Record<string, number> = {};
  const keep = (chunk: Buffer) => {
    const text = chunk.toString("utf8");
    output = (output + text).slice(-20_000);
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      const problem = problemOf(line);
      if (problem) problems[problem] = (problems[problem] ?? 0) + 1;
    }
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
      live.delete(child);
      resolve();
    }),
  );

  const deadline = Date.now() + (options.timeoutMs ?? 90_000);
  while ((await get(port, options.readyPath ?? "/health")) !== 200) {
    if (exitCode !== undefined)
      throw new Error(`${name} exited (${exitCode}) before it was ready:\n${output}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${name} was not ready within ${options.timeoutMs ?? 90_000} ms:\n${output}`);
    }
    await sleep(100);
  }

  return {
    name,
    pid: child.pid as number,
    port,
    output: () => output,
    problems: () => ({ ...problems }),
    async stop() {
      if (exitCode !== undefined) return;
      child.kill("SIGTERM");
      // The service drains within its own 20 s deadline; a profile is written on that exit.
      const abort = new AbortController();
      const timeout = sleep(30_000, "timeout", { signal: abort.signal }).catch(() => "aborted");
      const first = await Promise.race([exited.then(() => "exited"), timeout]);
      abort.abort();
      if (first === "timeout") {
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
}
