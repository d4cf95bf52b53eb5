/**
 * What the watch has told the page about copies, with no DOM: the live set, from which the per-account counts come,
 * and the most recent copies seen, each with every state the page has shown for it.
 *
 * Counts are kept up to date change by change (the live set may be thousands of queued copies; a change touches
 * one). A copy leaves the live set when it ends, but stays among the recent ones so its end can be seen.
 */
import type { Copy, CopyEvent } from "./gen/modelcopy/v1/modelcopy_pb";
import { accountOf, isLive, millisOf, stateName } from "./format";
import { CopyState } from "./gen/modelcopy/v1/modelcopy_pb";

export const RECENT_LIMIT = 100;

export interface SeenCopy {
  copy: Copy;
  /** State names in the order shown, without consecutive repeats. */
  history: string[];
  /** When its latest change happened (the event's time; for a snapshot, the copy's last update). */
  changedAtMs: number;
  /** Arrival order: breaks ties between changes stamped with the same instant. */
  arrival: number;
}

export interface AccountLoad {
  queued: number;
  inProgress: number;
}

export interface Applied {
  seen: SeenCopy;
  /** Copies pushed out of the recent ones by this change. */
  evicted: string[];
  /** The destination accounts whose counts this change touched. */
  accounts: string[];
}

export class CopyBook {
  private readonly live = new Map<string, Copy>();
  private readonly loads = new Map<string, AccountLoad>();
  private readonly recent = new Map<string, SeenCopy>();
  private arrivals = 0;

  clear(): void {
    this.live.clear();
    this.loads.clear();
    this.recent.clear();
  }

  /** Takes in one event of the watch, whose `copy` is given apart because the message's field is optional. */
  apply(event: CopyEvent, copy: Copy): Applied {
    const accounts = this.updateLive(copy);

    const changedAtMs = event.snapshot ? millisOf(copy.updatedAt) : millisOf(event.occurredAt ?? copy.updatedAt);
    const previous = this.recent.get(copy.copyId);
    const history = previous?.history ?? [];
    const state = stateName(copy.state);
    if (history[history.length - 1] !== state) history.push(state);
    const seen: SeenCopy = { copy, history, changedAtMs, arrival: ++this.arrivals };
    this.recent.set(copy.copyId, seen);

    return { seen, evicted: this.evictOldest(), accounts };
  }

  load(account: string): AccountLoad {
    return this.loads.get(account) ?? { queued: 0, inProgress: 0 };
  }

  /** Every account seen since the last clear, including those whose load went back to zero. */
  accounts(): string[] {
    return [...this.loads.keys()].sort();
  }

  private updateLive(copy: Copy): string[] {
    const touched: string[] = [];
    const before = this.live.get(copy.copyId);
    if (before !== undefined) {
      this.count(before, -1);
      touched.push(accountOf(before.destinationProjectArn));
    }
    if (isLive(copy.state)) {
      this.live.set(copy.copyId, copy);
      this.count(copy, +1);
      touched.push(accountOf(copy.destinationProjectArn));
    } else {
      this.live.delete(copy.copyId);
    }
    return [...new Set(touched)];
  }

  private count(copy: Copy, delta: 1 | -1): void {
    const account = accountOf(copy.destinationProjectArn);
    const load = this.loads.get(account) ?? { queued: 0, inProgress: 0 };
    if (copy.state === CopyState.QUEUED) load.queued += delta;
    else load.inProgress += delta;
    this.loads.set(account, load);
  }

  private evictOldest(): string[] {
    if (this.recent.size <= RECENT_LIMIT) return [];
    const oldestFirst = [...this.recent.values()].sort((a, b) => -newestFirst(a, b));
    const evicted = oldestFirst.slice(0, this.recent.size - RECENT_LIMIT).map((seen) => seen.copy.copyId);
    for (const id of evicted) this.recent.delete(id);
    return evicted;
  }
}

/** Sort order of the copies table: the latest change first. */
export function newestFirst(a: SeenCopy, b: SeenCopy): number {
  return b.changedAtMs - a.changedAtMs || b.arrival - a.arrival;
}
