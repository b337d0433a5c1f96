#!/usr/bin/env python3
"""Local stand-ins for the AWS triggers of the worker functions, for `scripts/dev`.

Two modes:

* SQS (default): emulates Lambda's SQS event source mapping. Long-polls the queue, sends each
  batch to the function as a real SQS event through the `cargo lambda watch` invoke endpoint,
  deletes what succeeded and leaves the items the function reported in `batchItemFailures` for
  redelivery after the visibility timeout (the queue's redrive policy moves poison messages to
  the dead-letter queue, as in AWS).
* Schedule (`--schedule FUNCTION --every SECONDS`): emulates an EventBridge rule by invoking the
  function with a real "Scheduled Event" every N seconds.

Only boto3 and the standard library, so the dev venv stays small.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

# Matches what moto reports for its default account, so ARNs look like the ones in AWS.
DEFAULT_ACCOUNT = "123456789012"
# Lambda's own upper bound on a function's run time: a first invoke under `cargo lambda watch`
# waits for the function to compile, which takes minutes on a fresh checkout.
DEFAULT_INVOKE_TIMEOUT = 900
# How long to wait before trying again when the function could not be invoked at all.
INVOKE_BACKOFF_SECONDS = 5


class InvokeFailed(Exception):
    """The function could not be invoked, or it failed as a whole (not per item)."""


def log(message: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} {PROG}: {message}", flush=True)


def invoke(base_url: str, function: str, event: dict[str, Any], timeout: float) -> Any:
    """POSTs an event to the invoke endpoint and returns the function's decoded JSON answer."""
    url = f"{base_url.rstrip('/')}/2015-03-31/functions/{function}/invocations"
    request = urllib.request.Request(
        url,
        data=json.dumps(event).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            function_error = response.headers.get("X-Amz-Function-Error")
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")[:300]
        raise InvokeFailed(f"{function} answered HTTP {err.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise InvokeFailed(f"cannot reach {url}: {reason}") from None

    try:
        payload = json.loads(body) if body.strip() else None
    except json.JSONDecodeError:
        raise InvokeFailed(f"{function} returned non-JSON: {body[:300]!r}") from None
    # A function error is a whole-invocation failure, whatever the status code says.
    if function_error or (isinstance(payload, dict) and "errorType" in payload):
        raise InvokeFailed(f"{function} failed: {payload}")
    return payload


# --------------------------------------------------------------------------------------------
# SQS event source mapping
# --------------------------------------------------------------------------------------------


def lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Converts SQS ReceiveMessage attributes to the camelCase shape Lambda puts in events."""
    converted = {}
    for name, value in attributes.items():
        item: dict[str, Any] = {
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": [
                base64.b64encode(b).decode() for b in value.get("BinaryListValues", [])
            ],
            "dataType": value["DataType"],
        }
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            item["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        converted[name] = item
    return converted


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Builds the event Lambda's SQS trigger sends for a batch of received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                # AttributeNames=All: ApproximateReceiveCount, SentTimestamp, SenderId,
                # ApproximateFirstReceiveTimestamp (and MessageGroupId etc. where they apply).
                "attributes": m.get("Attributes", {}),
                "messageAttributes": lambda_message_attributes(m.get("MessageAttributes", {})),
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def failed_ids(response: Any, batch_ids: set[str]) -> set[str]:
    """The message ids to keep, from the function's SQSBatchResponse.

    As in AWS, a null answer or one without failures means the whole batch succeeded, and an
    item identifier that is empty or not in the batch fails the whole batch.
    """
    if not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures") or []
    ids = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
    if not ids <= batch_ids:
        log(f"unknown itemIdentifier in {failures}; keeping the whole batch")
        return set(batch_ids)
    return ids


def queue_arn(sqs: Any, queue_url: str, region: str) -> str:
    try:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return attrs["Attributes"]["QueueArn"]
    except Exception:  # noqa: BLE001 - an ARN built by hand is as good for local events
        name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        return f"arn:aws:sqs:{region}:{DEFAULT_ACCOUNT}:{name}"


def pump_once(sqs: Any, args: argparse.Namespace, arn: str, region: str) -> None:
    """Receives one batch, invokes the function with it and settles the messages."""
    received = sqs.receive_message(
        QueueUrl=args.queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=args.wait_seconds,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    messages = received.get("Messages", [])
    if not messages:
        return

    try:
        response = invoke(
            args.invoke_url, args.function, sqs_event(messages, arn, region), args.invoke_timeout
        )
    except InvokeFailed as err:
        # Nothing is deleted: the batch comes back after the visibility timeout, as in AWS.
        log(f"{len(messages)} received, invoke failed, all kept for retry: {err}")
        time.sleep(INVOKE_BACKOFF_SECONDS)
        return

    keep = failed_ids(response, {m["MessageId"] for m in messages})
    done = [m for m in messages if m["MessageId"] not in keep]
    deleted = 0
    if done:
        result = sqs.delete_message_batch(
            QueueUrl=args.queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
            ],
        )
        deleted = len(result.get("Successful", []))
        for failure in result.get("Failed", []):
            log(f"could not delete a message: {failure.get('Code')} {failure.get('Message')}")
    retry = f" ({', '.join(sorted(keep))})" if keep else ""
    log(f"{len(messages)} received, {deleted} deleted, {len(keep)} kept for retry{retry}")


def run_sqs(args: argparse.Namespace) -> None:
    import boto3  # only this mode needs it

    if not args.queue_url:
        sys.exit(f"{PROG}: no queue URL: pass --queue-url or set NOTIFICATIONS_QUEUE_URL")
    region = args.region
    sqs = boto3.client("sqs", region_name=region, endpoint_url=args.endpoint_url)
    arn = queue_arn(sqs, args.queue_url, region)
    log(f"polling {args.queue_url} for {args.function} at {args.invoke_url}")
    while True:
        try:
            pump_once(sqs, args, arn, region)
        except Exception as err:  # noqa: BLE001 - keep pumping across emulator hiccups
            log(f"error while polling: {err}")
            time.sleep(INVOKE_BACKOFF_SECONDS)


# --------------------------------------------------------------------------------------------
# EventBridge schedule
# --------------------------------------------------------------------------------------------


def scheduled_event(rule: str, region: str) -> dict[str, Any]:
    """The event an EventBridge schedule rule sends."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": DEFAULT_ACCOUNT,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{DEFAULT_ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


def run_schedule(args: argparse.Namespace) -> None:
    rule = args.rule or args.schedule
    log(f"invoking {args.schedule} every {args.every:g}s at {args.invoke_url}")
    while True:
        started = time.monotonic()
        try:
            invoke(
                args.invoke_url,
                args.schedule,
                scheduled_event(rule, args.region),
                args.invoke_timeout,
            )
            log(f"{args.schedule} ran ({time.monotonic() - started:.1f}s)")
        except InvokeFailed as err:
            log(f"{args.schedule} did not run: {err}")
        # Fixed rate, like a rate() rule: the next tick is counted from this one's start.
        time.sleep(max(0.0, args.every - (time.monotonic() - started)))


# --------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--invoke-url",
        default=env("LAMBDA_INVOKE_URL", "http://127.0.0.1:9000"),
        help="base URL of the invoke API (env LAMBDA_INVOKE_URL)",
    )
    parser.add_argument(
        "--invoke-timeout",
        type=float,
        default=DEFAULT_INVOKE_TIMEOUT,
        help="seconds to wait for one invoke (default %(default)s)",
    )
    parser.add_argument(
        "--region", default=env("AWS_REGION", env("AWS_DEFAULT_REGION", "us-east-1"))
    )
    sqs = parser.add_argument_group("SQS mode (default)")
    sqs.add_argument(
        "--queue-url",
        default=env("NOTIFICATIONS_QUEUE_URL"),
        help="queue to poll (env NOTIFICATIONS_QUEUE_URL)",
    )
    sqs.add_argument(
        "--function",
        default=env("SQS_PUMP_FUNCTION", "notify-worker"),
        help="function to invoke (env SQS_PUMP_FUNCTION, default %(default)s)",
    )
    sqs.add_argument(
        "--endpoint-url",
        default=env("AWS_ENDPOINT_URL"),
        help="SQS endpoint (env AWS_ENDPOINT_URL)",
    )
    sqs.add_argument("--wait-seconds", type=int, default=10, help="long-poll time")
    schedule = parser.add_argument_group("schedule mode")
    schedule.add_argument(
        "--schedule",
        metavar="FUNCTION",
        help="invoke FUNCTION with a Scheduled Event instead of polling SQS",
    )
    schedule.add_argument(
        "--every",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="seconds between scheduled invokes (default %(default)s)",
    )
    schedule.add_argument("--rule", help="rule name in the event's ARN (default: the function)")
    return parser.parse_args()


def main() -> None:
    global PROG
    args = parse_args()
    PROG = f"schedule[{args.schedule}]" if args.schedule else f"sqs-pump[{args.function}]"
    # Stopped by scripts/dev with SIGTERM, or by Ctrl-C when run by hand: leave without a trace.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        run_schedule(args) if args.schedule else run_sqs(args)
    except KeyboardInterrupt:
        pass


PROG = "sqs-pump"

if __name__ == "__main__":
    main()
