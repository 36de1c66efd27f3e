/**
 * stderr for the log. On Windows, Deno writes a pipe or a console
 * synchronously (denoland/deno#26035): a stderr nobody reads, or a console
 * whose text is being selected, would stop the event loop, and echoing with
 * it. There the log's lines are written from a worker thread, so that only
 * the worker waits and the log's bounded queue drops (and counts) lines.
 * Elsewhere Deno's writes do not block, and stderr is written directly.
 *
 * @module
 */

import type { Writer } from "./net.ts";

/** A stderr the log can write to and, at the end, let go of. */
export interface StderrOutput extends Writer {
  /** Lets go of what writing needed (the worker); stderr itself stays open. */
  close(): void;
}

/** The worker's whole program: write what it is sent, answer with the count or the error. */
const WRITER = `self.onmessage = async (event) => {
  try {
    self.postMessage({ written: await Deno.stderr.write(event.data) });
  } catch (error) {
    self.postMessage({ error: String(error?.message ?? error) });
  }
};`;

/** stderr for this OS: through a worker on Windows, directly elsewhere. */
export function stderrOutput(): StderrOutput {
  if (Deno.build.os !== "windows") {
    return { write: (data) => Deno.stderr.write(data), close() {} };
  }
  return new WorkerStderr();
}

/** Writes stderr from a worker thread, one write at a time, in order. */
class WorkerStderr implements StderrOutput {
  #worker?: Worker;
  #replies: PromiseWithResolvers<number>[] = [];

  write(data: Uint8Array): Promise<number> {
    const reply = Promise.withResolvers<number>();
    this.#replies.push(reply);
    try {
      this.#worker ??= this.#start();
      this.#worker.postMessage(data);
    } catch (error) {
      this.#replies.pop();
      reply.reject(error);
    }
    return reply.promise;
  }

  close(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    for (const reply of this.#replies.splice(0)) reply.reject(new Error("stderr closed"));
  }

  #start(): Worker {
    // A blob: module needs no read permission, unlike a file of echod's.
    const url = URL.createObjectURL(new Blob([WRITER], { type: "text/javascript" }));
    const worker = new Worker(url, { type: "module" });
    worker.onmessage = (event: MessageEvent<{ written?: number; error?: string }>) => {
      const reply = this.#replies.shift();
      if (event.data.error !== undefined) reply?.reject(new Error(event.data.error));
      else reply?.resolve(event.data.written!);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.close();
    };
    return worker;
  }
}
