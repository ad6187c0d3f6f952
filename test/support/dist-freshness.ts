// The end-to-end tests that run `dist/` (the CLI, cluster nodes, the playground's client) never
// build it themselves: a test file rebuilding dist/ while another file's child process loads it
// once made a cluster node fail on a half-written module. `npm test` builds once, before vitest
// starts; these helpers only check that the build is there and not older than its sources.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export const root = new URL('../..', import.meta.url).pathname;

/** Throws with the file that is out of date, and the command that fixes it. */
export function assertBuildIsCurrent(): void {
  const source = join(root, 'src');
  for (const file of sourceFiles(source)) {
    const built = join(root, 'dist', relative(source, file)).replace(/\.ts$/, '.js');
    let builtAt: number;
    try {
      builtAt = statSync(built).mtimeMs;
    } catch {
      throw new Error(`dist/ has no ${relative(root, built)}: run \`npm run build\` (npm test builds before vitest)`);
    }
    if (builtAt < statSync(file).mtimeMs) {
      throw new Error(`${relative(root, built)} is older than ${relative(root, file)}: run \`npm run build\` (npm test builds before vitest)`);
    }
  }
}

function* sourceFiles(directory: string): Generator<string> {
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) yield path;
  }
}
