/** Asking the person at the terminal for one secret value, one line, not echoed. */
import { createInterface } from "node:readline/promises";
import { Writable } from "node:stream";

export async function promptSecret(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, encoding, done) {
      if (!muted) process.stdout.write(chunk, encoding);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    process.stdout.write(question);
    muted = true;
    return (await rl.question("")).trim();
  } finally {
    muted = false;
    process.stdout.write("\n");
    rl.close();
  }
}
