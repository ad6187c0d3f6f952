// `sluice chat "question"`: the terminal client. It streams the answer to stdout as it arrives
// through the client library (so it resumes a dropped stream like any other client): a spinner on
// stderr until the first token when stdout is a terminal, plain text when piped, one JSON event per
// line with --json. A failure prints its code and message on stderr and exits 1; a reader that
// closes stdout early (`| head`) ends it quietly with 0 and cancels the generation.
import { parseArgs } from 'node:util';
import { createSluiceClient, SluiceClientError, type ChatEvent } from '../client/index.js';

export const chatHelp = `Usage:
  sluice chat "question" [--model M] [--url URL] [--key KEY] [--conversation ID] [--system TEXT] [--json]
  echo "question" | sluice chat [options]
The key comes from --key or SLUICE_KEY, the gateway from --url or SLUICE_URL (default http://127.0.0.1:8080).
--json prints every event as one JSON object per line. Ctrl-C cancels the generation.`;

export interface ChatIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: Readonly<Record<string, string | undefined>>;
}

const spinnerFrames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** Runs the command; resolves to the exit code. */
export async function chatCommand(args: string[], io: ChatIo, signal?: AbortSignal): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        model: { type: 'string', short: 'm' },
        url: { type: 'string' },
        key: { type: 'string' },
        conversation: { type: 'string' },
        system: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    io.stderr.write(`sluice chat: ${(error as Error).message}\n${chatHelp}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    io.stdout.write(`${chatHelp}\n`);
    return 0;
  }
  let question = positionals.join(' ');
  if ((question === '' || question === '-') && io.stdin.isTTY !== true) question = (await readAll(io.stdin)).trim();
  if (question === '') {
    io.stderr.write(`sluice chat: ask something, e.g. sluice chat "What is SSE?"\n${chatHelp}\n`);
    return 2;
  }
  const apiKey = values.key ?? io.env['SLUICE_KEY'];
  const baseUrl = (values.url ?? io.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const client = createSluiceClient({ baseUrl, ...(apiKey !== undefined && apiKey !== '' ? { apiKey } : {}) });
  const stream = client.chat({
    message: question,
    ...(values.model !== undefined ? { model: values.model } : {}),
    ...(values.conversation !== undefined ? { conversationId: values.conversation } : {}),
    ...(values.system !== undefined ? { system: values.system } : {}),
  });
  const onAbort = () => void stream.cancel().catch(() => undefined);
  signal?.addEventListener('abort', onAbort, { once: true });

  // The reader of stdout may go away: `sluice chat --json | head -3` closes the pipe after three
  // lines and the next write fails with EPIPE (Node ignores SIGPIPE, so the error arrives as an
  // 'error' event, which unhandled crashed the command with a stack trace). Then nobody reads the
  // answer, so the generation is cancelled (native-API generations outlive their connection, so
  // closing it would not stop the upstream call or its billing) and the command ends.
  let outputError: NodeJS.ErrnoException | undefined;
  let cancelling: Promise<void> | undefined;
  const onOutputError = (error: NodeJS.ErrnoException) => {
    if (outputError !== undefined) return;
    outputError = error;
    cancelling = stream.cancel().catch(() => undefined);
  };
  // Stays attached after the command returns: a write already queued may still fail.
  io.stdout.on('error', onOutputError);
  // stderr closed too (`2>&1 | head`): its messages have nowhere to go, which is no reason to crash.
  io.stderr.on('error', () => undefined);
  const write = (text: string) => {
    if (outputError === undefined) io.stdout.write(text);
  };

  const json = values.json === true;
  const spinner = !json && io.stdout.isTTY === true && io.stderr.isTTY === true ? startSpinner(io.stderr) : undefined;
  let failure: ChatEvent | undefined;
  let usage: ChatEvent | undefined;
  let endedWithNewline = true;
  try {
    for await (const event of stream) {
      // Leaving the loop releases the connection; the cancel request is already on its way.
      if (outputError !== undefined) break;
      if (json) {
        write(`${JSON.stringify(event)}\n`);
        if (event.type === 'error') failure = event;
        continue;
      }
      if (event.type === 'delta' && event.text !== undefined && event.text !== '') {
        spinner?.stop();
        write(event.text);
        endedWithNewline = event.text.endsWith('\n');
      } else if (event.type === 'usage') usage = event;
      else if (event.type === 'error') failure = event;
    }
  } catch (error) {
    spinner?.stop();
    if (outputError === undefined) {
      if (!endedWithNewline) write('\n');
      io.stderr.write(`sluice chat: ${describe(error, baseUrl)}\n`);
      return 1;
    }
  } finally {
    spinner?.stop();
    signal?.removeEventListener('abort', onAbort);
  }
  if (outputError !== undefined) {
    await cancelling;
    // EPIPE is the reader's choice, as with any Unix tool in a pipeline: exit 0. Anything else (a
    // full disk) is a failure to report.
    if (outputError.code === 'EPIPE') return 0;
    io.stderr.write(`sluice chat: cannot write the answer: ${outputError.message}\n`);
    return 1;
  }
  if (!json && !endedWithNewline) write('\n');
  if (failure?.type === 'error') {
    if (!json) io.stderr.write(`sluice chat: ${failure.code}: ${failure.message}\n`);
    return signal?.aborted === true ? 130 : 1;
  }
  if (!json && usage?.type === 'usage' && io.stderr.isTTY === true) {
    io.stderr.write(`\x1b[2m${usage.totalTokens.toString()} tokens (${usage.promptTokens.toString()} in, ${usage.completionTokens.toString()} out${usage.estimated ? ', estimated' : ''})\x1b[0m\n`);
  }
  return 0;
}

function describe(error: unknown, baseUrl: string): string {
  if (error instanceof SluiceClientError && error.code === 'network_error') return `cannot connect to ${baseUrl} (is sluice serve running? --url or SLUICE_URL chooses the gateway): ${error.message}`;
  if (error instanceof SluiceClientError) return `${error.status !== undefined ? `${error.status.toString()} ` : ''}${error.code}: ${error.message}`;
  const cause = (error as { cause?: { code?: string } }).cause;
  if (cause?.code === 'ECONNREFUSED') return `cannot connect to ${baseUrl} (is sluice serve running? --url or SLUICE_URL chooses the gateway)`;
  return error instanceof Error ? error.message : String(error);
}

/** A spinner on stderr until stop(); it erases itself. */
function startSpinner(stderr: NodeJS.WritableStream): { stop(): void } {
  let frame = 0;
  let stopped = false;
  const draw = () => stderr.write(`\r${spinnerFrames[frame++ % spinnerFrames.length] ?? ''} waiting for the first token…`);
  draw();
  const timer = setInterval(draw, 80);
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      stderr.write('\r\x1b[2K');
    },
  };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer | string>) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
