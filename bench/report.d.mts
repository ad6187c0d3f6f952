// Types of bench/report.mjs, for test/bench-tools.test.ts (the bench itself is plain JavaScript).
export declare const startMarker: string;
export declare const endMarker: string;
export declare function markdownTable(header: readonly string[], rows: readonly (readonly unknown[])[]): string;
export declare function replaceResults(page: string, section: string): string;
export declare function slope(points: readonly { x: number; y: number }[]): number | undefined;
export declare function fitSlope(points: readonly { x: number; y: number }[]): { slope: number; error: number | undefined } | undefined;
/** One reading of bench/memory-probe.mjs (bytes). */
export interface MemoryReading {
  readonly rss: number;
  readonly newSpace?: number;
  readonly newSpaceResident?: number;
  readonly heapTotal?: number;
}
export declare function rssGrowth(before: MemoryReading, after: MemoryReading): number;
export declare function heapTotalGrowth(before: MemoryReading, after: MemoryReading): number | undefined;
export declare function youngGeneration(before: MemoryReading, after: MemoryReading): { before?: number; after?: number; residentBefore?: number; residentAfter?: number };
export declare function perRoundDifference(as: readonly number[], bs: readonly number[]): { difference: number | undefined; lowest: number | undefined; highest: number | undefined; rounds: number };
export declare function percentile(values: readonly number[], fraction: number): number | undefined;
