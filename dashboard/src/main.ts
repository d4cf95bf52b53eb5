/**
 * The dashboard's entry point: binds the sign-in form to one watch at a time and feeds what the watch says to the
 * three tables. Connecting again (new credentials) abandons the previous watch and everything it had shown.
 */
import "./style.css";
import { AccountsView } from "./accounts-view";
import { CopiesView } from "./copies-view";
import { CopyBook } from "./copies";
import { loadSaved, save, takeFromFragment, type Credentials } from "./credentials";
import { required } from "./dom";
import { FailureBook } from "./failures";
import { FailuresView } from "./failures-view";
import { CopyState } from "./gen/modelcopy/v1/modelcopy_pb";
import { modelCopyClient } from "./rpc";
import { showStatus } from "./status-view";
import { watchEverything } from "./watcher";

const form = required("sign-in", HTMLFormElement);
const tokenField = required("token", HTMLInputElement);
const principalField = required("principal", HTMLInputElement);
const status = required("status", HTMLElement);

const copies = new CopyBook();
const copiesView = new CopiesView(tableBody("copies"), required("copies-empty", HTMLElement));
const accountsView = new AccountsView(tableBody("accounts"), required("accounts-empty", HTMLElement));
const failuresView = new FailuresView(
  tableBody("failures"),
  required("failures-empty", HTMLElement),
  required("failures-note", HTMLElement),
);
const failures = new FailureBook(() => failuresView.show(failures));

let current: AbortController | undefined;

function connect(credentials: Credentials): void {
  current?.abort();
  const session = new AbortController();
  current = session;
  const client = modelCopyClient(credentials);

  void watchEverything(
    client,
    {
      status: (watchStatus) => showStatus(status, watchStatus),
      fresh: () => {
        copies.clear();
        copiesView.clear();
        accountsView.clear();
        failures.reload(client, session.signal);
      },
      event: (event) => {
        if (event.copy === undefined) return;
        const applied = copies.apply(event, event.copy);
        copiesView.show(applied);
        accountsView.show(copies, applied.accounts);
        if (event.copy.state === CopyState.FAILED) failures.add(event.copy);
      },
    },
    session.signal,
  );
}

form.addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  const credentials = { token: tokenField.value.trim(), principal: principalField.value.trim() };
  save(credentials);
  connect(credentials);
});

// A link's credentials, or this tab's from before a reload, connect at once: a dashboard left on a screen comes
// back by itself.
const fromLink = takeFromFragment(location, history);
if (fromLink !== undefined) save({ token: "", principal: "", ...loadSaved(), ...fromLink });
const saved = loadSaved();
if (saved !== undefined) {
  tokenField.value = saved.token;
  principalField.value = saved.principal;
  connect(saved);
} else {
  showStatus(status, { kind: "idle" });
}

function tableBody(tableId: string): HTMLTableSectionElement {
  const body = required(tableId, HTMLTableElement).tBodies[0];
  if (body === undefined) throw new Error(`index.html lacks the tbody of #${tableId}`);
  return body;
}
