import { describe, expect, it } from "vitest";
import { isUnavailable } from "./db.ts";

describe("isUnavailable", () => {
  it("treats a rolled-back deadlock victim or serialization failure as transient (503, retry)", () => {
    expect(isUnavailable(Object.assign(new Error("deadlock detected"), { code: "40P01" }))).toBe(true);
    expect(isUnavailable(Object.assign(new Error("could not serialize access"), { code: "40001" }))).toBe(
      true,
    );
  });

  it("does not hide a constraint violation or a bad statement", () => {
    expect(isUnavailable(Object.assign(new Error("duplicate key"), { code: "23505" }))).toBe(false);
    expect(isUnavailable(Object.assign(new Error("syntax error"), { code: "42601" }))).toBe(false);
  });
});
