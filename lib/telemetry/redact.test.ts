import { describe, expect, it } from "vitest";
import { scrub, scrubValues } from "./redact.ts";

describe("scrub", () => {
  it.each([
    ["Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhY2N0In0.c2lnbmF0dXJl", "eyJzdWIiOiJhY2N0In0"],
    ["token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhY2N0In0.c2lnbmF0dXJl in a body", "c2lnbmF0dXJl"],
    ["connect postgres://payments:s3cr3t@db:5432/payments", "s3cr3t"],
    ["redis://:redispass@redis-master:6379", "redispass"],
    ["STRIPE_SECRET_KEY=sk_live_51HabcdefGHIJKL", "sk_live_51HabcdefGHIJKL"],
    ["signed with whsec_abcdef123456", "whsec_abcdef123456"],
    ['{"password": "hunter2"}', "hunter2"],
    ["api_key=abc123def", "abc123def"],
    ["mail jane.doe+shop@mail.example.co.uk now", "jane.doe+shop@mail.example.co.uk"],
    ["call +7 912 345-67-89", "345-67-89"],
    ["call 8 (912) 345-67-89", "345-67-89"],
    ["call (555) 123-4567", "123-4567"],
    ["card 4242 4242 4242 4242", "4242 4242 4242 4242"],
    ["card 5555-5555-5555-4444", "5555-5555-5555-4444"],
  ])("removes the secret from %j", (text, secret) => {
    expect(scrub(text)).not.toContain(secret);
  });

  it.each([
    "pay_01a21c98f96d72e09f12b86295edf45c",
    "req_0190a1b2123456789012abcdefabcdef",
    "01234567-8901-2345-6789-abcdefabcdef",
    "2024-01-01 10:00:00",
    "order 4242424242424241 (not a card: Luhn fails)",
    "amount 1999 USD, 3 items",
    "10.0.0.12:5432",
  ])("leaves %j alone", (text) => {
    expect(scrub(text)).toBe(text);
  });
});

describe("scrubValues", () => {
  it("redacts sensitive fields at any depth and scrubs every other string", () => {
    expect(
      scrubValues({
        a: { b: { c: { authorization: "Basic abc", password: "x", note: "jane@example.com", n: 5 } } },
        list: [{ token: "t" }, "4242424242424242"],
      }),
    ).toEqual({
      a: {
        b: { c: { authorization: "[REDACTED]", password: "[REDACTED]", note: "[REDACTED_EMAIL]", n: 5 } },
      },
      list: [{ token: "[REDACTED]" }, "[REDACTED_PAN]"],
    });
  });

  it("keeps an error's type, code and stack, scrubbed", () => {
    const error = Object.assign(new Error("no user jane@example.com"), { code: "28P01" });
    const out = scrubValues(error) as Record<string, string>;
    expect(out).toMatchObject({ type: "Error", code: "28P01", message: "no user [REDACTED_EMAIL]" });
    expect(out.stack).toContain("[REDACTED_EMAIL]");
  });
});
