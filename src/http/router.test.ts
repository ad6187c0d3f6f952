// The router on its own: literal and `:name` patterns in registration order, HEAD served by GET,
// 405 with the methods a path accepts, and the memory of literal matches (decision 0046), which
// must answer exactly as the walk over the routes would.
import { describe, expect, it } from 'vitest';
import { Router, type RouteMatch } from './router.js';

const handler = () => undefined;

function routes(): Router {
  return new Router()
    .add('GET', '/v1/models', handler, { name: 'models' })
    .add('POST', '/v1/chat/completions', handler, { name: 'chat' })
    .add('GET', '/api/generations/:id', handler, { name: 'generation' })
    .add('GET', '/api/generations/latest', handler, { name: 'shadowed' });
}

const nameOf = (match: RouteMatch) => (match.kind === 'found' ? match.route.name : match.kind);

describe('Router.match', () => {
  it('answers a literal path the same way each time it is asked, whatever the slashes', () => {
    const router = routes();
    for (let round = 0; round < 3; round += 1) {
      expect(nameOf(router.match('POST', '/v1/chat/completions'))).toBe('chat');
      expect(nameOf(router.match('POST', '/v1//chat/completions/'))).toBe('chat');
      expect(nameOf(router.match('HEAD', '/v1/models'))).toBe('models');
      expect(router.match('GET', '/v1/chat/completions')).toEqual({ kind: 'method-not-allowed', allowed: ['POST'] });
      expect(router.match('GET', '/v1/nothing')).toEqual({ kind: 'not-found' });
    }
  });

  it('gives each request its own parameters, and an earlier pattern wins over a later literal', () => {
    const router = routes();
    const first = router.match('GET', '/api/generations/abc');
    const second = router.match('GET', '/api/generations/d%20e');
    expect(first).toMatchObject({ kind: 'found', params: { id: 'abc' } });
    expect(second).toMatchObject({ kind: 'found', params: { id: 'd e' } });
    expect(router.match('GET', '/api/generations/latest')).toMatchObject({ route: { name: 'generation' }, params: { id: 'latest' } });
    expect(router.match('GET', '/api/generations/%E0%A4%A')).toEqual({ kind: 'not-found' });
  });

  it('a route added after a match is found by the next one', () => {
    const router = routes();
    expect(router.match('DELETE', '/v1/models')).toEqual({ kind: 'method-not-allowed', allowed: ['GET'] });
    expect(nameOf(router.match('GET', '/v1/models'))).toBe('models');
    router.add('DELETE', '/v1/models', handler, { name: 'forget' }).add('GET', '/v1/models', handler, { name: 'later' });
    expect(nameOf(router.match('DELETE', '/v1/models'))).toBe('forget');
    expect(nameOf(router.match('GET', '/v1/models'))).toBe('models');
  });

  it('remembers a bounded number of paths, and answers the rest by walking the routes', () => {
    const router = routes();
    for (let index = 0; index < 600; index += 1) expect(nameOf(router.match('POST', `/v1/chat/completions${'/'.repeat(index)}`))).toBe('chat');
    expect(nameOf(router.match('POST', '/v1/chat/completions'))).toBe('chat');
    expect(nameOf(router.match('POST', `/v1/chat/completions${'/'.repeat(700)}`))).toBe('chat');
  });
});
