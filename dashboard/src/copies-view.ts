/**
 * The copies table. Each copy has one row for as long as it is among the recent ones: a change rewrites that row's
 * cells and moves it to its place (the latest change first), so the page never redraws the table or reloads.
 * `data-state` and `data-history` carry what the row shows in a form tests and scripts can read.
 */
import { newestFirst, type Applied, type SeenCopy } from "./copies";
import { cell, KeyedRows, span } from "./dom";
import { accountOf, projectOf, stateName, timeElement } from "./format";

export class CopiesView extends KeyedRows {
  private readonly shown = new WeakMap<HTMLTableRowElement, SeenCopy>();

  show({ seen, evicted }: Applied): void {
    const id = seen.copy.copyId;
    let row = this.rows.get(id);
    if (row === undefined) {
      row = document.createElement("tr");
      row.dataset.copyId = id;
      this.rows.set(id, row);
    }
    fill(row, seen);
    this.shown.set(row, seen);
    this.place(row, seen);
    for (const gone of evicted) {
      this.rows.get(gone)?.remove();
      this.rows.delete(gone);
    }
    this.empty.hidden = this.rows.size > 0;
  }

  // A live change is the newest, so the first comparison usually places it.
  private place(row: HTMLTableRowElement, seen: SeenCopy): void {
    row.remove();
    for (const other of this.body.rows) {
      const otherSeen = this.shown.get(other);
      if (otherSeen !== undefined && newestFirst(seen, otherSeen) < 0) {
        this.body.insertBefore(row, other);
        return;
      }
    }
    this.body.append(row);
  }
}

function fill(row: HTMLTableRowElement, { copy, history }: SeenCopy): void {
  const state = stateName(copy.state);
  row.dataset.state = state;
  row.dataset.history = history.join(",");

  const rekognition = [copy.rekognitionStatus, copy.rekognitionStatusMessage].filter((part) => part !== "");
  row.replaceChildren(
    cell(span(copy.versionName, "version"), span(copy.copyId, "id")),
    cell(project(copy.sourceProjectArn), span("→", "arrow"), project(copy.destinationProjectArn)),
    cell(span(state, "state", rekognition.length > 0 ? `Rekognition: ${rekognition.join(" — ")}` : undefined)),
    cell(span(copy.principal, "principal")),
    cell(timeElement(copy.updatedAt)),
  );
}

function project(arn: string): HTMLSpanElement {
  const element = span(projectOf(arn), "project", arn);
  element.append(span(accountOf(arn), "account"));
  return element;
}
