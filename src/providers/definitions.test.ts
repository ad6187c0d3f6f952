// Every listed provider is whole: its schema's `type` literal is its type, its defaults are
// settings of its schema and are what resolution fills in, and it has the documentation the
// checklist asks for (docs/providers/adding-a-provider.md).
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SomeProviderDefinition } from './definition.js';
import { providerDefinitions } from './definitions.js';

const repoFile = (path: string) => new URL(`../../${path}`, import.meta.url);

describe.each(providerDefinitions.map((definition): [string, SomeProviderDefinition] => [definition.type, definition]))('provider %s', (type, definition) => {
  it('is named by its schema', () => {
    expect(definition.schema.shape.type.value).toBe(type);
    expect(definition.schema.safeParse({ type: `${type}-not` }).success).toBe(false);
  });

  it('has defaults only for settings its schema has, and resolution fills them in', () => {
    const settings = Object.keys(definition.schema.shape);
    for (const key of Object.keys(definition.defaults)) expect(settings).toContain(key);
    const timeouts = { connectMs: 1, firstByteMs: 2, idleMs: 3, totalMs: 0 };
    // resolve trusts its input (the schema ran before it), so a bare entry shows the defaults alone.
    const resolved = definition.resolve({ type }, { id: 'p', timeouts });
    expect(resolved).toMatchObject({ ...definition.defaults, type, id: 'p', timeouts });
  });

  it('has its documentation page, linked from the README', () => {
    expect(existsSync(repoFile(`docs/providers/${type}.md`))).toBe(true);
    expect(readFileSync(repoFile('README.md'), 'utf8')).toContain(`(docs/providers/${type}.md)`);
    expect(readFileSync(repoFile('docs/configuration.md'), 'utf8')).toContain(`type: ${type} `);
  });
});
