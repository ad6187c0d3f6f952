// `sluice/client`: the browser-and-Node client of Sluice's native API (docs/client.md). This
// folder imports nothing but eventsource-parser and itself, and uses no Node globals, so it
// runs unchanged in a browser; test/client-library.test.ts checks that it stays so.
export { createSluiceClient, type SluiceClient, type SluiceClientOptions } from './client.js';
export type { ChatInput, ChatStream, ResumeInput } from './chat.js';
export type { Subscription, SubscribeInput } from './subscribe.js';
export type { ChatEvent, PushEvent, ToolCallDelta, Conversation, ConversationMessage, ConversationSummary } from './events.js';
export { SluiceClientError, type ClientErrorCode } from './errors.js';
export type { RetryOptions } from './backoff.js';
export type { WebSocketConstructor, WebSocketLike } from './websocket.js';
