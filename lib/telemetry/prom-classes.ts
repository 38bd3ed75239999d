import type * as PromClient from "prom-client";
// The package's index also loads the Pushgateway client, and with it node:http, https (TLS) and zlib, the cluster
// aggregator and Summary: about 20 ms of every cold start, for nothing the service uses. These five files are what
// it needs; the classes and their types are the index's own.
// @ts-expect-error the package ships types for its index only
import counter from "prom-client/lib/counter.js";
// @ts-expect-error the package ships types for its index only
import defaultMetrics from "prom-client/lib/defaultMetrics.js";
// @ts-expect-error the package ships types for its index only
import gauge from "prom-client/lib/gauge.js";
// @ts-expect-error the package ships types for its index only
import histogram from "prom-client/lib/histogram.js";
// @ts-expect-error the package ships types for its index only
import registry from "prom-client/lib/registry.js";

export const Counter = counter as typeof PromClient.Counter;
export const Gauge = gauge as typeof PromClient.Gauge;
export const Histogram = histogram as typeof PromClient.Histogram;
export const Registry = registry as typeof PromClient.Registry;
export const collectDefaultMetrics = defaultMetrics as typeof PromClient.collectDefaultMetrics;
