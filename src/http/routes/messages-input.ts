// What a Messages API request becomes: the provider-neutral chat request every adapter takes.
// `system` is a system message first; an assistant turn's text and tool_use blocks are one
// assistant message with tool_calls; a user turn's tool_result blocks are tool messages (first,
// since the chat format wants them right after the calls), then its text as a user message;
// client tools are function tools, and tool_choice, max_tokens and stop_sequences take their chat
// completions names (docs/messages.md, "How a request is mapped").
import { SluiceError } from '../../errors/sluice-error.js';
import type { ChatMessage } from '../../contract/provider.js';
import type { CountTokensBody, CreateMessageBody, MessageInput, ToolChoiceInput, ToolInput } from './messages-schema.js';

/** The chat messages of a request: its system prompt, then each turn in order. */
export function toChatMessages(body: Pick<CountTokensBody, 'system' | 'messages'>): ChatMessage[] {
  const messages: ChatMessage[] = [];
  const system = typeof body.system === 'string' ? body.system : (body.system ?? []).map((block) => block.text).join('\n\n');
  if (system !== '') messages.push({ role: 'system', content: system });
  body.messages.forEach((message, index) => messages.push(...turnMessages(message, index)));
  return messages;
}

function turnMessages(message: MessageInput, turn: number): ChatMessage[] {
  const texts: string[] = [];
  const calls: Record<string, unknown>[] = [];
  const results: ChatMessage[] = [];
  message.content.forEach((block, index) => {
    const param = `messages[${turn.toString()}].content[${index.toString()}]`;
    switch (block.type) {
      case 'text':
        texts.push(block.text);
        break;
      case 'tool_use':
        if (message.role !== 'assistant') throw new SluiceError('invalid_request', { param, message: `${param}: tool_use blocks belong in assistant turns` });
        calls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input) } });
        break;
      case 'tool_result': {
        if (message.role !== 'user') throw new SluiceError('invalid_request', { param, message: `${param}: tool_result blocks belong in user turns` });
        const output = typeof block.content === 'string' ? block.content : (block.content ?? []).map((part) => part.text).join('');
        // The chat format has no error flag on a tool message: the model reads it in the text.
        results.push({ role: 'tool', tool_call_id: block.tool_use_id, content: block.is_error === true ? `Error: ${output}` : output });
        break;
      }
      case 'thinking':
      case 'redacted_thinking':
        // The model's own reasoning from an earlier turn: other providers cannot take it back.
        break;
    }
  });
  // One text is plain content, which every adapter takes; several stay separate parts.
  const content = texts.length === 1 ? (texts[0] ?? '') : texts.map((text) => ({ type: 'text', text }));
  if (message.role === 'assistant') {
    if (calls.length > 0) return [{ role: 'assistant', content: texts.length === 0 ? null : content, tool_calls: calls }];
    return [{ role: 'assistant', content: texts.length === 0 ? '' : content }];
  }
  return texts.length > 0 || results.length === 0 ? [...results, { role: 'user', content: texts.length === 0 ? '' : content }] : results;
}

/** The provider parameters, in OpenAI's chat names, that the request sets. */
export function toChatParams(body: CreateMessageBody): Record<string, unknown> {
  const params: Record<string, unknown> = { max_tokens: body.max_tokens };
  if (body.temperature !== undefined) params['temperature'] = body.temperature;
  if (body.top_p !== undefined) params['top_p'] = body.top_p;
  if (body.stop_sequences !== undefined && body.stop_sequences.length > 0) params['stop'] = body.stop_sequences;
  // OpenAI refuses tool_choice and parallel_tool_calls without tools; `none` is leaving them out.
  if (body.tools !== undefined && body.tools.length > 0 && body.tool_choice?.type !== 'none') {
    params['tools'] = body.tools.map(toChatTool);
    if (body.tool_choice !== undefined) {
      params['tool_choice'] = toChatToolChoice(body.tool_choice);
      if ('disable_parallel_tool_use' in body.tool_choice && body.tool_choice.disable_parallel_tool_use === true) params['parallel_tool_calls'] = false;
    }
  }
  return params;
}

export function toChatTool(tool: ToolInput): Record<string, unknown> {
  return { type: 'function', function: { name: tool.name, ...(tool.description !== undefined ? { description: tool.description } : {}), parameters: tool.input_schema } };
}

function toChatToolChoice(choice: ToolChoiceInput): unknown {
  switch (choice.type) {
    case 'auto':
      return 'auto';
    case 'any':
      return 'required';
    case 'tool':
      return { type: 'function', function: { name: choice.name } };
    case 'none':
      return 'none';
  }
}
