/**
 * The connection status: `data-status` says it in one word (idle, connecting, live, reconnecting, error) for
 * styles and scripts; the text says it for a person, with the server's message when it refused.
 */
import type { WatchStatus } from "./watcher";

export type PageStatus = WatchStatus | { kind: "idle" };

export function showStatus(element: HTMLElement, status: PageStatus): void {
  element.dataset.status = status.kind;
  element.textContent = text(status);
  element.title = element.textContent;
}

function text(status: PageStatus): string {
  switch (status.kind) {
    case "idle":
      return "Not connected";
    case "connecting":
      return "Connecting…";
    case "live":
      return "Live";
    case "reconnecting":
      return status.retryInMs > 0
        ? `Reconnecting in ${status.retryInMs / 1000} s — ${status.reason}`
        : `Reconnecting — ${status.reason}`;
    case "error":
      return `Error — ${status.message}`;
  }
}
