import type * as RateLimiterFlexible from "rate-limiter-flexible";
// The package's index loads every store it supports (Mongo, MySQL, DynamoDB, Prisma, …): about 170 KiB parsed at
// every cold start. Only these four files are needed; the classes and their types are the index's own.
// @ts-expect-error the package ships types for its index only
import bursty from "rate-limiter-flexible/lib/BurstyRateLimiter.js";
// @ts-expect-error the package ships types for its index only
import memory from "rate-limiter-flexible/lib/RateLimiterMemory.js";
// @ts-expect-error the package ships types for its index only
import redis from "rate-limiter-flexible/lib/RateLimiterRedis.js";
// @ts-expect-error the package ships types for its index only
import res from "rate-limiter-flexible/lib/RateLimiterRes.js";

export const BurstyRateLimiter = bursty as typeof RateLimiterFlexible.BurstyRateLimiter;
export const RateLimiterMemory = memory as typeof RateLimiterFlexible.RateLimiterMemory;
export const RateLimiterRedis = redis as typeof RateLimiterFlexible.RateLimiterRedis;
export const RateLimiterRes = res as typeof RateLimiterFlexible.RateLimiterRes;
export type RateLimiterAbstract = RateLimiterFlexible.RateLimiterAbstract;
export type RateLimiterRes = RateLimiterFlexible.RateLimiterRes;
