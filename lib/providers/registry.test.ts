import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config/index.ts";
import type { Db } from "../db/db.ts";
import type { PaymentProvider } from "./provider.ts";
import { providerReadiness } from "./readiness.ts";
import { createProviders } from "./registry.ts";
import { failoverProvider, parseRoutes, routeFor } from "./routing.ts";

// Building providers touches no database; the sandbox only queries when called.
const db = {} as Db;
const STRIPE = { STRIPE_SECRET_KEY: "sk_test_x" };
const YOOKASSA = { YOOKASSA_SHOP_ID: "1", YOOKASSA_SECRET_KEY: "s" };
const PRODUCTION = {
  NODE_ENV: "production",
  JWT_SECRET: "x".repeat(32),
  DATABASE_URL: "postgres://db/payments",
};
const build = (env: Record<string, string>) => createProviders(loadConfig(env), db);

describe("PROVIDER_ROUTES", () => {
  it("reads currencies, a catch-all and failover chains", () => {
    expect(parseRoutes("RUB=yookassa|sandbox, *=stripe,usd=stripe")).toEqual(
      new Map([
        ["RUB", ["yookassa", "sandbox"]],
        ["*", ["stripe"]],
        ["USD", ["stripe"]],
      ]),
    );
    expect(parseRoutes(undefined).size).toBe(0);
  });

  it.each(["RUB", "RUB=paypal", "RUB=stripe|stripe", "RUBLE=stripe", "RUB=stripe=sandbox", "RUB=stripe|"])(
    "refuses %s",
    (value) => {
      expect(() => parseRoutes(value)).toThrow(/PROVIDER_ROUTES/);
    },
  );
});

describe("createProviders", () => {
  it("routes everything to the sandbox when no provider is configured", () => {
    const providers = build({ NODE_ENV: "test" });
    expect(providers.names).toEqual(["sandbox"]);
    expect(providers.forCurrency("USD")).toBe("sandbox");
  });

  it("routes RUB to YooKassa and the rest to Stripe by default when both are configured", () => {
    const providers = build({ NODE_ENV: "test", ...STRIPE, ...YOOKASSA });
    expect(providers.forCurrency("RUB")).toBe("yookassa");
    expect(providers.forCurrency("EUR")).toBe("stripe");
    expect([...providers.names].sort()).toEqual(["sandbox", "stripe", "yookassa"]);
  });

  it("keeps the sandbox out of production once a real provider is configured, unless routed to", () => {
    expect(build({ ...PRODUCTION, ...STRIPE }).names).toEqual(["stripe"]);
    expect(build({ ...PRODUCTION }).names).toEqual(["sandbox"]);
    expect(build({ ...PRODUCTION, ...STRIPE, PROVIDER_ROUTES: "*=stripe|sandbox" }).names).toContain(
      "sandbox",
    );
  });

  it("refuses routes to a provider that is not configured", () => {
    expect(() => build({ NODE_ENV: "test", PROVIDER_ROUTES: "RUB=yookassa" })).toThrow(ConfigError);
  });

  it("puts every provider behind a circuit breaker that /ready reports", () => {
    const providers = build({ NODE_ENV: "test", ...STRIPE });
    expect(providerReadiness(providers)).toEqual({ provider_sandbox: "ok", provider_stripe: "ok" });
  });

  it("lets tests replace an adapter", () => {
    const stand: PaymentProvider = {
      name: "stripe",
      authorize: async () => ({ status: "processing" }),
      capture: async () => ({ status: "processing" }),
      cancel: async () => ({ status: "canceled" }),
      refund: async () => "pending",
      retrieve: async () => ({ status: "processing" }),
    };
    const providers = createProviders(loadConfig({ NODE_ENV: "test" }), db, { extra: [stand] });
    expect(providers.names).toContain("stripe");
  });
});

describe("failover", () => {
  const providers = build({ NODE_ENV: "test", ...STRIPE, PROVIDER_ROUTES: "USD=stripe|sandbox" });

  it("knows the route of each currency", () => {
    expect(routeFor(providers, "USD")).toEqual(["stripe", "sandbox"]);
    expect(routeFor(providers, "EUR")).toEqual(["sandbox"]);
  });

  it("moves nothing while the provider is up", () => {
    expect(
      failoverProvider(providers, { provider: "stripe", currency: "USD", previousAttempts: 0 }),
    ).toBeUndefined();
  });
});
