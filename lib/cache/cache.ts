/** Redis-shaped key/value operations the service needs; Redis is an accelerator, never the source of truth. */
export interface Cache {
  readonly kind: "memory" | "redis";
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Sets only when absent; true when this caller set it (an in-flight lock). */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  del(key: string): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
