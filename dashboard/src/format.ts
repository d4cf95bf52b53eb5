/**
 * How the page names what the API sends: states without their COPY_STATE_ prefix, ARNs by account and project,
 * times in the reader's own time zone. One place, so every table says a thing the same way.
 */
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { CopyState } from "./gen/modelcopy/v1/modelcopy_pb";

/** QUEUED, SUBMITTING, … — the generated enum already drops the proto's COPY_STATE_ prefix. */
export function stateName(state: CopyState): string {
  return CopyState[state] ?? `STATE_${state}`;
}

/** The states in which a copy is still the service's business; the others end it. */
export function isLive(state: CopyState): boolean {
  return state === CopyState.QUEUED || state === CopyState.SUBMITTING || state === CopyState.COPYING;
}

/** The account of `arn:aws:rekognition:REGION:ACCOUNT:project/NAME/…`, or "" when it is not such an ARN. */
export function accountOf(arn: string): string {
  return arn.split(":")[4] ?? "";
}

/** NAME of `…:project/NAME/…`; the whole ARN when it has no project part. */
export function projectOf(arn: string): string {
  const match = /:project\/([^/]+)/.exec(arn);
  return match?.[1] ?? arn;
}

export function millisOf(timestamp: Timestamp | undefined): number {
  return timestamp === undefined ? 0 : timestampDate(timestamp).getTime();
}

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dated = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/** A <time> element: the clock alone for today, with the day otherwise; the full instant in its title. */
export function timeElement(timestamp: Timestamp | undefined): HTMLTimeElement {
  const element = document.createElement("time");
  if (timestamp === undefined) {
    element.textContent = "—";
    return element;
  }
  const date = timestampDate(timestamp);
  const today = new Date().toDateString() === date.toDateString();
  element.dateTime = date.toISOString();
  element.title = date.toISOString();
  element.textContent = (today ? clock : dated).format(date);
  return element;
}
