// Types of bench/processes.mjs, for test/bench-tools.test.ts (the bench itself is plain JavaScript).
export interface BenchTarget {
  name: string;
  /** e.g. http://127.0.0.1:40123 */
  url: string;
  pids(): number[];
  memory(): Promise<{ rss: number; heap?: number }>;
  stop(): Promise<void>;
}
export declare const benchKey: string;
export declare const nginxPath: string;
export declare function startScript(script: string, env?: Record<string, string>, options?: { openFiles?: number; execArgv?: string[] }): Promise<BenchTarget>;
export declare function startNginx(upstreamUrl: string): Promise<BenchTarget | undefined>;
export declare function nginxConfig(directory: string, listenPort: number, upstreamPort: number): string;
export declare function stopAll(): Promise<void>;
