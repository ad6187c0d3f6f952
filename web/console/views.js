// The console's views, one component each, every one a client of the admin JSON routes
// (docs/admin-api.md). Values from the gateway are rendered as text; a missing cost is "—".
import { h } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { ApiError } from './api.js';
import { TimeChart } from './charts.js';

const html = htm.bind(h);

// ---- shared pieces ----

/** Loads `load()` now and every `intervalMs` (0: once); `reload()` loads again at once. */
function usePolling(load, dependencies, intervalMs = 0) {
  const [data, setData] = useState(undefined);
  const [error, setError] = useState(undefined);
  const generation = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++generation.current;
    try {
      const value = await load();
      if (mine === generation.current) {
        setData(value);
        setError(undefined);
      }
    } catch (caught) {
      if (mine === generation.current) setError(caught);
    }
  }, dependencies);
  useEffect(() => {
    void reload();
    if (intervalMs <= 0) return undefined;
    const timer = setInterval(() => void reload(), intervalMs);
    return () => clearInterval(timer);
  }, [reload, intervalMs]);
  return { data, error, reload };
}

function ErrorLine({ error, id }) {
  if (!error) return null;
  const text = error instanceof ApiError ? `${error.code}${error.param ? ` (${error.param})` : ''}: ${error.message}` : String(error);
  return html`<p class="error" role="alert" id=${id}>${text}</p>`;
}

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const formatNumber = (value) => (value === null || value === undefined ? '—' : numberFormat.format(value));
const formatMs = (value) => (value === null || value === undefined ? '—' : `${numberFormat.format(value)} ms`);
/** A cost as the API gives it (a decimal string and its currency); "—" for a request with no price. */
const formatCost = (cost, currency) => (typeof cost === 'string' && currency ? `${cost} ${currency}` : '—');
const formatCosts = (costs) => (Array.isArray(costs) && costs.length > 0 ? costs.map((entry) => formatCost(entry.cost, entry.currency)).join(', ') : '—');
const formatTime = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

function Stat({ label, value, id }) {
  return html`<div class="stat" id=${id}><span class="stat-value">${value}</span><span class="stat-label">${label}</span></div>`;
}

/** A table that scrolls sideways on a narrow screen instead of squeezing its columns. */
function Table({ id, columns, rows, empty = 'Nothing yet.', rowKey, onRowClick, selected }) {
  if (!rows || rows.length === 0) return html`<p class="help" id=${id ? `${id}-empty` : undefined}>${empty}</p>`;
  return html`<div class="table-scroll"><table id=${id}>
    <thead><tr>${columns.map((column) => html`<th scope="col">${column.title}</th>`)}</tr></thead>
    <tbody>${rows.map(
      (row, index) => html`<tr key=${rowKey ? rowKey(row) : index} class=${selected !== undefined && rowKey && selected === rowKey(row) ? 'selected' : ''} onClick=${onRowClick ? () => onRowClick(row) : undefined}>
        ${columns.map((column) => html`<td data-column=${column.title}>${column.render ? column.render(row) : String(row[column.key] ?? '—')}</td>`)}
      </tr>`,
    )}</tbody>
  </table></div>`;
}

// ---- Overview ----

function Overview({ api }) {
  const [span, setSpan] = useState('hour');
  const { data, error } = usePolling(() => api.get('/admin/overview', { window: span }), [api, span], 5000);
  const series = data?.series;
  const last = series ? series.requestsPerMinute.at(-1) : undefined;
  const errors = data ? Object.entries(data.errorsByCode).sort((a, b) => b[1] - a[1]) : [];
  return html`<div>
    <div class="toolbar">
      <label for="overview-window">Window</label>
      <select id="overview-window" value=${span} onChange=${(event) => setSpan(event.currentTarget.value)}>
        <option value="hour">Last hour</option>
        <option value="day">Last day</option>
      </select>
    </div>
    <${ErrorLine} error=${error} />
    ${data &&
    html`<div class="stats">
        <${Stat} id="stat-requests-per-minute" label="requests/min (now)" value=${formatNumber(last)} />
        <${Stat} id="stat-requests-today" label="requests today" value=${formatNumber(data.now.requestsToday)} />
        <${Stat} id="stat-active-streams" label="active streams" value=${formatNumber(data.now.activeStreams)} />
        <${Stat} id="stat-hub-connections" label="hub connections" value=${formatNumber(data.now.hubConnections)} />
        <${Stat} id="stat-tokens-today" label="tokens today" value=${formatNumber(data.now.tokensToday)} />
        <${Stat} id="stat-cost-today" label="spend today" value=${formatCosts(data.now.costToday)} />
      </div>
      <div class="charts">
        <${TimeChart} id="chart-requests" title="Requests per minute" x=${series.start} series=${[{ label: 'requests/min', values: series.requestsPerMinute }, { label: 'failures', values: series.failures }]} />
        <${TimeChart} id="chart-ttft" title="Time to first token (ms)" x=${series.start} series=${[{ label: 'p50', values: series.ttftP50Ms }, { label: 'p95', values: series.ttftP95Ms }]} />
        <${TimeChart} id="chart-tokens" title="Tokens" x=${series.start} series=${[{ label: 'tokens', values: series.tokens }]} />
      </div>
      <h3>Errors by code</h3>
      <${Table} id="errors-by-code" columns=${[{ title: 'code', render: (row) => row[0] }, { title: 'count', render: (row) => formatNumber(row[1]) }]} rows=${errors} empty="No errors in this window." />`}
  </div>`;
}

// ---- Keys ----

const limitFields = [
  ['requestsPerMinute', 'Requests/min'],
  ['tokensPerMinute', 'Tokens/min'],
  ['concurrentStreams', 'Concurrent streams'],
  ['dailyTokens', 'Tokens/day'],
  ['monthlyTokens', 'Tokens/month'],
];
const budgetFields = [
  ['dailyBudget', 'Budget/day'],
  ['monthlyBudget', 'Budget/month'],
];

function describeLimits(key) {
  const parts = Object.entries(key.limits ?? {}).map(([name, value]) => `${name} ${value}`);
  for (const [name] of budgetFields) if (typeof key[name] === 'number') parts.push(`${name} ${key[name]}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

function CreateKey({ api, onCreated }) {
  const empty = { userId: '', role: 'user', name: '', models: '', expiresAt: '', limits: {}, budgets: {} };
  const [form, setForm] = useState(empty);
  const [error, setError] = useState(undefined);
  const [created, setCreated] = useState(undefined);
  const [copied, setCopied] = useState('');
  const set = (field) => (event) => setForm({ ...form, [field]: event.currentTarget.value });
  const setIn = (group, field) => (event) => setForm({ ...form, [group]: { ...form[group], [field]: event.currentTarget.value } });

  async function submit(event) {
    event.preventDefault();
    setError(undefined);
    const body = { userId: form.userId.trim(), role: form.role };
    if (form.name.trim() !== '') body.name = form.name.trim();
    const models = form.models.split(',').map((model) => model.trim()).filter(Boolean);
    if (models.length > 0) body.models = models;
    const limits = Object.fromEntries(Object.entries(form.limits).filter(([, value]) => value !== '').map(([name, value]) => [name, Number(value)]));
    if (Object.keys(limits).length > 0) body.limits = limits;
    // Budgets go only when filled in: the gateway's answer says whether it takes them.
    for (const [name, value] of Object.entries(form.budgets)) if (value !== '') body[name] = Number(value);
    if (form.expiresAt !== '') body.expiresAt = form.expiresAt;
    try {
      const answer = await api.post('/admin/keys', body);
      setCreated(answer);
      setCopied('');
      setForm(empty);
      onCreated();
    } catch (caught) {
      setError(caught);
    }
  }

  async function copy() {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied('Copied.');
    } catch {
      setCopied('Copying was refused by the browser: select the key and copy it by hand.');
    }
  }

  return html`<section class="panel" aria-labelledby="create-key-heading">
    <h3 id="create-key-heading">Create a key</h3>
    ${created &&
    html`<div class="secret" id="new-key" role="status">
      <p>The key for <strong>${created.userId}</strong> (${created.role}). It is shown only now: store it before you leave this view.</p>
      <code id="new-key-secret">${created.key}</code>
      <div class="row">
        <button type="button" id="copy-key" onClick=${copy}>Copy</button>
        <button type="button" id="dismiss-key" onClick=${() => setCreated(undefined)}>Done</button>
        <span id="copy-status">${copied}</span>
      </div>
    </div>`}
    <form id="create-key-form" class="grid-form" onSubmit=${submit}>
      <label>User id <input id="key-user" value=${form.userId} onInput=${set('userId')} required /></label>
      <label>Role <select id="key-role" value=${form.role} onChange=${set('role')}><option value="user">user</option><option value="service">service</option><option value="admin">admin</option></select></label>
      <label>Name <input id="key-name" value=${form.name} onInput=${set('name')} /></label>
      <label>Models (comma-separated, globs allowed) <input id="key-models" value=${form.models} onInput=${set('models')} placeholder="every model" /></label>
      <label>Expires <input id="key-expires" type="date" value=${form.expiresAt} onInput=${set('expiresAt')} /></label>
      ${limitFields.map(([name, label]) => html`<label>${label} <input id=${`key-limit-${name}`} type="number" min="1" step="1" value=${form.limits[name] ?? ''} onInput=${setIn('limits', name)} /></label>`)}
      ${budgetFields.map(([name, label]) => html`<label>${label} <input id=${`key-${name}`} type="number" min="0" step="any" value=${form.budgets[name] ?? ''} onInput=${setIn('budgets', name)} /></label>`)}
      <div class="row"><button type="submit" id="create-key">Create key</button></div>
    </form>
    <${ErrorLine} error=${error} id="create-key-error" />
  </section>`;
}

function Keys({ api }) {
  const { data, error, reload } = usePolling(() => api.get('/admin/keys'), [api]);
  const [search, setSearch] = useState('');
  const [actionError, setActionError] = useState(undefined);
  const needle = search.trim().toLowerCase();
  const keys = (data?.data ?? []).filter((key) => needle === '' || [key.id, key.userId, key.name ?? '', key.role].some((field) => field.toLowerCase().includes(needle)));
  async function revoke(key) {
    if (!window.confirm(`Revoke key ${key.id} of ${key.userId}? Requests with it are refused from now on.`)) return;
    try {
      await api.delete(`/admin/keys/${encodeURIComponent(key.id)}`);
      setActionError(undefined);
      await reload();
    } catch (caught) {
      setActionError(caught);
    }
  }
  return html`<div>
    <${CreateKey} api=${api} onCreated=${reload} />
    <section class="panel" aria-labelledby="key-list-heading">
      <h3 id="key-list-heading">Keys</h3>
      <div class="toolbar"><label for="key-search">Search</label><input id="key-search" type="search" value=${search} onInput=${(event) => setSearch(event.currentTarget.value)} placeholder="id, user, name or role" /></div>
      <${ErrorLine} error=${error ?? actionError} />
      <${Table}
        id="key-table"
        rowKey=${(key) => key.id}
        rows=${keys}
        empty="No keys match."
        columns=${[
          { title: 'id', key: 'id' },
          { title: 'user', key: 'userId' },
          { title: 'role', key: 'role' },
          { title: 'name', key: 'name' },
          { title: 'models', render: (key) => (key.models ? key.models.join(', ') : 'all') },
          { title: 'limits', render: describeLimits },
          { title: 'expires', render: (key) => formatTime(key.expiresAt) },
          { title: 'created', render: (key) => formatTime(key.createdAt) },
          { title: 'status', render: (key) => (key.revokedAt ? `revoked ${formatTime(key.revokedAt)}` : 'active') },
          { title: '', render: (key) => (key.revokedAt ? '' : html`<button type="button" class="danger" data-revoke=${key.id} onClick=${() => revoke(key)}>Revoke</button>`) },
        ]}
      />
    </section>
  </div>`;
}

// ---- Usage ----

const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

function Usage({ api }) {
  const [csvError, setCsvError] = useState(undefined);
  const [from, setFrom] = useState(isoDay(Date.now() - 29 * 86_400_000));
  const [to, setTo] = useState(isoDay(Date.now()));
  const [groupBy, setGroupBy] = useState('day');
  const { data, error } = usePolling(() => api.get('/admin/usage', { from, to, groupBy }), [api, from, to, groupBy]);
  const rows = data?.data ?? [];
  const byDay = groupBy === 'day' ? [...rows].sort((a, b) => a.day.localeCompare(b.day)) : [];
  // The gateway writes the CSV (GET /admin/usage?format=csv); it is fetched with the key in a
  // header and saved from a blob, since a plain link could not carry the key.
  async function download() {
    let text;
    try {
      text = await api.getText('/admin/usage', { from, to, groupBy, format: 'csv' });
      setCsvError(undefined);
    } catch (caught) {
      setCsvError(caught);
      return;
    }
    const blob = new Blob([text], { type: 'text/csv' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = `sluice-usage-${groupBy}-${from}-${to}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }
  const label = { day: 'day', model: 'model', user: 'userId', key: 'keyId', deployment: 'deployment' }[groupBy];
  return html`<div>
    <div class="toolbar">
      <label>From <input id="usage-from" type="date" value=${from} onInput=${(event) => setFrom(event.currentTarget.value)} /></label>
      <label>To <input id="usage-to" type="date" value=${to} onInput=${(event) => setTo(event.currentTarget.value)} /></label>
      <label>By <select id="usage-group" value=${groupBy} onChange=${(event) => setGroupBy(event.currentTarget.value)}>
        <option value="day">day</option><option value="model">model</option><option value="user">user</option><option value="key">key</option><option value="deployment">deployment</option>
      </select></label>
      <button type="button" id="usage-csv" onClick=${download} disabled=${rows.length === 0}>Download CSV</button>
    </div>
    <${ErrorLine} error=${error ?? csvError} />
    ${byDay.length > 0 &&
    html`<${TimeChart} id="chart-usage" title="Tokens and requests per day" x=${byDay.map((row) => Date.parse(`${row.day}T00:00:00Z`))} series=${[{ label: 'tokens', values: byDay.map((row) => row.totalTokens) }, { label: 'requests', values: byDay.map((row) => row.requests) }]} />`}
    <${Table}
      id="usage-table"
      rows=${rows}
      empty="No usage in this range."
      columns=${[
        { title: groupBy, render: (row) => row[label] ?? '(none)' },
        { title: 'requests', render: (row) => formatNumber(row.requests) },
        { title: 'prompt', render: (row) => formatNumber(row.promptTokens) },
        { title: 'completion', render: (row) => formatNumber(row.completionTokens) },
        { title: 'total tokens', render: (row) => formatNumber(row.totalTokens) },
        { title: 'estimated', render: (row) => formatNumber(row.estimatedRequests) },
        { title: 'errors', render: (row) => formatNumber(row.errors) },
        { title: 'refused', render: (row) => formatNumber(row.refused) },
        { title: 'cost', render: (row) => formatCost(row.cost, row.currency) },
      ]}
    />
  </div>`;
}

// ---- Requests ----

function Requests({ api, session }) {
  const [filters, setFilters] = useState({ userId: '', model: '', outcome: '', from: '', to: '' });
  const [applied, setApplied] = useState(filters);
  const [selected, setSelected] = useState(undefined);
  const toIso = (local) => (local === '' ? undefined : new Date(local).toISOString());
  const { data, error, reload } = usePolling(
    () => api.get('/admin/requests', { userId: applied.userId, model: applied.model, outcome: applied.outcome, from: toIso(applied.from), to: toIso(applied.to), limit: 100 }),
    [api, applied],
  );
  const set = (field) => (event) => setFilters({ ...filters, [field]: event.currentTarget.value });
  const rows = data?.data ?? [];
  const chosen = rows.find((row) => row.generationId !== null && row.generationId === selected);
  return html`<div>
    <form id="request-filters" class="toolbar" onSubmit=${(event) => {
      event.preventDefault();
      setApplied({ ...filters });
      void reload();
    }}>
      <label>User <input id="filter-user" value=${filters.userId} onInput=${set('userId')} /></label>
      <label>Model <input id="filter-model" value=${filters.model} onInput=${set('model')} /></label>
      <label>Outcome <select id="filter-outcome" value=${filters.outcome} onChange=${set('outcome')}>
        <option value="">any</option><option value="completed">completed</option><option value="cancelled">cancelled</option><option value="error">error</option><option value="refused">refused</option>
      </select></label>
      <label>From <input id="filter-from" type="datetime-local" value=${filters.from} onInput=${set('from')} /></label>
      <label>To <input id="filter-to" type="datetime-local" value=${filters.to} onInput=${set('to')} /></label>
      <button type="submit" id="apply-filters">Apply</button>
    </form>
    <p class="help">${data?.textLogged || session.requestTextLogged ? 'Prompt and answer text are logged (log.requests is on): select a row to read them.' : 'Prompt and answer text are not logged; set log: { requests: true } in the config to keep them.'}</p>
    <${ErrorLine} error=${error} />
    <${Table}
      id="request-table"
      rows=${rows}
      rowKey=${(row) => row.generationId ?? `${row.time}-${row.userId}`}
      selected=${selected}
      onRowClick=${(row) => setSelected(row.generationId ?? undefined)}
      empty="No requests match."
      columns=${[
        { title: 'time', render: (row) => formatTime(row.time) },
        { title: 'user', key: 'userId' },
        { title: 'key', key: 'keyId' },
        { title: 'route', key: 'route' },
        { title: 'model', key: 'model' },
        { title: 'deployment', key: 'deployment' },
        { title: 'outcome', key: 'outcome' },
        { title: 'error', key: 'errorCode' },
        { title: 'TTFT', render: (row) => formatMs(row.timeToFirstTokenMs) },
        { title: 'duration', render: (row) => formatMs(row.durationMs) },
        { title: 'tokens', render: (row) => `${formatNumber(row.totalTokens)}${row.estimated ? ' (est.)' : ''}` },
        { title: 'cost', render: (row) => formatCost(row.cost, row.currency) },
      ]}
    />
    ${chosen &&
    chosen.prompt !== undefined &&
    html`<section class="panel" id="request-text" aria-label="Request text">
      <h3>Prompt</h3><pre id="request-prompt">${chosen.prompt}</pre>
      <h3>Answer</h3><pre id="request-answer">${chosen.answer}</pre>
    </section>`}
  </div>`;
}

// ---- Live ----

function Live({ api }) {
  const connections = usePolling(() => api.get('/admin/connections'), [api], 3000);
  const generations = usePolling(() => api.get('/admin/generations'), [api], 3000);
  const [notice, setNotice] = useState('');
  const [actionError, setActionError] = useState(undefined);
  const [push, setPush] = useState({ target: 'user', users: '', event: 'notice', data: '{"text": "Hello"}' });

  async function act(work) {
    try {
      setActionError(undefined);
      setNotice(await work());
      await Promise.all([connections.reload(), generations.reload()]);
    } catch (caught) {
      setActionError(caught);
    }
  }
  const close = (userId) => act(async () => `Closed ${(await api.delete(`/admin/connections/${encodeURIComponent(userId)}`)).closed} connection(s) of ${userId}.`);
  const cancel = (id) => act(async () => ((await api.post(`/admin/generations/${encodeURIComponent(id)}/cancel`)).cancelled ? `Cancelled ${id}.` : `${id} had already finished.`));
  async function sendPush(event) {
    event.preventDefault();
    let data;
    try {
      data = JSON.parse(push.data);
    } catch {
      setActionError(new ApiError(0, 'invalid_json', 'data: is not JSON (a string needs quotes: "hello").', 'data'));
      return;
    }
    const to = push.target === 'all' ? { all: true } : { users: push.users.split(',').map((user) => user.trim()).filter(Boolean) };
    await act(async () => {
      const answer = await api.post('/admin/push', { to, event: push.event, data });
      return `Push ${answer.id} reached ${answer.connections} connection(s).`;
    });
  }
  const set = (field) => (event) => setPush({ ...push, [field]: event.currentTarget.value });
  return html`<div>
    ${notice && html`<p class="notice" id="live-notice" role="status">${notice}</p>`}
    <${ErrorLine} error=${actionError} id="live-error" />
    <section class="panel" aria-labelledby="connections-heading">
      <h3 id="connections-heading">Hub connections${connections.data ? ` (${connections.data.total})` : ''}</h3>
      <${ErrorLine} error=${connections.error} />
      ${(connections.data?.nodes ?? []).map(
        (node) => html`<div class="node" key=${node.node}>
          <h4>Node ${node.node} <span class="muted">${node.total} connection(s)</span></h4>
          <${Table}
            id=${`connections-${node.node}`}
            rows=${node.users}
            rowKey=${(row) => row.userId}
            columns=${[
              { title: 'user', key: 'userId' },
              { title: 'connections', key: 'connections' },
              { title: '', render: (row) => html`<button type="button" class="danger" data-close-user=${row.userId} onClick=${() => close(row.userId)}>Close connections</button>` },
            ]}
          />
        </div>`,
      )}
      ${connections.data && connections.data.total === 0 && html`<p class="help" id="no-connections">Nobody is connected.</p>`}
    </section>
    <section class="panel" aria-labelledby="push-heading">
      <h3 id="push-heading">Push</h3>
      <form id="push-form" class="grid-form" onSubmit=${sendPush}>
        <label>To <select id="push-target" value=${push.target} onChange=${set('target')}><option value="user">users</option><option value="all">everyone</option></select></label>
        ${push.target === 'user' && html`<label>User ids (comma-separated) <input id="push-users" value=${push.users} onInput=${set('users')} required /></label>`}
        <label>Event <input id="push-event" value=${push.event} onInput=${set('event')} required /></label>
        <label class="wide">Data (JSON) <textarea id="push-data" rows="3" value=${push.data} onInput=${set('data')}></textarea></label>
        <div class="row"><button type="submit" id="push-send">Send push</button></div>
      </form>
    </section>
    <section class="panel" aria-labelledby="generations-heading">
      <h3 id="generations-heading">Running generations${generations.data ? ` on ${generations.data.node}` : ''}</h3>
      <${ErrorLine} error=${generations.error} />
      <${Table}
        id="generation-table"
        rows=${generations.data?.data ?? []}
        rowKey=${(row) => row.id}
        empty="No generation is running on this node."
        columns=${[
          { title: 'id', key: 'id' },
          { title: 'user', key: 'userId' },
          { title: 'model', key: 'model' },
          { title: 'route', key: 'route' },
          { title: 'age', render: (row) => formatMs(row.ageMs) },
          { title: 'answering', render: (row) => (row.committed ? 'yes' : 'not yet') },
          { title: '', render: (row) => html`<button type="button" class="danger" data-cancel=${row.id} onClick=${() => cancel(row.id)}>Cancel</button>` },
        ]}
      />
    </section>
  </div>`;
}

// ---- Providers ----

/** `{ upstream_timeout: 3, … }` as "upstream_timeout 3, …"; "none" when empty. */
const formatErrors = (errors) => {
  const entries = Object.entries(errors ?? {}).sort((a, b) => b[1] - a[1]);
  return entries.length > 0 ? entries.map(([code, count]) => `${code} ${formatNumber(count)}`).join(', ') : 'none';
};
const formatPercentiles = (figures) => (figures && (figures.p50 !== null || figures.p95 !== null) ? `${formatMs(figures.p50)} / ${formatMs(figures.p95)}` : '—');

/** One pool deployment from GET /admin/deployments: its health, recent figures and keys, each with Reset. */
function Deployment({ deployment, reset }) {
  return html`<section class=${`panel deployment state-${deployment.state}`} data-deployment=${deployment.id} aria-label=${`Deployment ${deployment.id}`}>
    <h4>${deployment.id} <span class="badge">${deployment.state}</span></h4>
    <dl class="facts">
      <dt>pools</dt><dd data-field="pools">${deployment.pools.join(', ')}</dd>
      <dt>cooling until</dt><dd data-field="cooldownUntil">${formatTime(deployment.cooldownUntil)}</dd>
      <dt>failures in a row</dt><dd data-field="consecutiveFailures">${formatNumber(deployment.consecutiveFailures)}</dd>
      <dt>last error</dt><dd data-field="lastErrorCode">${deployment.lastErrorCode ?? '—'}</dd>
      <dt>in flight</dt><dd data-field="inFlight">${formatNumber(deployment.inFlight)}</dd>
      <dt>requests (5 min)</dt><dd data-field="requests">${formatNumber(deployment.requests)}</dd>
      <dt>errors (5 min)</dt><dd data-field="errors">${formatErrors(deployment.errors)}</dd>
      <dt>latency p50 / p95</dt><dd data-field="latencyMs">${formatPercentiles(deployment.latencyMs)}</dd>
      <dt>TTFT p50 / p95</dt><dd data-field="timeToFirstTokenMs">${formatPercentiles(deployment.timeToFirstTokenMs)}</dd>
    </dl>
    <div class="row"><button type="button" data-reset=${deployment.id} onClick=${() => reset(deployment.id)}>Reset ${deployment.id}</button></div>
    <${Table}
      rows=${deployment.keys}
      rowKey=${(key) => key.id}
      columns=${[
        { title: 'key', key: 'id' },
        { title: 'state', key: 'state' },
        { title: 'disabled', render: (key) => (key.state === 'disabled' ? 'yes: reset after rotating its secret' : 'no') },
        { title: 'cooling until', render: (key) => formatTime(key.cooldownUntil) },
        { title: 'last error', render: (key) => key.lastErrorCode ?? '—' },
        { title: 'requests', render: (key) => formatNumber(key.requests) },
        { title: 'errors', render: (key) => formatErrors(key.errors) },
        { title: '', render: (key) => html`<button type="button" data-reset=${key.id} onClick=${() => reset(key.id)}>Reset</button>` },
      ]}
    />
  </section>`;
}

function Providers({ api }) {
  const { data, error, reload } = usePolling(() => api.get('/admin/providers'), [api], 10_000);
  const deployments = usePolling(() => api.get('/admin/deployments'), [api], 5000);
  const [notice, setNotice] = useState('');
  const [actionError, setActionError] = useState(undefined);
  async function reset(id) {
    try {
      setActionError(undefined);
      await api.post(`/admin/deployments/${encodeURIComponent(id)}/reset`);
      setNotice(`Reset ${id}: its failures are forgotten and it is tried again.`);
      await Promise.all([deployments.reload(), reload()]);
    } catch (caught) {
      setNotice('');
      setActionError(caught);
    }
  }
  return html`<div>
    <${ErrorLine} error=${error} />
    <div class="cards">
      ${(data?.data ?? []).map(
        (provider) => html`<section class=${`panel provider status-${provider.status}`} key=${provider.id} id=${`provider-${provider.id}`}>
          <h3>${provider.id} <span class="muted">${provider.type}</span> <span class="badge">${provider.status}</span></h3>
          <p>Last hour: ${formatNumber(provider.lastHour.requests)} requests, ${formatNumber(provider.lastHour.errors)} errors (${formatNumber(provider.lastHour.errorRate * 100)} %), TTFT ${formatMs(provider.lastHour.meanTimeToFirstTokenMs)}, duration ${formatMs(provider.lastHour.meanDurationMs)}${provider.lastHour.lastErrorCode ? `; last error ${provider.lastHour.lastErrorCode} at ${formatTime(provider.lastHour.lastErrorAt)}` : ''}.</p>
          <${Table}
            rows=${provider.targets}
            rowKey=${(target) => target.id}
            empty="No model alias routes to this provider."
            columns=${[
              { title: 'target', key: 'id' },
              { title: 'aliases', render: (target) => target.aliases.join(', ') },
              { title: 'state', key: 'state' },
              { title: 'cooling until', render: (target) => formatTime(target.coolingUntil) },
              { title: 'failures', key: 'consecutiveFailures' },
              { title: 'last error', key: 'lastErrorCode' },
              { title: 'in flight', key: 'inFlight' },
            ]}
          />
        </section>`,
      )}
    </div>
    <section id="deployments" aria-labelledby="deployments-heading">
      <h3 id="deployments-heading">Pool deployments</h3>
      <p class="help">Every deployment of every model alias, with its keys by id (never the secret). State, cooldown and in flight are the cluster's; requests, errors and percentiles are what this node saw in the last 5 minutes. Reset forgets a deployment's or a key's failures: a key the provider refused stays disabled until then.</p>
      ${notice && html`<p class="notice" id="deployments-notice" role="status">${notice}</p>`}
      <${ErrorLine} error=${deployments.error ?? actionError} id="deployments-error" />
      ${deployments.data && deployments.data.data.length === 0 && html`<p class="help" id="no-deployments">No model alias is configured.</p>`}
      <div class="cards">${(deployments.data?.data ?? []).map((deployment) => html`<${Deployment} key=${deployment.id} deployment=${deployment} reset=${reset} />`)}</div>
    </section>
  </div>`;
}

export const views = [
  { id: 'overview', title: 'Overview', component: Overview },
  { id: 'keys', title: 'Keys', component: Keys },
  { id: 'usage', title: 'Usage', component: Usage },
  { id: 'requests', title: 'Requests', component: Requests },
  { id: 'live', title: 'Live', component: Live },
  { id: 'providers', title: 'Providers', component: Providers },
];
