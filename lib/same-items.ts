/** Whether two lists hold the same items (===) in the same order: how the memos tell "nothing changed". */
export function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
