/** The few DOM helpers the views share. Text always goes in as text, never as HTML: it comes from the server. */

export function cell(...children: (Node | string)[]): HTMLTableCellElement {
  const td = document.createElement("td");
  td.append(...children);
  return td;
}

export function span(text: string, className: string, title?: string): HTMLSpanElement {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  if (title !== undefined) element.title = title;
  return element;
}

/** An element the page cannot work without; its absence is a bug in index.html, so it fails loudly. */
export function required<T extends HTMLElement>(id: string, type: new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`index.html lacks #${id} (${type.name})`);
  return element;
}

/**
 * A table body whose rows are found by a key (an account, a copy id), with the line that says it is empty shown
 * while it has none. The views keep their rows in it so that a change rewrites a row rather than the table.
 */
export class KeyedRows {
  protected readonly rows = new Map<string, HTMLTableRowElement>();

  constructor(
    protected readonly body: HTMLTableSectionElement,
    protected readonly empty: HTMLElement,
  ) {
    this.clear();
  }

  clear(): void {
    this.rows.clear();
    this.body.replaceChildren();
    this.empty.hidden = false;
  }
}
