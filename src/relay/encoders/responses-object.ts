// The Responses API's response object and its output items, as Sluice writes them: the shapes of
// the official SDK's `Response`, `ResponseOutputMessage` and `ResponseFunctionToolCall`
// (openai/resources/responses/responses.d.ts), with the fields Sluice can fill. The events of
// responses-events.ts carry these, and so do the routes' JSON answers and the stored responses.
import type { Usage } from '../../contract/stream-event.js';
import type { ResponseStatus } from '../../store/store.js';

export type { ResponseStatus };

/** A function tool as a response repeats it (`tools` of the request, defaults filled in). */
export interface FunctionTool {
  type: 'function';
  name: string;
  description: string | null;
  parameters: Record<string, unknown> | null;
  strict: boolean | null;
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; name: string };

/**
 * The request fields a response object repeats. Stored with a response, so that a replay long
 * after the request writes exactly the same objects.
 */
export interface ResponseRequestEcho {
  instructions: string | null;
  max_output_tokens: number | null;
  metadata: Record<string, string>;
  parallel_tool_calls: boolean;
  previous_response_id: string | null;
  store: boolean;
  temperature: number | null;
  tool_choice: ToolChoice;
  tools: FunctionTool[];
  top_p: number | null;
  user?: string;
}

/** Everything a response object holds that its generation's log does not. */
export interface ResponseIdentity {
  /** `resp_<generationId>`. */
  id: string;
  /** Seconds since the epoch. */
  createdAt: number;
  /** The model name the client asked for (an alias stays an alias). */
  model: string;
  background: boolean;
  request: ResponseRequestEcho;
}

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete';

export interface OutputText {
  type: 'output_text';
  text: string;
  annotations: [];
  logprobs: [];
}

export interface OutputMessage {
  id: string;
  type: 'message';
  status: ItemStatus;
  role: 'assistant';
  content: OutputText[];
}

export interface FunctionCallItem {
  id: string;
  type: 'function_call';
  status: ItemStatus;
  /** The id the function's output must name (`function_call_output.call_id`). */
  call_id: string;
  name: string;
  arguments: string;
}

export type OutputItem = OutputMessage | FunctionCallItem;

export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export interface ResponseError {
  /** A code of Sluice's error table (docs/errors.md), not one of OpenAI's. */
  code: string;
  message: string;
}

export interface ResponseObject extends ResponseRequestEcho {
  id: string;
  object: 'response';
  created_at: number;
  status: ResponseStatus;
  background: boolean;
  error: ResponseError | null;
  incomplete_details: { reason: 'max_output_tokens' | 'content_filter' } | null;
  model: string;
  output: OutputItem[];
  text: { format: { type: 'text' } };
  truncation: 'disabled';
  usage: ResponseUsage | null;
  /** Seconds since the epoch; only in stored responses (an event log has no clock). */
  completed_at?: number | null;
}

/** What a response object says beyond its identity. */
export interface ResponseState {
  status: ResponseStatus;
  output: readonly OutputItem[];
  usage?: Usage;
  error?: ResponseError;
  incompleteReason?: 'max_output_tokens' | 'content_filter';
}

/** A new response object (its items copied, so later changes to `state` do not reach it). */
export function buildResponse(identity: ResponseIdentity, state: ResponseState): ResponseObject {
  const { request } = identity;
  const response: ResponseObject = {
    id: identity.id,
    object: 'response',
    created_at: identity.createdAt,
    status: state.status,
    background: identity.background,
    error: state.error ? { ...state.error } : null,
    incomplete_details: state.incompleteReason ? { reason: state.incompleteReason } : null,
    instructions: request.instructions,
    max_output_tokens: request.max_output_tokens,
    metadata: { ...request.metadata },
    model: identity.model,
    output: state.output.map(copyItem),
    parallel_tool_calls: request.parallel_tool_calls,
    previous_response_id: request.previous_response_id,
    store: request.store,
    temperature: request.temperature,
    text: { format: { type: 'text' } },
    tool_choice: request.tool_choice,
    tools: request.tools,
    top_p: request.top_p,
    truncation: 'disabled',
    usage: state.usage ? responseUsage(state.usage) : null,
  };
  if (request.user !== undefined) response.user = request.user;
  return response;
}

export function copyItem(item: OutputItem): OutputItem {
  return item.type === 'message' ? { ...item, content: item.content.map((part) => ({ ...part })) } : { ...item };
}

/** Sluice's token counts in the Responses API's names; Sluice knows no cached or reasoning split. */
export function responseUsage(usage: Usage): ResponseUsage {
  return {
    input_tokens: usage.promptTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: usage.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.totalTokens,
  };
}

/** True for the statuses a response never leaves. */
export function isFinalStatus(status: ResponseStatus): boolean {
  return status !== 'queued' && status !== 'in_progress';
}
