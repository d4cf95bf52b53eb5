"""A naive client of Rekognition model copies, the peer of the status-calls benchmark (issue 13, P4;
`tests/fleet/main.rs`, `status_calls_benchmark`): what a platform writes when it calls AWS directly.

It starts every copy with CopyProjectVersion, and looks at each copy with DescribeProjectVersions (its version
name) every `--poll` seconds from when it started, until it reports COPYING_COMPLETED or COPYING_FAILED. boto3 is used as a user gets it,
without retry settings: its default retries answer throttling, and each retry is a call that the simulator
counts. A call that still fails is counted here and tried again at the next round.

Two ways of waiting, as platforms write them (`--mode`):
- `sequential` (the default): one loop looks at the copies in turn, each `--poll` seconds after its last look; when
  the quota refuses, boto3's backoff holds up the whole loop, so the client never asks much faster than the quota;
- `per-copy`: one thread per copy, each copy's own `start, then look every --poll seconds`, whatever the others do,
  as a platform with one worker (or task) per copy does: throttled looks are retried by boto3 and counted.

Not collected by pytest (no `test_` prefix). Prints one JSON line: completed, failed, errors, seconds.
"""

import argparse
import heapq
import json
import sys
import threading
import time

import boto3
from botocore.exceptions import ClientError

TERMINAL = ("COPYING_COMPLETED", "COPYING_FAILED")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("endpoint", "region", "access-key", "secret-key", "source-project", "source-version",
                 "destination-project", "prefix"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--copies", type=int, required=True)
    parser.add_argument("--poll", type=float, default=5.0)
    parser.add_argument("--deadline", type=float, default=900.0, help="gives up after this many seconds")
    parser.add_argument("--mode", choices=("sequential", "per-copy"), default="sequential")
    args = parser.parse_args()

    client = boto3.client(
        "rekognition",
        endpoint_url=args.endpoint,
        region_name=args.region,
        aws_access_key_id=args.access_key,
        aws_secret_access_key=args.secret_key,
    )
    if args.mode == "per-copy":
        return per_copy(client, args)
    started = time.monotonic()
    errors = 0
    # (when it is next looked at, its name), soonest first.
    due = []
    for k in range(args.copies):
        name = f"{args.prefix}-{k}"
        errors += start_copy(client, args, name, started)
        heapq.heappush(due, (time.monotonic() + args.poll, name))

    ended = {}
    while due and time.monotonic() - started < args.deadline:
        at, name = heapq.heappop(due)
        time.sleep(max(0.0, at - time.monotonic()))
        try:
            answer = client.describe_project_versions(ProjectArn=args.destination_project, VersionNames=[name])
            statuses = [version.get("Status") for version in answer["ProjectVersionDescriptions"]]
        except ClientError:
            errors += 1
            statuses = []
        ending = [status for status in statuses if status in TERMINAL]
        if ending:
            ended[name] = ending[0]
        else:
            heapq.heappush(due, (at + args.poll, name))

    statuses = list(ended.values())
    json.dump({
        "completed": statuses.count("COPYING_COMPLETED"),
        "failed": statuses.count("COPYING_FAILED"),
        "unfinished": len(due),
        "errors": errors,
        "seconds": round(time.monotonic() - started, 1),
    }, sys.stdout)
    print()


def start_copy(client, args, name, started):
    """Starts the copy `name`, trying again every second while it is refused (until the deadline); the refusals."""
    refused = 0
    while time.monotonic() - started < args.deadline:
        try:
            client.copy_project_version(
                SourceProjectArn=args.source_project,
                SourceProjectVersionArn=args.source_version,
                DestinationProjectArn=args.destination_project,
                VersionName=name,
                OutputConfig={"S3Bucket": "out"},
            )
            break
        except ClientError:
            refused += 1
            time.sleep(1.0)
    return refused


def per_copy(client, args):
    """One thread per copy: start it, then look at it every `--poll` seconds from its start until it ends."""
    started = time.monotonic()
    lock = threading.Lock()
    outcome = {"errors": 0, "ended": {}}

    def copy_one(name):
        refused = start_copy(client, args, name, started)
        with lock:
            outcome["errors"] += refused
        at = time.monotonic()
        while time.monotonic() - started < args.deadline:
            at += args.poll
            time.sleep(max(0.0, at - time.monotonic()))
            try:
                answer = client.describe_project_versions(ProjectArn=args.destination_project, VersionNames=[name])
            except ClientError:
                with lock:
                    outcome["errors"] += 1
                continue
            ending = [v.get("Status") for v in answer["ProjectVersionDescriptions"] if v.get("Status") in TERMINAL]
            if ending:
                with lock:
                    outcome["ended"][name] = ending[0]
                return

    threads = [threading.Thread(target=copy_one, args=(f"{args.prefix}-{k}",)) for k in range(args.copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = list(outcome["ended"].values())
    json.dump({
        "completed": statuses.count("COPYING_COMPLETED"),
        "failed": statuses.count("COPYING_FAILED"),
        "unfinished": args.copies - len(statuses),
        "errors": outcome["errors"],
        "seconds": round(time.monotonic() - started, 1),
    }, sys.stdout)
    print()


if __name__ == "__main__":
    main()
