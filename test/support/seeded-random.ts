// A seeded pseudo-random source (mulberry32) for tests that generate inputs or cut bodies at random
// places: the same seed gives the same sequence on every run, so a failure names its seed and can
// be replayed.
export function seededRandom(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}
