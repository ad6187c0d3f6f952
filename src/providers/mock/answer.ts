// The demo model's answer and how it is cut into deltas.

const demoText =
  'Hello from Sluice, the streaming gateway 👋 这是内置的演示模型，没有任何网络调用。' +
  'Each piece of this answer arrives as its own event, multi-byte characters included 🚀✨. ' +
  'Configure a real provider in sluice.yaml to talk to an actual model.';

/** The deterministic answer: it echoes the question (shortened) so a reader can tell answers apart. */
export function demoAnswer(question: string): string {
  const shortened = [...question.trim()].slice(0, 200).join('');
  return shortened ? `You asked: “${shortened}”. ${demoText}` : demoText;
}

/** Cuts text into `count` pieces of roughly equal length, never inside a code point. */
export function splitIntoChunks(text: string, count: number): string[] {
  const codePoints = [...text];
  const size = Math.max(1, Math.ceil(codePoints.length / count));
  const pieces: string[] = [];
  for (let index = 0; index < codePoints.length; index += size) pieces.push(codePoints.slice(index, index + size).join(''));
  return pieces;
}
