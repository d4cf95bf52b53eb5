/** The recent failures table: what AWS said (error code and message) for each, the newest first. */
import { cell, span } from "./dom";
import type { FailureBook } from "./failures";
import { accountOf, projectOf, timeElement } from "./format";

export class FailuresView {
  constructor(
    private readonly body: HTMLTableSectionElement,
    private readonly empty: HTMLElement,
    private readonly note: HTMLElement,
  ) {}

  show(book: FailureBook): void {
    const rows = book.newestFirst().map((copy) => {
      const row = document.createElement("tr");
      row.dataset.failureCopyId = copy.copyId;
      const destination = span(projectOf(copy.destinationProjectArn), "project", copy.destinationProjectArn);
      destination.append(span(accountOf(copy.destinationProjectArn), "account"));
      row.append(
        cell(timeElement(copy.completedAt ?? copy.updatedAt)),
        cell(span(copy.versionName, "version"), span(copy.copyId, "id")),
        cell(destination),
        cell(span(copy.error?.code || "—", "error-code")),
        cell(span(copy.error?.message || copy.rekognitionStatusMessage || "—", "error-message")),
      );
      return row;
    });
    this.body.replaceChildren(...rows);
    this.empty.hidden = rows.length > 0;
    this.note.textContent = book.note;
    this.note.hidden = book.note === "";
  }
}
