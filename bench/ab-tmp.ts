// throwaway A/B: alternating cold starts of variants; prints median spawn→first real answer and CPU
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mintToken } from "/work/main/lib/runtime/dev-token.ts";
const SECRET = "cold-start-bench-secret-0123456789";
const token = await mintToken(new TextEncoder().encode(SECRET), "acct_coldstart");
const variants: { name: string; cmd: string[]; env?: Record<string, string> }[] = JSON.parse(process.argv[2]);
const runs = Number(process.argv[3] ?? 9);
const target = process.env.T ?? "status";
const path = target === "status" || target === "all" ? `/v1/orders/ord_${"a".repeat(32)}` : "/openapi.json";
const cpuMs = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" "); return (Number(f[11]) + Number(f[12])) * 10; };
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
let port = 19000;
const res = new Map<string, number[][]>();
for (let i = 0; i < runs; i++) for (const v of variants) {
  port++;
  const t0 = performance.now();
  const c = spawn(v.cmd[0]!, v.cmd.slice(1), { cwd: "/work/main", stdio: "ignore", env: { PATH: process.env.PATH!, PORT: String(port), NODE_ENV: "production", DATABASE_URL: "postgres://postgres@127.0.0.1:5432/cs_prof", REDIS_URL: "redis://127.0.0.1:6379", JWT_SECRET: SECRET, LOG_LEVEL: "warn", FUNCTION_TARGET: target, ...v.env } });
  for (;;) { try { const r = await fetch(`http://127.0.0.1:${port}/ready`); await r.arrayBuffer(); if (r.status === 200) break; } catch {} await new Promise((r) => setTimeout(r, 2)); }
  for (;;) { try { const r = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` } }); await r.arrayBuffer(); if (r.status === 200) break; } catch {} await new Promise((r) => setTimeout(r, 2)); }
  const t = performance.now() - t0; const cpu = cpuMs(c.pid!);
  await new Promise((r) => setTimeout(r, 300)); const m = rss(c.pid!);
  c.kill("SIGKILL");
  if (!res.has(v.name)) res.set(v.name, []);
  res.get(v.name)!.push([t, cpu, m]);
}
const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [n, r] of res) console.log(n.padEnd(30), "answer", med(r.map((x) => x[0]!)).toFixed(0), "cpu", med(r.map((x) => x[1]!)), "rss", med(r.map((x) => x[2]!)).toFixed(1));
