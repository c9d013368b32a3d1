#!/usr/bin/env python3
"""Drives the real inbound Lambda binary outside Lambda, for bench/inbound.sh.

Subcommands (stdlib only, except `upload`, `records` and `objects`, which use boto3, installed with moto):

  ready EXE [--runs N] [--evict]
      A fake Lambda Runtime API on 127.0.0.1. Spawns EXE N times (environment as given) and measures from
      just before the spawn to the first `GET /2018-06-01/runtime/invocation/next`, i.e. the function's init
      up to "ready for an event". The process is killed after each run. Prints one line per run and a summary
      line `ready_ms min=.. median=.. max=..`. With --evict, EXE's pages are dropped from the page cache
      before each spawn (posix_fadvise DONTNEED), so each start reads the binary from disk, as a fresh Lambda
      sandbox does.

  invoke EXE (--bucket B --key K --size N | --event FILE) [--timeout S] [--deadline-s S]
      The same fake Runtime API serving one invocation: answers the first `next` with an S3 ObjectCreated
      event for s3://B/K (eventTime now), or with the event in FILE, and the Lambda-Runtime-* headers (the
      deadline S seconds away, 900 by default: give the template's Timeout), waits for the POST to
      `.../invocation/<id>/response` (or `/error`), reads the process's VmHWM from /proc just before stopping
      it, then its ru_maxrss and CPU time from wait4. Prints
      `invoke_s=.. vm_hwm_kb=.. ru_maxrss_kb=.. cpu_s=.. outcome=..` (cpu_s covers init and the invocation).

  sqs-event --bucket B KEY... [--shape s3|ses]
      Prints an SQS event (what Lambda's poller hands the function) with one record per KEY, whose body is
      an S3 ObjectCreated event (`s3`, the S3Event wiring) or an SNS-wrapped SES notification (`ses`, the
      default wiring) for s3://B/KEY.

  receiver PORT LOG
      A webhook receiver: reads each POST whole (Content-Length or chunked), appends one line to LOG with the
      byte count and, for JSON, the attachments' decoded sizes (of `content`), how many attachments carry a
      `url` and how many a `content`, and the URLs' scheme://host, and answers 200.

  upload FILE --bucket B --key K          puts FILE into the emulator (AWS_ENDPOINT_URL).
  records --table T                       prints the delivery records (pk MSG#...) as JSON lines.
  objects --bucket B --prefix P           lists the objects under P as JSON lines (key, size), then a line
                                          `objects count=.. total_bytes=..`.
"""

import argparse
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/2018-06-01/runtime"


class QuietServer(ThreadingHTTPServer):
    """Keeps quiet about connections the stopped function leaves half open."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class FakeRuntime:
    """The Runtime API's three calls the Rust runtime makes: next, response, error."""

    def __init__(self, event=None, deadline_s=900):
        self.event = event  # bytes to hand out on the first `next`, or None: never answer
        self.deadline_s = deadline_s
        self.first_next = None  # time.monotonic_ns() of the first `next`
        self.served = False
        self.request_id = None
        self.next_seen = threading.Event()
        self.done = threading.Event()
        self.outcome = None
        self.answered_at = None
        self.served_at = None
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path != f"{API}/invocation/next":
                    self.send_error(404)
                    return
                now = time.monotonic_ns()
                if runtime.first_next is None:
                    runtime.first_next = now
                    runtime.next_seen.set()
                if runtime.event is None or runtime.served:
                    # Long poll, as Lambda does between events: hold the request until the process is stopped.
                    runtime.done.wait(600)
                    self.close_connection = True
                    return
                runtime.served = True
                runtime.request_id = str(uuid.uuid4())
                deadline_ms = int(time.time() * 1000) + runtime.deadline_s * 1000
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(runtime.event)))
                self.send_header("Lambda-Runtime-Aws-Request-Id", runtime.request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:eu-west-1:123456789012:function:inbound")
                self.send_header("Lambda-Runtime-Trace-Id",
                                 "Root=1-00000000-000000000000000000000000;Sampled=0")
                self.end_headers()
                self.wfile.write(runtime.event)
                runtime.served_at = time.monotonic()

            def do_POST(self):
                body = read_body(self)
                self.send_response(202)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                kind = self.path.rsplit("/", 1)[-1]
                if kind in ("response", "error"):
                    runtime.outcome = f"{kind}:{body[:300].decode('utf-8', 'replace')}"
                    runtime.answered_at = time.monotonic()
                    runtime.done.set()

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.done.set()
        self.server.shutdown()
        self.server.server_close()


def read_body(handler):
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length", "0")))


def lambda_env(port):
    env = dict(os.environ)
    env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{port}"
    for name, value in [("AWS_LAMBDA_FUNCTION_NAME", "inbound"), ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
                        ("AWS_LAMBDA_FUNCTION_VERSION", "1"), ("AWS_REGION", "eu-west-1"),
                        ("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")]:
        env.setdefault(name, value)
    return env


def stop(proc, with_cpu=False):
    """SIGTERM, then SIGKILL; returns ru_maxrss (KiB) from wait4 (and the CPU seconds used, with_cpu)."""
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while True:
        pid, _status, usage = os.wait4(proc.pid, os.WNOHANG)
        if not pid and time.monotonic() > deadline:
            proc.kill()
            pid, _status, usage = os.wait4(proc.pid, 0)
        if pid:
            proc.returncode = _status
            cpu = usage.ru_utime + usage.ru_stime
            return (usage.ru_maxrss, cpu) if with_cpu else usage.ru_maxrss
        time.sleep(0.01)


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def cmd_ready(args):
    times = []
    for run in range(args.runs):
        runtime = FakeRuntime()
        env = lambda_env(runtime.port)
        if args.evict:
            with open(args.exe, "rb") as exe:
                os.fsync(exe.fileno())
                os.posix_fadvise(exe.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        start = time.monotonic_ns()
        proc = subprocess.Popen([args.exe], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ok = runtime.next_seen.wait(30)
        hwm = vm_hwm_kb(proc.pid) if proc.poll() is None else None
        stop(proc)
        err = proc.stderr.read().decode("utf-8", "replace")
        runtime.close()
        if not ok:
            sys.exit(f"run {run}: no `next` request within 30 s; stderr:\n{err}")
        ms = (runtime.first_next - start) / 1e6
        times.append(ms)
        print(f"run={run} ready_ms={ms:.2f} rss_at_ready_kb={hwm}", flush=True)
    print(f"ready_ms runs={len(times)} min={min(times):.2f} median={statistics.median(times):.2f} "
          f"max={max(times):.2f} mean={statistics.mean(times):.2f}")


def s3_event(bucket, key, size):
    now = datetime.now(timezone.utc)
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLEPRINCIPAL"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "BENCH", "x-amz-id-2": "BENCH"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "mailroom-inbound",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "BENCH"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": urllib.parse.quote_plus(key, safe="/"), "size": size, "eTag": "0" * 32,
                          "sequencer": "0A"}},
    }]}


def ses_notification(bucket, key):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    message_id = key.rsplit("/", 1)[-1]
    ses = {"notificationType": "Received",
           "mail": {"timestamp": now, "source": "sender@bench.example", "messageId": message_id,
                    "destination": ["support@mail.bench.test"]},
           "receipt": {"timestamp": now, "recipients": ["support@mail.bench.test"],
                       "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "PASS"},
                       "spfVerdict": {"status": "PASS"}, "dkimVerdict": {"status": "PASS"},
                       "dmarcVerdict": {"status": "PASS"},
                       "action": {"type": "S3", "topicArn": "arn:aws:sns:eu-west-1:123456789012:bench",
                                  "bucketName": bucket, "objectKeyPrefix": "inbound/", "objectKey": key}}}
    return {"Type": "Notification", "MessageId": str(uuid.uuid4()),
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:bench", "Message": json.dumps(ses)}


def cmd_sqs_event(args):
    ms = str(int(time.time() * 1000))
    records = []
    for key in args.keys:
        body = s3_event(args.bucket, key, 0) if args.shape == "s3" else ses_notification(args.bucket, key)
        if args.shape == "s3":
            body["Records"][0]["s3"]["object"].pop("size")
        records.append({
            "messageId": str(uuid.uuid4()), "receiptHandle": "bench-" + str(uuid.uuid4()),
            "body": json.dumps(body),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": ms, "SenderId": "BENCH",
                           "ApproximateFirstReceiveTimestamp": ms},
            "messageAttributes": {}, "md5OfBody": "0" * 32, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:bench-inbound", "awsRegion": "eu-west-1"})
    print(json.dumps({"Records": records}))


def cmd_invoke(args):
    if args.event:
        event_bytes = open(args.event, "rb").read()
    elif args.bucket and args.key:
        event_bytes = json.dumps(s3_event(args.bucket, args.key, args.size)).encode()
    else:
        sys.exit("invoke needs --event FILE, or --bucket and --key")
    runtime = FakeRuntime(event_bytes, args.deadline_s)
    env = lambda_env(runtime.port)
    start = time.monotonic()
    proc = subprocess.Popen([args.exe], env=env, stdout=subprocess.DEVNULL, stderr=open(args.stderr, "wb"))
    answered = runtime.done.wait(args.timeout)
    hwm = vm_hwm_kb(proc.pid) if proc.poll() is None else None
    maxrss, cpu = stop(proc, with_cpu=True)
    runtime.close()
    if not answered:
        sys.exit(f"no response within {args.timeout} s (see {args.stderr})")
    ready = (runtime.first_next / 1e9) - start if runtime.first_next else float("nan")
    invoke_s = runtime.answered_at - runtime.served_at
    outcome = runtime.outcome.replace(" ", "_")
    print(f"ready_s={ready:.3f} invoke_s={invoke_s:.3f} vm_hwm_kb={hwm} ru_maxrss_kb={maxrss} cpu_s={cpu:.3f} "
          f"outcome={outcome}")
    if not runtime.outcome.startswith("response"):
        sys.exit("the invocation failed")


def cmd_receiver(args):
    log = open(args.log, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = read_body(self)
            detail = ""
            if self.headers.get("Content-Type", "").startswith("application/json"):
                try:
                    payload = json.loads(body)
                    attachments = payload.get("attachments", [])
                    sizes = [len(base64.b64decode(a["content"])) for a in attachments if "content" in a]
                    hosts = sorted({"{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(a["url"]))
                                    for a in attachments if isinstance(a.get("url"), str)})
                    detail = (f" attachments_decoded_bytes={','.join(map(str, sizes))}"
                              f" attachments={len(attachments)}"
                              f" with_url={sum(1 for a in attachments if 'url' in a)}"
                              f" with_content={sum(1 for a in attachments if 'content' in a)}"
                              f" url_hosts={','.join(hosts) or '-'}")
                except ValueError as error:
                    detail = f" invalid_json={error}"
            log.write(f"POST {self.path} bytes={len(body)} content_type={self.headers.get('Content-Type')}"
                      f"{detail}\n")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = QuietServer(("127.0.0.1", args.port), Handler)
    print(f"receiver on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


def client(service):
    import boto3
    return boto3.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                        region_name=os.environ.get("AWS_REGION", "eu-west-1"))


def cmd_upload(args):
    with open(args.file, "rb") as body:
        client("s3").put_object(Bucket=args.bucket, Key=args.key, Body=body)


def cmd_records(args):
    from boto3.dynamodb.types import TypeDeserializer
    des = TypeDeserializer()
    items = client("dynamodb").scan(TableName=args.table)["Items"]
    for item in items:
        record = {k: des.deserialize(v) for k, v in item.items()}
        if str(record.get("pk", "")).startswith("MSG#"):
            keep = {k: record.get(k) for k in ("pk", "sk", "status", "response_status", "target", "attempts")}
            print(json.dumps(keep, default=str))


def cmd_objects(args):
    count = total = 0
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=args.prefix):
        for obj in page.get("Contents", []):
            count += 1
            total += obj["Size"]
            print(json.dumps({"key": obj["Key"], "size": obj["Size"]}))
    print(f"objects count={count} total_bytes={total}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ready")
    p.add_argument("exe")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--evict", action="store_true")
    p = sub.add_parser("invoke")
    p.add_argument("exe")
    p.add_argument("--bucket")
    p.add_argument("--key")
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--event")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--deadline-s", type=int, default=900)
    p.add_argument("--stderr", default="/dev/null")
    p = sub.add_parser("sqs-event")
    p.add_argument("keys", nargs="+")
    p.add_argument("--bucket", required=True)
    p.add_argument("--shape", choices=["s3", "ses"], default="ses")
    p = sub.add_parser("receiver")
    p.add_argument("port", type=int)
    p.add_argument("log")
    p = sub.add_parser("upload")
    p.add_argument("file")
    p.add_argument("--bucket", required=True)
    p.add_argument("--key", required=True)
    p = sub.add_parser("records")
    p.add_argument("--table", required=True)
    p = sub.add_parser("objects")
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", default="")
    args = ap.parse_args()
    {"ready": cmd_ready, "invoke": cmd_invoke, "receiver": cmd_receiver, "upload": cmd_upload,
     "records": cmd_records, "objects": cmd_objects, "sqs-event": cmd_sqs_event}[args.cmd](args)


if __name__ == "__main__":
    main()
