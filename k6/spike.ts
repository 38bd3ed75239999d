/**
 * Spike from zero: the payment flow only, from no traffic at all to SPIKE_RATE
 * checkouts per second (1000 by default, about 3000 requests/s) within
 * seconds, held for a minute, and back to zero.
 *
 * This is the scale-from-zero case. On Knative an idle revision has no pods:
 * the first requests reach the activator, which holds them while the
 * autoscaler starts pods, and only then forwards them. Every function the
 * flow reaches (creating orders and payments, confirming) wakes up on its
 * own, so one checkout can pay more than one cold start. Start the test only
 * when the service has actually scaled to zero (no pods, after
 * scale-to-zero-grace-period and the stable window). That is also why this
 * script's setup() sends no request unless PREFLIGHT is set: a preflight would
 * wake the service before the measurement.
 *
 * The Knative settings that decide whether this passes:
 * - Activator: buffers requests while there are no (or too few) pods. Its
 *   own replicas and capacity (config-autoscaler activator-capacity) must
 *   absorb the burst; a request waits there at most the revision's
 *   timeoutSeconds.
 * - autoscaling.knative.dev/target-burst-capacity: while spare capacity is
 *   below it, the activator stays in the path and spreads the burst over the
 *   pods that are ready, instead of piling it onto the first one. -1 keeps
 *   it always in the path; 0 only at zero.
 * - autoscaling.knative.dev/activation-scale: how many pods to start when
 *   waking from zero (1 by default, far too few for 1000/s); and
 *   autoscaling.knative.dev/initial-scale (with allow-zero-initial-scale),
 *   how many pods a new revision starts with right after a deploy.
 * - autoscaling.knative.dev/target / containerConcurrency and the panic
 *   window (panic-window-percentage, panic-threshold-percentage): how
 *   fast and how far the autoscaler scales out once traffic is there.
 * - autoscaling.knative.dev/min-scale: >0 avoids cold starts altogether
 *   (then this test measures a burst, not a wake-up); max-scale caps the
 *   burst capacity.
 * - The cold start itself: image size and pull policy, process start-up,
 *   readiness probe, and opening database connections (pooler in front).
 *
 *   k6 run -e BASE_URL=https://api.example.com -e JWT_SECRET=... k6/spike.ts
 *   k6 run -e SPIKE_RATE=300 -e HOLD=30s ... k6/spike.ts
 */
import type { Options } from "k6/options";
import { journeySeconds, requestsPerIteration, runJourney } from "./journeys.ts";
import {
  durationSeconds,
  envIsSet,
  envNumber,
  envString,
  getThinkScale,
  merchantCount,
  type SetupData,
  SUMMARY_TREND_STATS,
  SYSTEM_TAGS,
  scenarioElapsedSeconds,
  setDefaultThinkScale,
  setupMerchants,
} from "./lib.ts";

// Shorter pauses than the mix by default (THINK_SCALE overrides): at 1000
// arrivals/s each second of think time costs the load generator another
// 1000 VUs, and what the service sees is the arrival rate, not the pauses.
setDefaultThinkScale(0.2);

const SPIKE_RATE = envNumber("SPIKE_RATE", 1000);
const RAMP_UP = envString("RAMP_UP", "10s");
const HOLD = envString("HOLD", "1m");
const RAMP_DOWN = envString("RAMP_DOWN", "10s");

const rampUpEnd = durationSeconds(RAMP_UP);
const holdEnd = rampUpEnd + durationSeconds(HOLD);

/**
 * phase=ramp_up|peak|ramp_down on every request, by when its iteration
 * started. The cold starts all fall in ramp_up; without its own thresholds
 * they would be diluted by the far larger number of requests at the peak.
 */
function phase(): string {
  const elapsed = scenarioElapsedSeconds();
  if (elapsed < rampUpEnd) return "ramp_up";
  if (elapsed < holdEnd) return "peak";
  return "ramp_down";
}

// VUs: arrivals/s x iteration length, +20 %; maxVUs 3x for the seconds when
// cold starts make every iteration longer. PRE_VUS / MAX_VUS override.
const preAllocatedVUs = Math.floor(
  envNumber("PRE_VUS", Math.ceil(SPIKE_RATE * journeySeconds("payment_flow", getThinkScale()) * 1.2) + 10),
);
const maxVUs = Math.max(preAllocatedVUs, Math.floor(envNumber("MAX_VUS", preAllocatedVUs * 3)));

export const options: Options = {
  scenarios: {
    spike: {
      executor: "ramping-arrival-rate",
      exec: "spike",
      startRate: 0,
      timeUnit: "1s",
      preAllocatedVUs,
      maxVUs,
      stages: [
        { duration: RAMP_UP, target: SPIKE_RATE },
        { duration: HOLD, target: SPIKE_RATE },
        { duration: RAMP_DOWN, target: 0 },
      ],
    },
  },
  thresholds: {
    // The targets, over the whole spike, cold starts included.
    http_req_failed: ["rate<0.01"],
    http_req_duration: ["p(95)<2000"],
    // The wake-up alone: requests buffered by the activator while pods start
    // must still come back within the 2 s target, and not fail (503/504
    // from an overflowing activator or a timed-out queue).
    "http_req_duration{phase:ramp_up}": ["p(95)<2000"],
    "http_req_failed{phase:ramp_up}": ["rate<0.01"],
    // Once scaled out, latency must settle back near the mix's budgets.
    "http_req_duration{phase:peak}": ["p(95)<1000"],
    checks: ["rate>0.99"],
    // A dropped iteration means k6 ran out of VUs (raise MAX_VUS): the
    // spike was then smaller than asked, and the result too kind.
    dropped_iterations: ["count<1"],
  },
  systemTags: SYSTEM_TAGS,
  summaryTrendStats: SUMMARY_TREND_STATS,
};

/** Tokens only: no request, so the service stays at zero until the spike. */
export function setup(): SetupData {
  const peakRps = SPIKE_RATE * requestsPerIteration("payment_flow");
  return setupMerchants(merchantCount(peakRps), { preflight: envIsSet("PREFLIGHT") });
}

export function spike(data: SetupData): void {
  runJourney("payment_flow", data, { scenario: "spike", tags: { phase: phase() } });
}
