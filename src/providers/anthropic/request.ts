// Builds a Messages API request from the OpenAI-shaped chat request: system turns lifted into the
// top-level `system`, tool calls and tool results turned into content blocks, consecutive turns
// of the same role merged, `max_tokens` always set.
import type { ResolvedAnthropicProvider } from './config.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { CallContext, ChatMessage, ChatRequest } from '../../contract/provider.js';
import type { OutboundRequest } from '../shared/http-upstream.js';

type Block = Record<string, unknown>;
interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: Block[];
}

export function buildRequest(provider: ResolvedAnthropicProvider, request: ChatRequest, context: CallContext): OutboundRequest {
  const { system, messages } = convertMessages(request.messages);
  const params = request.params;
  const body: Record<string, unknown> = {
    model: request.model,
    max_tokens: numberParam(params['max_completion_tokens']) ?? numberParam(params['max_tokens']) ?? provider.maxTokens,
    messages,
    stream: context.mode === 'stream',
  };
  if (system) body['system'] = system;
  for (const key of ['temperature', 'top_p', 'top_k'] as const) if (typeof params[key] === 'number') body[key] = params[key];
  const stop = params['stop'];
  if (typeof stop === 'string') body['stop_sequences'] = [stop];
  else if (Array.isArray(stop)) body['stop_sequences'] = stop;
  const tools = convertTools(params['tools']);
  if (tools) body['tools'] = tools;
  const toolChoice = convertToolChoice(params['tool_choice']);
  if (toolChoice) body['tool_choice'] = toolChoice;
  const user = typeof params['user'] === 'string' ? params['user'] : request.userId;
  if (user) body['metadata'] = { user_id: user };
  return {
    url: `${provider.baseUrl.replace(/\/+$/, '')}/v1/messages`,
    headers: {
      ...provider.headers,
      'content-type': 'application/json',
      accept: context.mode === 'stream' ? 'text/event-stream' : 'application/json',
      'x-api-key': context.apiKey ?? provider.apiKeys[0] ?? '',
      'anthropic-version': provider.version,
    },
    body: JSON.stringify(body),
  };
}

function numberParam(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

export function convertMessages(input: readonly ChatMessage[]): { system: string; messages: AnthropicMessage[] } {
  const systemParts: string[] = [];
  const messages: AnthropicMessage[] = [];
  const push = (role: AnthropicMessage['role'], blocks: Block[]) => {
    if (blocks.length === 0) return;
    const last = messages[messages.length - 1];
    // The API wants turns to alternate: consecutive turns of one role become one turn.
    if (last?.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  input.forEach((message, index) => {
    switch (message.role) {
      case 'system':
      case 'developer':
        systemParts.push(textOf(message.content));
        break;
      case 'user':
        push('user', contentBlocks(message.content, index));
        break;
      case 'assistant': {
        const blocks = contentBlocks(message.content, index);
        for (const call of message.tool_calls ?? []) blocks.push(toolUseBlock(call, index));
        push('assistant', blocks);
        break;
      }
      case 'tool':
        push('user', [{ type: 'tool_result', tool_use_id: message.tool_call_id ?? '', content: textOf(message.content) }]);
        break;
    }
  });
  if (messages[0]?.role !== 'user') {
    throw new SluiceError('invalid_request', { param: 'messages', message: 'messages: Anthropic models need the conversation to start with a user message (after any system messages).' });
  }
  return { system: systemParts.filter(Boolean).join('\n\n'), messages };
}

function textOf(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (content === null) return '';
  return content.map((part) => (typeof part['text'] === 'string' ? part['text'] : '')).join('');
}

function contentBlocks(content: ChatMessage['content'], index: number): Block[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  if (content === null) return [];
  return content.map((part, partIndex) => {
    if (part['type'] === 'text' && typeof part['text'] === 'string') return { type: 'text', text: part['text'] };
    const image = part['image_url'];
    const url = typeof image === 'object' && image !== null ? (image as Record<string, unknown>)['url'] : undefined;
    if (part['type'] === 'image_url' && typeof url === 'string') {
      const inline = /^data:([^;]+);base64,(.*)$/s.exec(url);
      return inline ? { type: 'image', source: { type: 'base64', media_type: inline[1], data: inline[2] } } : { type: 'image', source: { type: 'url', url } };
    }
    throw new SluiceError('invalid_request', {
      param: `messages[${index.toString()}].content[${partIndex.toString()}]`,
      message: `messages[${index.toString()}].content[${partIndex.toString()}]: content parts of type "${String(part['type'])}" cannot be sent to an Anthropic model; use text or image_url.`,
    });
  });
}

function toolUseBlock(call: Record<string, unknown>, index: number): Block {
  const fn = (call['function'] ?? {}) as Record<string, unknown>;
  let input: unknown = {};
  if (typeof fn['arguments'] === 'string' && fn['arguments'] !== '') {
    try {
      input = JSON.parse(fn['arguments']);
    } catch {
      throw new SluiceError('invalid_request', { param: `messages[${index.toString()}].tool_calls`, message: `messages[${index.toString()}].tool_calls: function arguments must be JSON for an Anthropic model.` });
    }
  }
  return { type: 'tool_use', id: call['id'], name: fn['name'], input };
}

function convertTools(tools: unknown): Block[] | undefined {
  if (!Array.isArray(tools) || tools.length === 0) return undefined;
  return tools.map((tool: Record<string, unknown>) => {
    const fn = (tool['function'] ?? {}) as Record<string, unknown>;
    const converted: Block = { name: fn['name'], input_schema: fn['parameters'] ?? { type: 'object', properties: {} } };
    if (typeof fn['description'] === 'string') converted['description'] = fn['description'];
    return converted;
  });
}

function convertToolChoice(choice: unknown): Block | undefined {
  if (choice === 'auto') return { type: 'auto' };
  if (choice === 'required') return { type: 'any' };
  if (choice === 'none') return { type: 'none' };
  if (typeof choice === 'object' && choice !== null) {
    const name = ((choice as Record<string, unknown>)['function'] as Record<string, unknown> | undefined)?.['name'];
    if (typeof name === 'string') return { type: 'tool', name };
  }
  return undefined;
}
