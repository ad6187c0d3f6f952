// A request that asks to upgrade to a protocol Sluice does not speak (`Upgrade: h2c`, which Java's
// HttpClient sends by default on plain http://, and `curl --http2`) is served as the HTTP/1.1
// request it also is (docs/architecture.md, "The HTTP front door"), not refused with 404 by the
// WebSocket gateway. Driven with node:http, which sends the headers as written, and with Java's
// HttpClient at its default version.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './support/gateway.js';
import { findTools, runProcess } from './support/guides.js';

const h2c = { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQCAAAAAAIAAAAA' };
let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startGateway({
    providers: { demo: { type: 'mock', chunkCount: 5, delayMs: 5 } },
    models: { 'sluice-demo': { provider: 'demo' } },
  });
});
afterAll(async () => {
  await gateway?.close();
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on its own connection, with exactly these headers. */
function send(method: string, path: string, headers: Record<string, string | number>, body?: string | Buffer[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, gateway.url);
    const outgoing = httpRequest({ host: url.hostname, port: url.port, method, path: url.pathname, headers, agent: false });
    outgoing.on('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (part: string) => (text += part));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
    });
    outgoing.on('upgrade', (response) => reject(new Error(`switched protocols: ${String(response.statusCode)}`)));
    outgoing.on('error', reject);
    if (!Array.isArray(body)) {
      outgoing.end(body);
      return;
    }
    // The parts some ms apart, so the later ones reach Sluice after it took the request.
    const [first, ...rest] = body;
    outgoing.write(first ?? Buffer.alloc(0));
    const next = (): void => {
      const part = rest.shift();
      if (part === undefined) outgoing.end();
      else setTimeout(() => (outgoing.write(part), next()), 30);
    };
    next();
  });
}

describe('a request with Upgrade: h2c', () => {
  it('streams a chat completion over HTTP/1.1, whole, and closes the connection after it', async () => {
    const body = JSON.stringify({ model: 'sluice-demo', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const answer = await send('POST', '/v1/chat/completions', { ...h2c, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, body);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(answer.headers['connection']).toBe('close');
    expect(answer.body).toContain('"content":');
    expect(answer.body.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('answers a non-streamed request, a body sent in several writes included, and a GET without a body', async () => {
    const body = JSON.stringify({ model: 'sluice-demo', messages: [{ role: 'user', content: '你好'.repeat(200) }] });
    const bytes = Buffer.from(body);
    const cut = bytes.indexOf(Buffer.from('你')) + 1;
    // Cut inside a character: the body is bytes until the route decodes it whole.
    const answer = await send('POST', '/v1/chat/completions', { ...h2c, 'content-type': 'application/json', 'content-length': bytes.length }, [bytes.subarray(0, cut), bytes.subarray(cut)]);
    expect(answer.status).toBe(200);
    expect((JSON.parse(answer.body) as { object: string }).object).toBe('chat.completion');
    const health = await send('GET', '/healthz', h2c);
    expect(health.status).toBe(200);
  });

  it('refuses a chunked body with 400 naming the header, and still gives a WebSocket upgrade elsewhere its 404', async () => {
    const chunked = await send('POST', '/v1/chat/completions', { ...h2c, 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, '{"model":"sluice-demo"}');
    expect(chunked.status).toBe(400);
    expect(JSON.parse(chunked.body)).toMatchObject({ error: { param: 'transfer-encoding' } });
    const websocket = await send('GET', '/v1/models', { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' });
    expect(websocket.status).toBe(404);
  });
});

const java = findTools().java;
/** Without a JDK: skipped here, saying why; on CI it runs and fails naming the package. */
const javaMissing = java.command === undefined && !process.env['CI'];
if (javaMissing) console.warn(`ignored-upgrade.test.ts: skipping the Java HttpClient test: ${java.missing} (apt-get install ${java.debianPackage}; on CI this fails)`);

describe.skipIf(javaMissing)("Java's HttpClient at its default version (HTTP/2, so h2c on http://)", () => {
  it('gets the answer over HTTP/1.1', async () => {
    if (java.command === undefined) throw new Error(`${java.missing}: install the Debian package ${java.debianPackage} (.ci/run does)`);
    const directory = mkdtempSync(join(tmpdir(), 'sluice-h2c-java-'));
    try {
      const source = join(directory, 'Ask.java');
      writeFileSync(
        source,
        `import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Ask {
  public static void main(String[] args) throws Exception {
    HttpClient client = HttpClient.newHttpClient(); // version HTTP_2: plain http:// sends Upgrade: h2c
    HttpRequest request = HttpRequest.newBuilder(URI.create(System.getenv("SLUICE_URL") + "/v1/chat/completions"))
        .header("content-type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString("{\\"model\\":\\"sluice-demo\\",\\"messages\\":[{\\"role\\":\\"user\\",\\"content\\":\\"hi\\"}]}"))
        .build();
    HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
    System.out.println(response.statusCode() + " " + response.version() + " " + response.body());
  }
}
`,
      );
      const result = await runProcess(java.command, ['--source', '11', source], { env: { SLUICE_URL: gateway.url }, cwd: directory, timeoutMs: 60_000 });
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(/^200 HTTP_1_1 \{.*"object":"chat\.completion"/);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  }, 70_000);
});
