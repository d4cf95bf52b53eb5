/**
 * Keeps one WatchCopy stream of every copy the caller may see open for as long as the page wants it.
 *
 * The first stream starts from the current state (a snapshot). When a stream ends or fails for a reason that may
 * pass, the next one resumes after the last sequence received, so the server sends every change missed in between,
 * in order, with none twice; the page never has to guess what it lost. If the server no longer holds that history
 * (OUT_OF_RANGE), the page starts over from a snapshot. A refusal (bad credentials, not allowed, a request the
 * server rejects) will not pass by retrying, so it stops and says why.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { CopyEvent } from "./gen/modelcopy/v1/modelcopy_pb";
import type { ModelCopyClient } from "./rpc";

export type WatchStatus =
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "reconnecting"; reason: string; retryInMs: number }
  | { kind: "error"; message: string };

export interface WatchHandlers {
  status(status: WatchStatus): void;
  /** A stream from a snapshot opened: whatever the page held before may be stale and is to be dropped. */
  fresh(): void;
  event(event: CopyEvent): void;
}

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5_000;

// The codes that say "not now" rather than "no": the network, a restarting or overloaded server.
const RETRYABLE = new Set<Code>([
  Code.Unavailable,
  Code.Aborted,
  Code.ResourceExhausted,
  Code.Internal,
  Code.Unknown,
  Code.DeadlineExceeded,
]);

/** Runs until `signal` aborts or the service refuses the watch; never throws. */
export async function watchEverything(
  client: ModelCopyClient,
  on: WatchHandlers,
  signal: AbortSignal,
): Promise<void> {
  let lastSequence: bigint | undefined;
  let delayMs = FIRST_DELAY_MS;
  on.status({ kind: "connecting" });

  while (!signal.aborted) {
    // Undefined until an event came: a watch that never received one has nothing to resume, and a resume from 0
    // would replay the whole history the server holds.
    const resumeAfter = lastSequence;
    let reason: string;
    try {
      const stream = client.watchCopy(
        { target: { case: "filter", value: {} }, afterSequence: resumeAfter },
        {
          signal,
          // The response headers are the only sign that a watch of nothing is open: it sends no message until
          // something changes.
          onHeader: () => {
            delayMs = FIRST_DELAY_MS;
            if (resumeAfter === undefined) on.fresh();
            on.status({ kind: "live" });
          },
        },
      );
      for await (const event of stream) {
        // A watch replaced by a new one says nothing more, even what it had already received.
        if (signal.aborted) return;
        if (lastSequence === undefined || event.sequence > lastSequence) lastSequence = event.sequence;
        on.event(event);
      }
      if (signal.aborted) return;
      reason = "the server ended the stream";
    } catch (thrown) {
      if (signal.aborted) return;
      const error = ConnectError.from(thrown);
      if (error.code === Code.OutOfRange) {
        // The history after lastSequence is pruned: only a new snapshot can tell the current state.
        lastSequence = undefined;
        on.status({ kind: "reconnecting", reason: describe(error), retryInMs: 0 });
        continue;
      }
      if (!RETRYABLE.has(error.code)) {
        on.status({ kind: "error", message: describe(error) });
        return;
      }
      reason = describe(error);
    }
    on.status({ kind: "reconnecting", reason, retryInMs: delayMs });
    await sleep(delayMs, signal);
    delayMs = Math.min(delayMs * 2, MAX_DELAY_MS);
  }
}

/** `PERMISSION_DENIED: no policy permits …`: the code as gRPC spells it, then the server's own message. */
export function describe(error: ConnectError): string {
  const name = (Code[error.code] ?? String(error.code)).replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  return error.rawMessage === "" ? name : `${name}: ${error.rawMessage}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
