/**
 * The recent failures: the newest FAILED copies the service lists when a fresh watch starts, merged with the
 * failures the watch brings afterwards. Either may arrive first, so both go through one map by copy id.
 */
import { ConnectError } from "@connectrpc/connect";
import { CopyState, type Copy } from "./gen/modelcopy/v1/modelcopy_pb";
import { millisOf } from "./format";
import type { ModelCopyClient } from "./rpc";
import { describe } from "./watcher";

const LISTED = 20;
const KEPT = 50;
const LIST_TIMEOUT_MS = 15_000;

export class FailureBook {
  private readonly byId = new Map<string, Copy>();
  // A list answered after a newer reload started belongs to the old one and is dropped.
  private generation = 0;

  /** Why the list may be incomplete ("" when it is not): shown beside the table. */
  note = "";

  constructor(private readonly changed: () => void) {}

  /** Forgets everything and asks the service for its latest failures. */
  reload(client: ModelCopyClient, signal: AbortSignal): void {
    const generation = ++this.generation;
    this.byId.clear();
    this.note = "loading earlier failures…";
    this.changed();
    client
      .listCopies({ filter: { states: [CopyState.FAILED] }, pageSize: LISTED }, { signal, timeoutMs: LIST_TIMEOUT_MS })
      .then(
        (response) => {
          if (generation !== this.generation) return;
          for (const copy of response.copies) this.add(copy, false);
          this.note = "";
          this.changed();
        },
        (thrown: unknown) => {
          if (generation !== this.generation || signal.aborted) return;
          this.note = `could not list earlier failures: ${describe(ConnectError.from(thrown))}`;
          this.changed();
        },
      );
  }

  add(copy: Copy, notify = true): void {
    this.byId.set(copy.copyId, copy);
    if (this.byId.size > KEPT) {
      const oldest = this.newestFirst().slice(KEPT);
      for (const gone of oldest) this.byId.delete(gone.copyId);
    }
    if (notify) this.changed();
  }

  newestFirst(): Copy[] {
    return [...this.byId.values()].sort((a, b) => failedAt(b) - failedAt(a));
  }
}

function failedAt(copy: Copy): number {
  return millisOf(copy.completedAt ?? copy.updatedAt);
}
