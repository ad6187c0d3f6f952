// The playground: a chat page on the client library, as a plain ES module with no build step.
// Model output and pushes are untrusted text: they reach the page only through text nodes and
// textContent, never as HTML (the page's CSP also requires Trusted Types, so an innerHTML
// assignment with a string would throw rather than render).
import { createSluiceClient, SluiceClientError } from 'sluice/client';

/** localStorage keeps the key and model across visits; sessionStorage is per tab. */
const stored = {
  apiKey: 'sluice.playground.apiKey',
  model: 'sluice.playground.model',
  conversationId: 'sluice.playground.conversationId',
  /** `{ lastEventId, text, question, conversationId, model, timeToFirstTokenMs }` while an answer streams. */
  pending: 'sluice.playground.pending',
  hubLastEventId: 'sluice.playground.hubLastEventId',
};

/** Notifications kept on screen; older ones drop off. */
const maxNotifications = 50;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const ui = {
  keyForm: /** @type {HTMLFormElement} */ ($('key-form')),
  keyInput: /** @type {HTMLInputElement} */ ($('key-input')),
  keyHelp: $('key-help'),
  keySaved: $('key-saved'),
  forgetKey: $('forget-key'),
  error: $('error'),
  modelSelect: /** @type {HTMLSelectElement} */ ($('model-select')),
  conversationLabel: $('conversation-label'),
  thread: $('thread'),
  chatForm: /** @type {HTMLFormElement} */ ($('chat-form')),
  messageInput: /** @type {HTMLTextAreaElement} */ ($('message-input')),
  send: /** @type {HTMLButtonElement} */ ($('send')),
  stop: /** @type {HTMLButtonElement} */ ($('stop')),
  status: $('status'),
  newConversation: /** @type {HTMLButtonElement} */ ($('new-conversation')),
  conversationList: $('conversation-list'),
  conversationsEmpty: $('conversations-empty'),
  hubStatus: $('hub-status'),
  notificationList: $('notification-list'),
};

const state = {
  /** @type {ReturnType<typeof createSluiceClient> | undefined} */
  client: undefined,
  conversationId: sessionStorage.getItem(stored.conversationId) ?? newConversationId(),
  /** The answer streaming now, if any. */
  stream: undefined,
  stopRequested: false,
  /** Set when the page is going away: a stream broken by the reload must stay resumable. */
  leaving: false,
  /** Ids from the last conversation list. */
  storedConversations: new Set(),
  /** @type {AbortController | undefined} ends the notifications subscription. */
  hub: undefined,
};

window.addEventListener('pagehide', () => (state.leaving = true));

// ---- small DOM helpers: text only ----

/** An element with optional class and text (set as textContent, never parsed). */
function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(text) {
  ui.status.textContent = text;
}

/** Shows an error as "code: message" (plus the HTTP status and Retry-After when known). */
function showError(error, context) {
  const lines = [];
  if (error instanceof SluiceClientError) {
    const status = error.status !== undefined ? ` (HTTP ${error.status})` : '';
    lines.push(`${context ? `${context}: ` : ''}${error.code}${status}: ${error.message}`);
    if (error.retryAfterSeconds !== undefined) lines.push(`Try again in ${error.retryAfterSeconds} s.`);
  } else if (error && typeof error === 'object' && 'code' in error && 'message' in error) {
    lines.push(`${context ? `${context}: ` : ''}${String(error.code)}: ${String(error.message)}`);
  } else {
    lines.push(`${context ? `${context}: ` : ''}${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  }
  ui.error.textContent = lines.join('\n');
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

function newConversationId() {
  // getRandomValues works outside secure contexts too (randomUUID does not), e.g. over a LAN address.
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `c-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

function readPending() {
  try {
    const value = JSON.parse(sessionStorage.getItem(stored.pending) ?? 'null');
    return value && typeof value.lastEventId === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

// ---- the key ----

function showKeyForm() {
  ui.keyForm.hidden = false;
  ui.keyHelp.hidden = false;
  ui.keySaved.hidden = true;
  setChatEnabled(false);
  ui.keyInput.focus();
}

function setChatEnabled(enabled) {
  for (const control of [ui.modelSelect, ui.messageInput, ui.newConversation]) control.disabled = !enabled;
  ui.send.disabled = !enabled || state.stream !== undefined;
}

ui.keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const apiKey = ui.keyInput.value.trim();
  if (apiKey === '') return;
  ui.keyInput.value = '';
  localStorage.setItem(stored.apiKey, apiKey);
  void connect(apiKey);
});

ui.forgetKey.addEventListener('click', () => {
  localStorage.removeItem(stored.apiKey);
  state.stream?.cancel().catch(() => undefined);
  state.hub?.abort();
  state.hub = undefined;
  state.client = undefined;
  ui.conversationList.replaceChildren();
  ui.notificationList.replaceChildren();
  ui.hubStatus.textContent = 'offline';
  ui.modelSelect.replaceChildren(new Option('Gateway default', ''));
  clearError();
  setStatus('Key forgotten.');
  showKeyForm();
});

/** Checks the key by listing models, then loads conversations, notifications and any answer to resume. */
async function connect(apiKey) {
  clearError();
  const client = createSluiceClient({ baseUrl: location.origin, apiKey, fetch: (input, init) => fetch(input, init) });
  let models;
  try {
    models = await client.models();
  } catch (error) {
    showError(error, 'The key was not accepted');
    if (error instanceof SluiceClientError && error.status === 401) localStorage.removeItem(stored.apiKey);
    showKeyForm();
    return;
  }
  state.client = client;
  ui.keyForm.hidden = true;
  ui.keyHelp.hidden = true;
  ui.keySaved.hidden = false;
  fillModels(models);
  setChatEnabled(true);
  startNotifications(client);
  await refreshConversations();
  const pending = readPending();
  if (pending) {
    await openConversation(pending.conversationId ?? state.conversationId, pending);
    await resume(pending);
  } else {
    await openConversation(state.conversationId);
  }
  ui.messageInput.focus();
}

function fillModels(models) {
  const chosen = localStorage.getItem(stored.model) ?? '';
  const options = [new Option('Gateway default', '')];
  for (const model of models) options.push(new Option(model.owned_by ? `${model.id} (${model.owned_by})` : model.id, model.id));
  ui.modelSelect.replaceChildren(...options);
  ui.modelSelect.value = models.some((model) => model.id === chosen) ? chosen : '';
}

ui.modelSelect.addEventListener('change', () => localStorage.setItem(stored.model, ui.modelSelect.value));

// ---- conversations ----

async function refreshConversations() {
  if (!state.client) return;
  let conversations;
  try {
    conversations = await state.client.conversations.list();
  } catch (error) {
    showError(error, 'Could not list conversations');
    return;
  }
  const items = conversations.map((conversation) => {
    const item = element('li');
    const open = element('button', 'open');
    open.type = 'button';
    open.dataset.conversationId = conversation.id;
    const title = conversation.title ?? conversation.id;
    open.append(element('span', undefined, title), element('small', undefined, new Date(conversation.updatedAt).toLocaleString()));
    if (conversation.id === state.conversationId) open.setAttribute('aria-current', 'true');
    open.addEventListener('click', () => void openConversation(conversation.id));
    const remove = element('button', 'delete', '✕');
    remove.type = 'button';
    remove.setAttribute('aria-label', `Delete conversation ${title}`);
    remove.title = 'Delete';
    remove.addEventListener('click', () => void deleteConversation(conversation.id));
    item.append(open, remove);
    return item;
  });
  state.storedConversations = new Set(conversations.map((conversation) => conversation.id));
  const current = conversations.find((conversation) => conversation.id === state.conversationId);
  if (current) ui.conversationLabel.textContent = current.title ?? `Conversation ${current.id}`;
  ui.conversationList.replaceChildren(...items);
  ui.conversationsEmpty.hidden = items.length > 0;
}

/**
 * Shows a conversation's stored messages. With `pending` (an answer being resumed), a stored
 * copy of that answer (it finished during the reload) is left out: the resume shows it.
 */
async function openConversation(id, pending) {
  if (state.stream && !pending) {
    setStatus('Stop the running answer before switching conversations.');
    return;
  }
  state.conversationId = id;
  sessionStorage.setItem(stored.conversationId, id);
  ui.conversationLabel.textContent = 'New conversation';
  ui.thread.replaceChildren();
  for (const button of ui.conversationList.querySelectorAll('button.open')) button.removeAttribute('aria-current');
  // A conversation is stored when its first answer ends; asking for a newer one would be a 404.
  if (!state.client || !state.storedConversations.has(id)) return;
  let conversation;
  try {
    conversation = await state.client.conversations.get(id);
  } catch (error) {
    showError(error, 'Could not load the conversation');
    return;
  }
  if (state.conversationId !== id) return; // Another conversation was opened meanwhile.
  ui.conversationLabel.textContent = conversation.title ?? `Conversation ${id}`;
  ui.conversationList.querySelector(`button.open[data-conversation-id="${CSS.escape(id)}"]`)?.setAttribute('aria-current', 'true');
  let messages = conversation.messages;
  const resumed = pending?.lastEventId.split(':')[0];
  const stale = messages.findIndex((message) => message.generationId !== null && message.generationId === resumed);
  if (stale !== -1) messages = messages.slice(0, stale > 0 && messages[stale - 1]?.role === 'user' ? stale - 1 : stale);
  for (const message of messages) {
    const view = addMessage(message.role, message.content);
    if (message.status !== 'complete') view.details.textContent = message.status;
  }
}

async function deleteConversation(id) {
  if (!state.client) return;
  try {
    await state.client.conversations.delete(id);
  } catch (error) {
    showError(error, 'Could not delete the conversation');
    return;
  }
  if (id === state.conversationId) startNewConversation();
  await refreshConversations();
}

function startNewConversation() {
  if (state.stream) return;
  state.conversationId = newConversationId();
  sessionStorage.setItem(stored.conversationId, state.conversationId);
  ui.conversationLabel.textContent = 'New conversation';
  ui.thread.replaceChildren();
  clearError();
  setStatus('');
  for (const button of ui.conversationList.querySelectorAll('button.open')) button.removeAttribute('aria-current');
  ui.messageInput.focus();
}

ui.newConversation.addEventListener('click', startNewConversation);

// ---- the thread ----

/** Appends a message; returns its text and details elements. */
function addMessage(role, text) {
  const item = element('li', `message ${role === 'user' ? 'user' : 'assistant'}`);
  const body = element('p', 'text', text);
  const details = element('span', 'details');
  item.append(element('span', 'role', role === 'user' ? 'You' : role), body, details);
  ui.thread.append(item);
  return { item, body, details };
}

/** A new assistant message that grows as deltas arrive; the current one carries id="answer". */
function addAnswer(initialText) {
  document.getElementById('answer')?.removeAttribute('id');
  const view = addMessage('assistant', '');
  view.body.id = 'answer';
  view.body.setAttribute('aria-live', 'polite');
  // Busy while streaming, so a screen reader reads the answer once it is whole, not word by word.
  view.body.setAttribute('aria-busy', 'true');
  view.item.classList.add('streaming');
  if (initialText) view.body.append(document.createTextNode(initialText));
  return view;
}

// ---- chatting ----

ui.chatForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const question = ui.messageInput.value.trim();
  if (question === '' || !state.client || state.stream) return;
  ui.messageInput.value = '';
  void ask(question);
});

ui.messageInput.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) ui.chatForm.requestSubmit();
});

ui.stop.addEventListener('click', () => {
  if (!state.stream) return;
  state.stopRequested = true;
  setStatus('Stopping…');
  state.stream.cancel().catch((error) => showError(error, 'Could not stop the answer'));
});

async function ask(question) {
  clearError();
  addMessage('user', question);
  const model = ui.modelSelect.value;
  const conversationId = state.conversationId;
  const stream = state.client.chat({ message: question, conversationId, ...(model ? { model } : {}) });
  await follow(stream, addAnswer(''), { question, conversationId, model, text: '', startedAt: performance.now() });
}

/** Continues an answer that was streaming when the page reloaded. */
async function resume(pending) {
  addMessage('user', pending.question ?? '');
  const view = addAnswer(pending.text ?? '');
  setStatus('Resuming the answer…');
  const stream = state.client.resume({ lastEventId: pending.lastEventId });
  await follow(stream, view, { ...pending, resumed: true });
}

/**
 * Reads a chat stream into `view`. While it runs, sessionStorage holds the last event id and the
 * text so far, so a reload can resume where this left off; done, error and Stop clear it.
 */
async function follow(stream, view, turn) {
  state.stream = stream;
  state.stopRequested = false;
  ui.send.disabled = true;
  ui.stop.disabled = false;
  if (!turn.resumed) setStatus('Waiting for the first token…');
  const pending = { question: turn.question, conversationId: turn.conversationId, model: turn.model, text: turn.text ?? '', lastEventId: turn.lastEventId, timeToFirstTokenMs: turn.timeToFirstTokenMs };
  const save = () => sessionStorage.setItem(stored.pending, JSON.stringify(pending));
  const details = { model: turn.model || '', firstToken: turn.timeToFirstTokenMs, usage: '', outcome: '' };
  const render = () => {
    const parts = [];
    if (details.model) parts.push(details.model);
    if (details.firstToken !== undefined) parts.push(`first token ${Math.round(details.firstToken)} ms`);
    if (details.usage) parts.push(details.usage);
    if (details.outcome) parts.push(details.outcome);
    view.details.textContent = parts.join(' · ');
  };
  render();
  let ended = false;
  try {
    for await (const event of stream) {
      if (event.type === 'meta') {
        details.model = event.model;
        pending.lastEventId = event.id;
        save();
        setStatus('Streaming…');
      } else if (event.type === 'delta') {
        const piece = event.text ?? (event.toolCall ? toolCallText(event.toolCall) : '');
        if (piece !== '') {
          if (pending.timeToFirstTokenMs === undefined && turn.startedAt !== undefined) {
            pending.timeToFirstTokenMs = performance.now() - turn.startedAt;
            details.firstToken = pending.timeToFirstTokenMs;
          }
          view.body.append(document.createTextNode(piece));
          pending.text += piece;
        }
        pending.lastEventId = event.id;
        save();
        if (turn.resumed) setStatus('Streaming (resumed)…');
      } else if (event.type === 'usage') {
        details.usage = `tokens: ${event.promptTokens} prompt + ${event.completionTokens} completion = ${event.totalTokens} total${event.estimated ? ' (estimated)' : ''}`;
        pending.lastEventId = event.id;
        save();
      } else if (event.type === 'done') {
        ended = true;
        details.outcome = event.finishReason === 'stop' ? 'done' : `finished: ${event.finishReason}`;
        setStatus('Done.');
      } else if (event.type === 'error') {
        ended = true;
        if (event.code === 'cancelled') {
          details.outcome = 'cancelled';
          setStatus('Stopped: the answer was cancelled.');
        } else {
          details.outcome = `error: ${event.code}`;
          view.item.classList.add('failed');
          showError(event, 'The answer failed');
          setStatus('Failed.');
        }
      }
      render();
    }
    if (!ended) {
      ended = true;
      details.outcome = state.stopRequested ? 'cancelled' : 'ended';
      setStatus(state.stopRequested ? 'Stopped: the answer was cancelled.' : 'The stream ended without a done event.');
      render();
    }
  } catch (error) {
    if (state.leaving) return; // The reload broke the stream; the next page resumes it.
    ended = true;
    view.item.classList.add('failed');
    details.outcome = `error: ${error?.code ?? 'unknown'}`;
    render();
    showError(error, turn.resumed ? 'The answer could not be resumed' : 'The chat failed');
    setStatus('Failed.');
  } finally {
    if (!state.leaving) {
      if (ended) sessionStorage.removeItem(stored.pending);
      view.item.classList.remove('streaming');
      view.body.setAttribute('aria-busy', 'false');
      view.body.normalize();
      state.stream = undefined;
      ui.stop.disabled = true;
      ui.send.disabled = !state.client;
    }
  }
  if (!state.leaving) void refreshConversations();
}

function toolCallText(call) {
  return `${call.name ? `[tool call ${call.name}] ` : ''}${call.argumentsDelta ?? ''}`;
}

// ---- notifications (hub pushes) ----

/** Follows the caller's hub channel over SSE until the key is forgotten; the client reconnects. */
function startNotifications(client) {
  state.hub?.abort();
  const controller = new AbortController();
  state.hub = controller;
  void (async () => {
    ui.hubStatus.textContent = 'connecting…';
    const lastEventId = sessionStorage.getItem(stored.hubLastEventId) ?? undefined;
    try {
      const subscription = client.subscribe({ transport: 'sse', signal: controller.signal, ...(lastEventId ? { lastEventId } : {}) });
      controller.signal.addEventListener('abort', () => subscription.close());
      ui.hubStatus.textContent = 'listening';
      for await (const push of subscription) {
        sessionStorage.setItem(stored.hubLastEventId, push.id);
        addNotification(push);
      }
      if (!controller.signal.aborted) ui.hubStatus.textContent = 'closed';
    } catch (error) {
      if (controller.signal.aborted || state.leaving) return;
      ui.hubStatus.textContent = 'offline';
      showError(error, 'Notifications stopped');
    }
  })();
}

function addNotification(push) {
  const item = element('li');
  const data = typeof push.data === 'string' ? push.data : JSON.stringify(push.data, null, 1);
  const time = element('time', undefined, new Date().toLocaleTimeString());
  time.dateTime = new Date().toISOString();
  item.append(element('span', 'event', push.event), time, element('span', 'data', data));
  ui.notificationList.prepend(item);
  while (ui.notificationList.children.length > maxNotifications) ui.notificationList.lastElementChild?.remove();
}

// ---- start ----

const savedKey = localStorage.getItem(stored.apiKey);
if (savedKey) void connect(savedKey);
else showKeyForm();
