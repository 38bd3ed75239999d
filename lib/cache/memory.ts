import type { Cache } from "./cache.ts";

/** In-process cache for the embedded default. Entries expire lazily on read and by a bounded size. */
export function memoryCache(maxEntries = 50_000): Cache {
  const entries = new Map<string, { value: string; expiresAt: number }>();
  const live = (key: string) => {
    const entry = entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };
  const put = (key: string, value: string, ttlMs: number) => {
    entries.delete(key);
    entries.set(key, { value, expiresAt: Date.now() + ttlMs });
    // Maps iterate in insertion order, so the first key is the oldest write.
    if (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
  };
  return {
    kind: "memory",
    get: async (key) => live(key)?.value,
    set: async (key, value, ttlMs) => put(key, value, ttlMs),
    setIfAbsent: async (key, value, ttlMs) => {
      if (live(key)) return false;
      put(key, value, ttlMs);
      return true;
    },
    del: async (key) => {
      entries.delete(key);
    },
    ping: async () => {},
    close: async () => entries.clear(),
  };
}
