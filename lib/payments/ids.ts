import { v7 as uuidv7 } from "uuid";

export type IdPrefix = "ord" | "pay" | "re" | "evt" | "aud";

/**
 * Opaque, URL-safe ids whose sort order is creation order (UUIDv7 underneath), so inserts stay at the right
 * edge of the index and keyset pagination can order by id alone.
 */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${uuidv7().replaceAll("-", "")}`;
}

const ID_PATTERN = /^(ord|pay|re|evt)_[0-9a-f]{32}$/;

export function isId(value: string, prefix: IdPrefix): boolean {
  return ID_PATTERN.test(value) && value.startsWith(`${prefix}_`);
}
