/**
 * The per-account table: for each destination account, how many copies wait in its queue and how many are being
 * submitted or copied. An account stays listed at zero once seen, so a queue draining to nothing is visible.
 */
import type { CopyBook } from "./copies";
import { cell, KeyedRows } from "./dom";

export class AccountsView extends KeyedRows {

  show(book: CopyBook, accounts: string[]): void {
    for (const account of accounts) {
      const load = book.load(account);
      const row = this.rows.get(account) ?? this.add(account);
      const queued = row.querySelector<HTMLElement>("[data-queued]")!;
      const inProgress = row.querySelector<HTMLElement>("[data-in-progress]")!;
      queued.textContent = String(load.queued);
      inProgress.textContent = String(load.inProgress);
      row.classList.toggle("idle", load.queued === 0 && load.inProgress === 0);
    }
    this.empty.hidden = this.rows.size > 0;
  }

  private add(account: string): HTMLTableRowElement {
    const row = document.createElement("tr");
    row.dataset.account = account;
    const queued = cell();
    queued.dataset.queued = "";
    const inProgress = cell();
    inProgress.dataset.inProgress = "";
    row.append(cell(account === "" ? "(no account)" : account), queued, inProgress);
    this.rows.set(account, row);
    // Accounts in id order, so a row does not move while one watches it.
    const next = [...this.rows.keys()].sort().find((other) => other > account);
    this.body.insertBefore(row, next === undefined ? null : this.rows.get(next)!);
    return row;
  }
}
