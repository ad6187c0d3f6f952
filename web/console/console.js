// The operator console: sign in with an admin key, then the views (docs/console.md). Plain ES
// modules on preact + htm, no build step. Everything the gateway returns is rendered as text by
// preact (text nodes and properties); the page's CSP requires Trusted Types, so an HTML string
// could not be rendered even by mistake.
import { h, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { ApiError, createApi } from './api.js';
import { views } from './views.js';

const html = htm.bind(h);

/** Where the admin key is kept: this browser's local storage, as the playground keeps its key. */
const storedKey = 'sluice.console.adminKey';

function currentView() {
  const name = window.location.hash.replace(/^#/, '');
  return views.some((view) => view.id === name) ? name : 'overview';
}

function SignIn({ onSignedIn, problem }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(problem ?? '');
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    const adminKey = key.trim();
    if (adminKey === '') return;
    setBusy(true);
    setError('');
    try {
      const api = createApi(adminKey);
      const session = await api.get('/admin/session');
      localStorage.setItem(storedKey, adminKey);
      setKey('');
      onSignedIn(api, session);
    } catch (caught) {
      setError(refusal(caught));
    } finally {
      setBusy(false);
    }
  }
  return html`<main class="sign-in">
    <h1>Sluice console</h1>
    <form id="sign-in-form" onSubmit=${submit}>
      <label for="admin-key">Admin key</label>
      <input id="admin-key" type="password" autocomplete="off" spellcheck="false" placeholder="sk-sluice-…" value=${key} onInput=${(event) => setKey(event.currentTarget.value)} required />
      <button type="submit" disabled=${busy}>Sign in</button>
    </form>
    ${error && html`<p id="sign-in-error" class="error" role="alert">${error}</p>`}
    <p class="help">Use an admin key (the one printed at the gateway's first start, or <code>npx sluice keys create --role admin</code>). It stays in this browser's local storage and is sent only to this gateway, in a header.</p>
  </main>`;
}

/** What to tell an operator whose key was refused. */
function refusal(error) {
  if (error instanceof ApiError) {
    if (error.code === 'forbidden') return `This key cannot open the console: it is not an admin key. ${error.message}`;
    if (error.status === 401) return `The key was not accepted (${error.code}): ${error.message}`;
    return `${error.code}: ${error.message}`;
  }
  return String(error);
}

function Console({ api, session, onSignOut }) {
  const [view, setView] = useState(currentView());
  useEffect(() => {
    const follow = () => setView(currentView());
    window.addEventListener('hashchange', follow);
    return () => window.removeEventListener('hashchange', follow);
  }, []);
  const active = views.find((candidate) => candidate.id === view) ?? views[0];
  const View = active.component;
  return html`<div class="shell">
    <header class="bar">
      <h1>Sluice console</h1>
      <nav aria-label="Views">
        ${views.map((candidate) => html`<a href=${`#${candidate.id}`} id=${`nav-${candidate.id}`} class=${candidate.id === view ? 'current' : ''} aria-current=${candidate.id === view ? 'page' : undefined}>${candidate.title}</a>`)}
      </nav>
      <div class="who">
        <span id="signed-in-as">${session.userId} (${session.role})</span>
        <button id="sign-out" type="button" onClick=${onSignOut}>Sign out</button>
      </div>
    </header>
    <main id=${`view-${active.id}`} class="view">
      <h2>${active.title}</h2>
      <${View} api=${api} session=${session} />
    </main>
  </div>`;
}

function App() {
  const [state, setState] = useState({ phase: 'checking' });
  useEffect(() => {
    const adminKey = localStorage.getItem(storedKey);
    if (!adminKey) {
      setState({ phase: 'signed-out' });
      return;
    }
    const api = createApi(adminKey);
    api
      .get('/admin/session')
      .then((session) => setState({ phase: 'signed-in', api, session }))
      .catch((error) => {
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) localStorage.removeItem(storedKey);
        setState({ phase: 'signed-out', problem: refusal(error) });
      });
  }, []);
  if (state.phase === 'checking') return html`<p class="loading">Checking the saved key…</p>`;
  if (state.phase === 'signed-out') return html`<${SignIn} problem=${state.problem} onSignedIn=${(api, session) => setState({ phase: 'signed-in', api, session })} />`;
  return html`<${Console}
    api=${state.api}
    session=${state.session}
    onSignOut=${() => {
      localStorage.removeItem(storedKey);
      setState({ phase: 'signed-out' });
    }}
  />`;
}

render(html`<${App} />`, document.getElementById('app'));
