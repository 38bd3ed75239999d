import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";

/** Where the numbers were taken: they only mean something next to the machine that produced them. */
export interface Machine {
  nproc: number;
  cpu_model: string;
  memory_gib: number;
  node: string;
  kernel: string;
  postgres?: string;
}

export function machine(): Machine {
  const cpuinfo = readText("/proc/cpuinfo") ?? "";
  const meminfo = readText("/proc/meminfo") ?? "";
  const totalKib = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0);
  return {
    nproc: cpus().length,
    cpu_model: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown",
    memory_gib: Math.round((totalKib / 1024 / 1024) * 10) / 10,
    node: process.version,
    kernel: (readText("/proc/sys/kernel/osrelease") ?? "").trim(),
  };
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * utime + stime of a process in seconds, from /proc/<pid>/stat (fields 14 and 15, after the parenthesized comm);
 * with `children`, plus cutime + cstime (16, 17): the CPU of its exited children, as the PostgreSQL postmaster
 * collects that of the backends of connections that came and went during the window (pgbench's).
 */
export function cpuSeconds(pid: number, children = false): number | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const f = stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .map(Number);
  // f[0] is field 3 (state), so field n is at n - 3.
  const own = (f[11] ?? 0) + (f[12] ?? 0);
  return (children ? own + (f[13] ?? 0) + (f[14] ?? 0) : own) / CLOCK_TICKS;
}

export function rssMib(pid: number): number | undefined {
  const kib = /VmRSS:\s+(\d+)/.exec(readText(`/proc/${pid}/status`) ?? "")?.[1];
  return kib === undefined ? undefined : Number(kib) / 1024;
}

/** Pids of every process with this command name (postgres backends, redis-server) that we may read. */
function pidsNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    if (readText(`/proc/${entry}/comm`)?.trim() === name) pids.push(Number(entry));
  }
  return pids;
}

/** Busy and total CPU seconds of the whole machine, from the first line of /proc/stat. */
function machineSeconds(): { busy: number; total: number } {
  const line = (readText("/proc/stat") ?? "").split("\n")[0] ?? "";
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: (total - idle) / CLOCK_TICKS, total: total / CLOCK_TICKS };
}

function groupSeconds(pids: number[]): Map<number, number> {
  const seconds = new Map<number, number>();
  for (const pid of pids) {
    const s = cpuSeconds(pid, true);
    if (s !== undefined) seconds.set(pid, s);
  }
  return seconds;
}

/** CPU per group over a window; a process that appeared during it counts whole, one that exited is lost. */
function groupDelta(before: Map<number, number>, after: Map<number, number>): number {
  let delta = 0;
  for (const [pid, s] of after) delta += s - (before.get(pid) ?? 0);
  return delta;
}

/**
 * How the machine's cores were shared over a measured window: the service child, this process (the load
 * generator), PostgreSQL and Redis, in cores (1.0 = one core busy all the time), plus the service's RSS.
 */
export interface Usage {
  seconds: number;
  server_cores: number | null;
  server_rss_mib_max: number | null;
  server_rss_mib_end: number | null;
  loadgen_cores: number;
  postgres_cores: number;
  redis_cores: number;
  machine_busy_cores: number;
  /** Busy cores not accounted for by the above: anything else running on the machine meanwhile. */
  other_cores: number;
}

export function startUsage(serverPid: number | undefined): { stop: () => Usage } {
  const started = performance.now();
  // This process and the children it has reaped: pgbench's CPU lands here once it exits.
  const self = cpuSeconds(process.pid, true) ?? 0;
  const server = serverPid === undefined ? undefined : cpuSeconds(serverPid);
  const postgres = groupSeconds(pidsNamed("postgres"));
  const redis = groupSeconds(pidsNamed("redis-server"));
  const whole = machineSeconds();
  let rssMax = serverPid === undefined ? undefined : rssMib(serverPid);
  const sampler = setInterval(() => {
    const rss = serverPid === undefined ? undefined : rssMib(serverPid);
    if (rss !== undefined) rssMax = Math.max(rssMax ?? 0, rss);
  }, 250);
  sampler.unref();
  return {
    stop() {
      clearInterval(sampler);
      const seconds = (performance.now() - started) / 1000;
      const serverEnd = serverPid === undefined ? undefined : cpuSeconds(serverPid);
      const rssEnd = serverPid === undefined ? undefined : rssMib(serverPid);
      const wholeEnd = machineSeconds();
      const cores = (s: number) => round(s / seconds, 2);
      const serverSeconds = server !== undefined && serverEnd !== undefined ? serverEnd - server : undefined;
      const loadgen = (cpuSeconds(process.pid, true) ?? self) - self;
      const pgSeconds = groupDelta(postgres, groupSeconds(pidsNamed("postgres")));
      const redisSeconds = groupDelta(redis, groupSeconds(pidsNamed("redis-server")));
      const busy = wholeEnd.busy - whole.busy;
      return {
        seconds: round(seconds, 2),
        server_cores: serverSeconds === undefined ? null : cores(serverSeconds),
        server_rss_mib_max: rssMax === undefined ? null : round(Math.max(rssMax, rssEnd ?? 0), 0),
        server_rss_mib_end: rssEnd === undefined ? null : round(rssEnd, 0),
        loadgen_cores: cores(loadgen),
        postgres_cores: cores(pgSeconds),
        redis_cores: cores(redisSeconds),
        machine_busy_cores: cores(busy),
        other_cores: cores(Math.max(0, busy - (serverSeconds ?? 0) - loadgen - pgSeconds - redisSeconds)),
      };
    },
  };
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
