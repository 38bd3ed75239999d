import { setTimeout as sleep } from "node:timers/promises";
import { HttpClient } from "./http-client.ts";
import { Api, JOURNEYS, type Merchant, type Scenario } from "./journeys.ts";
import { Recorder, type RunSummary } from "./recorder.ts";

/** A payment waiting for its confirm, and the merchant whose token may confirm it. */
export interface PreparedPayment {
  id: string;
  merchant: Merchant;
}

/** Payments created beforehand and how many of them the loop has taken. */
export interface PreparedQueue {
  payments: PreparedPayment[];
  taken: number;
}

export interface ClosedLoopOptions extends WindowOptions {
  port: number;
  /** Virtual users, each with its own keep-alive connection, each running one journey after another. */
  users: number;
  merchants: Merchant[];
  pick: () => Scenario;
  /** Payments created beforehand, taken one per confirm_prepared journey; a user finding none left stops. */
  prepared?: PreparedQueue;
}

interface WindowOptions {
  warmupSeconds: number;
  durationSeconds: number;
  /** Called when the measured window opens and closes (to sample CPU over exactly that window). */
  onWindowOpen?: () => void;
  onWindowClose?: () => void;
}

/** The measured window after the warm-up, set on the recorder, with its open and close callbacks scheduled. */
function measuredWindow(recorder: Recorder, options: WindowOptions) {
  const start = performance.now();
  const windowStart = start + options.warmupSeconds * 1000;
  const windowEnd = windowStart + options.durationSeconds * 1000;
  recorder.open(windowStart);
  recorder.close(windowEnd);
  const timers = [
    setTimeout(() => options.onWindowOpen?.(), windowStart - start),
    setTimeout(() => options.onWindowClose?.(), windowEnd - start),
  ];
  return { start, windowStart, windowEnd, timers };
}

/**
 * A closed-loop load: `users` virtual users start over the first part of the warm-up (a thousand connections
 * opened in the same millisecond would only measure the listen backlog) and loop through journeys until the
 * window ends. Requests still in flight then are awaited but not counted.
 */
export async function runClosedLoop(options: ClosedLoopOptions): Promise<RunSummary> {
  const client = new HttpClient(options.port, options.users);
  const recorder = new Recorder();
  const { windowEnd, timers } = measuredWindow(recorder, options);
  const rampMs = Math.min(2_000, (options.warmupSeconds * 1000) / 2);

  const user = async (index: number) => {
    await sleep((index * rampMs) / options.users);
    while (performance.now() < windowEnd) {
      const scenario = options.pick();
      const queue = options.prepared;
      const prepared = scenario === "confirm_prepared" && queue ? queue.payments[queue.taken++] : undefined;
      if (scenario === "confirm_prepared" && !prepared) break;
      const merchant =
        prepared?.merchant ??
        (options.merchants[Math.floor(Math.random() * options.merchants.length)] as Merchant);
      const api = new Api(client, recorder, scenario, merchant, windowEnd);
      const started = performance.now();
      if (await JOURNEYS[scenario](api, prepared && { id: prepared.id })) {
        recorder.journey(scenario, started, performance.now());
      }
      // A failing service answers at once: without a pause each user would spin and flood the error counts.
      else if (api.lastError !== undefined) await sleep(20);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.users }, (_, i) => user(i)));
  } finally {
    for (const t of timers) clearTimeout(t);
    client.close();
  }
  return recorder.summary();
}

export interface PacedMixOptions extends WindowOptions {
  port: number;
  /** Journeys started per second, whatever the service's pace (an open model, as k6's constant-arrival-rate). */
  rate: number;
  /** Connections the sessions share (at most one request in flight on each). */
  connections: number;
  merchants: Merchant[];
  pick: () => Scenario;
}

/**
 * The mix as users offer it: journeys arrive at a fixed rate and pause between steps for the k6 think times, so a
 * rate below the service's capacity measures the latency its users see at that load, and the open sessions
 * (arrival rate × session length) are the seed's concurrent users. A service that falls behind is not given
 * relief: arrivals keep coming, and requests queue for a connection with the clock running.
 */
export async function runPacedMix(options: PacedMixOptions): Promise<RunSummary & { sessions: Sessions }> {
  const client = new HttpClient(options.port, options.connections);
  const recorder = new Recorder(true);
  const { start, windowStart, windowEnd, timers } = measuredWindow(recorder, options);
  const sessions = { open: 0, max: 0, sampled: [] as number[] };
  const sampler = setInterval(() => {
    const now = performance.now();
    if (now >= windowStart && now <= windowEnd) sessions.sampled.push(sessions.open);
  }, 250);
  const running = new Set<Promise<void>>();
  const journey = async () => {
    const scenario = options.pick();
    const merchant = options.merchants[Math.floor(Math.random() * options.merchants.length)] as Merchant;
    const api = new Api(client, recorder, scenario, merchant, windowEnd, 1);
    const started = performance.now();
    sessions.open++;
    if (started >= windowStart && started <= windowEnd) sessions.max = Math.max(sessions.max, sessions.open);
    try {
      if (await JOURNEYS[scenario](api)) recorder.journey(scenario, started, performance.now());
    } finally {
      sessions.open--;
    }
  };
  let crashed: unknown;
  try {
    const interval = 1000 / options.rate;
    let due = start;
    while (due < windowEnd) {
      // Every arrival that is due starts now: a late timer does not lower the rate.
      while (due <= performance.now() && due < windowEnd) {
        const done = journey()
          .catch((error: unknown) => {
            crashed ??= error; // a bug of the bench, not an answer of the service: the run fails below
          })
          .finally(() => running.delete(done));
        running.add(done);
        due += interval;
      }
      await sleep(Math.max(1, due - performance.now()));
    }
    await Promise.all(running);
    if (crashed) throw crashed;
  } finally {
    for (const t of timers) clearTimeout(t);
    clearInterval(sampler);
    client.close();
  }
  const mean = sessions.sampled.reduce((sum, n) => sum + n, 0) / Math.max(1, sessions.sampled.length);
  return { ...recorder.summary(), sessions: { mean: Math.round(mean), max: sessions.max } };
}

/** Sessions (journeys under way, pauses included) open at once over the measured window. */
export interface Sessions {
  mean: number;
  max: number;
}

/** Pays `count` orders through the API (spread over the merchants) and returns the payments, for read tests. */
export async function seedPayments(
  port: number,
  merchants: Merchant[],
  count: number,
): Promise<{ id: string; merchant: Merchant }[]> {
  const client = new HttpClient(port, 10);
  const recorder = new Recorder(); // never opened: seeding is not measured
  const seeded: { id: string; merchant: Merchant }[] = [];
  try {
    const one = async (i: number) => {
      const merchant = merchants[i % merchants.length] as Merchant;
      // Seeding is set-up, not measurement: a failed attempt is tried again (with a new order) before giving up.
      for (let attempt = 1; ; attempt++) {
        const api = new Api(client, recorder, "confirm_flow", merchant, Number.POSITIVE_INFINITY);
        const order = await api.createOrder();
        const payment = order && (await api.createPayment(order, "pm_card_visa"));
        const confirmed = payment && (await api.confirm(payment));
        if (confirmed) {
          seeded.push({ id: confirmed.id as string, merchant });
          return;
        }
        if (attempt >= 3) throw new Error(`seeding payments failed: ${api.lastError}`);
      }
    };
    for (let i = 0; i < count; i += 10) {
      await Promise.all(Array.from({ length: Math.min(10, count - i) }, (_, j) => one(i + j)));
    }
  } finally {
    client.close();
  }
  return seeded;
}
