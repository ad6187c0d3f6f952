// The Azure request: the deployment's URL (mapped or the model's own name, path-encoded), the
// api-version query, the key in api-key and never in Authorization.
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../config/load.js';
import type { ResolvedAzureProvider } from './config.js';
import { buildRequest } from './request.js';

function provider(entry: Record<string, unknown>): ResolvedAzureProvider {
  return resolveConfig({ providers: { azure: { type: 'azure', apiKey: 'azure-key-0123', ...entry } } }, {}).providers['azure'] as ResolvedAzureProvider;
}

const context = { mode: 'stream', requestId: 'req-1', signal: new AbortController().signal } as const;

describe('azure request', () => {
  it('posts to the mapped deployment with the default api-version and the api-key header', () => {
    const built = buildRequest(provider({ endpoint: 'https://my-resource.openai.azure.com/', deployments: { 'gpt-4o': 'chat-prod' } }), { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }], params: {} }, context);
    expect(built.url).toBe('https://my-resource.openai.azure.com/openai/deployments/chat-prod/chat/completions?api-version=2024-10-21');
    expect(built.headers['api-key']).toBe('azure-key-0123');
    expect(built.headers['authorization']).toBeUndefined();
    expect(JSON.parse(built.body)).toMatchObject({ messages: [{ role: 'user', content: 'Hi' }], stream: true, stream_options: { include_usage: true } });
  });

  it('takes an unmapped model as its own deployment, path-encoded, with the configured api-version', () => {
    const built = buildRequest(provider({ endpoint: 'https://my-resource.openai.azure.com', apiVersion: '2025-01-01-preview' }), { model: 'my model/v2', messages: [], params: {} }, context);
    expect(built.url).toBe('https://my-resource.openai.azure.com/openai/deployments/my%20model%2Fv2/chat/completions?api-version=2025-01-01-preview');
  });

  it('refuses an endpoint that is not an http(s) URL, with an example', () => {
    expect(() => provider({ endpoint: 'my-resource' })).toThrow(/providers\.azure\.endpoint: must be an http\(s\) URL such as https:\/\/my-resource\.openai\.azure\.com/);
  });
});
