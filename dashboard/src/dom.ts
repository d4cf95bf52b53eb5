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
