import { describe, expect, it } from "vitest";
import { CoalescedLoads } from "./coalesced-loads.ts";

/** A read the test finishes by hand; `started` lists them in the order they started. */
function reads() {
  const started: { finish: (value: string) => void; fail: (error: Error) => void }[] = [];
  const read = () =>
    new Promise<string>((resolve, reject) => {
      started.push({ finish: resolve, fail: reject });
    });
  return { started, read };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("coalesced loads", () => {
  it("shares one read among the callers that arrive while another runs, started after it ends", async () => {
    const loads = new CoalescedLoads();
    const { started, read } = reads();
    const first = loads.load("k", read);
    const joiners = Array.from({ length: 5 }, () => loads.load("k", read));
    await settle();
    expect(started).toHaveLength(1);
    started[0]?.finish("before");
    expect(await first).toBe("before");
    await settle();
    // The joiners' read starts only now, after the one that was running when they came.
    expect(started).toHaveLength(2);
    started[1]?.finish("after");
    expect(await Promise.all(joiners)).toEqual(Array(5).fill("after"));
  });

  it("keeps keys apart, and starts afresh once nothing runs", async () => {
    const loads = new CoalescedLoads();
    const { started, read } = reads();
    const a = loads.load("a", read);
    const b = loads.load("b", read);
    await settle();
    expect(started).toHaveLength(2);
    started[0]?.finish("a1");
    started[1]?.finish("b1");
    expect([await a, await b]).toEqual(["a1", "b1"]);
    const again = loads.load("a", read);
    await settle();
    expect(started).toHaveLength(3);
    started[2]?.finish("a2");
    expect(await again).toBe("a2");
  });

  it("runs the waiting read when the running one fails; a failed read fails only its own callers", async () => {
    const loads = new CoalescedLoads();
    const { started, read } = reads();
    const first = loads.load("k", read);
    const joiner = loads.load("k", read);
    await settle();
    started[0]?.fail(new Error("connection lost"));
    await expect(first).rejects.toThrow("connection lost");
    await settle();
    started[1]?.finish("fresh");
    expect(await joiner).toBe("fresh");
  });
});
