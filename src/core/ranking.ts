// Choosing "the N busiest" with hysteresis. When many flows move about the same amount, their ranks are
// noise: a plain top N would swap flows in and out every time, and each swap ends one flow's series and
// starts another's. So the previous choice (the incumbents) keeps its places while each incumbent moves
// at least KEEP_SHARE of what the N-th busiest moves now; free places go to the busiest of the rest.

/** An incumbent keeps its place while it moves at least this share of the N-th busiest. */
export const KEEP_SHARE = 0.5;

/**
 * The `max` items to keep from `ranked` (busiest first, by `amount`), preferring incumbents as described
 * above. Returned in the order of `ranked`.
 */
export function chooseWithHysteresis<T>(ranked: readonly T[], amount: (t: T) => number, incumbent: (t: T) => boolean, max: number): T[] {
  if (ranked.length <= max) return [...ranked];
  if (max <= 0) return [];
  const threshold = amount(ranked[max - 1]) * KEEP_SHARE;
  const chosen = new Set(ranked.filter((t) => incumbent(t) && amount(t) >= threshold).slice(0, max));
  for (const t of ranked) {
    if (chosen.size >= max) break;
    chosen.add(t);
  }
  return ranked.filter((t) => chosen.has(t));
}
