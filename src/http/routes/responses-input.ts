// What a Responses API request becomes: the provider-neutral chat request every adapter takes
// (instructions as a system message first, messages as chat messages, function calls as an
// assistant turn's tool_calls, their outputs as tool messages, function tools in the chat
// completions format), and the request fields its response object repeats.
import type { ChatMessage } from '../../contract/provider.js';
import type { FunctionTool, ResponseRequestEcho, ToolChoice } from '../../relay/encoders/responses-object.js';
import type { CreateResponseBody, InputItem } from './responses-schema.js';

type MutableMessage = { -readonly [K in keyof ChatMessage]: ChatMessage[K] };

/** Instructions first (they are not carried over by previous_response_id), then the items in order. */
export function toChatMessages(instructions: string | null | undefined, items: readonly InputItem[]): ChatMessage[] {
  const messages: MutableMessage[] = [];
  if (instructions) messages.push({ role: 'system', content: instructions });
  for (const item of items) {
    switch (item.type) {
      case 'message': {
        const texts = item.content.map((part) => part.text);
        // One part is plain content, which every adapter takes; several stay separate parts.
        const content = texts.length === 1 ? (texts[0] ?? '') : texts.length === 0 ? '' : texts.map((text) => ({ type: 'text', text }));
        messages.push({ role: item.role, content });
        break;
      }
      case 'function_call': {
        const call = { id: item.call_id, type: 'function', function: { name: item.name, arguments: item.arguments } };
        const last = messages[messages.length - 1];
        // Text and the calls that follow it are one assistant turn in the chat format.
        if (last?.role === 'assistant') last.tool_calls = [...(last.tool_calls ?? []), call];
        else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
        break;
      }
      case 'function_call_output':
        messages.push({ role: 'tool', tool_call_id: item.call_id, content: item.output });
        break;
    }
  }
  return messages;
}

/** The provider parameters, in OpenAI's chat names, that the request sets. */
export function toChatParams(body: CreateResponseBody, tools: readonly FunctionTool[]): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  if (typeof body.temperature === 'number') params['temperature'] = body.temperature;
  if (typeof body.top_p === 'number') params['top_p'] = body.top_p;
  if (typeof body.max_output_tokens === 'number') params['max_tokens'] = body.max_output_tokens;
  if (typeof body.user === 'string') params['user'] = body.user;
  // OpenAI refuses tool_choice and parallel_tool_calls without tools.
  if (tools.length > 0) {
    params['tools'] = tools.map((tool) => ({
      type: 'function',
      function: {
        name: tool.name,
        ...(tool.description !== null ? { description: tool.description } : {}),
        ...(tool.parameters !== null ? { parameters: tool.parameters } : {}),
        ...(tool.strict !== null ? { strict: tool.strict } : {}),
      },
    }));
    if (body.tool_choice != null) params['tool_choice'] = toChatToolChoice(body.tool_choice);
    if (typeof body.parallel_tool_calls === 'boolean') params['parallel_tool_calls'] = body.parallel_tool_calls;
  }
  return params;
}

function toChatToolChoice(choice: ToolChoice): unknown {
  return typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
}

/** The request fields the response object repeats, OpenAI's defaults filled in. */
export function requestEcho(body: CreateResponseBody): ResponseRequestEcho {
  const echo: ResponseRequestEcho = {
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    metadata: body.metadata ?? {},
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    store: body.store ?? true,
    temperature: body.temperature ?? null,
    tool_choice: body.tool_choice ?? 'auto',
    tools: (body.tools ?? []).map((tool) => ({ type: 'function', name: tool.name, description: tool.description ?? null, parameters: tool.parameters ?? null, strict: tool.strict ?? null })),
    top_p: body.top_p ?? null,
  };
  if (typeof body.user === 'string') echo.user = body.user;
  return echo;
}
