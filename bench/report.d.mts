// Types of bench/report.mjs, for test/bench-tools.test.ts (the bench itself is plain JavaScript).
export declare const startMarker: string;
export declare const endMarker: string;
export declare function markdownTable(header: readonly string[], rows: readonly (readonly unknown[])[]): string;
export declare function replaceResults(page: string, section: string): string;
export declare function slope(points: readonly { x: number; y: number }[]): number | undefined;
export declare function fitSlope(points: readonly { x: number; y: number }[]): { slope: number; error: number | undefined } | undefined;
