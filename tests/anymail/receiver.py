#!/usr/bin/env python3
"""An app that receives Mailroom's inbound POSTs through django-anymail.

A minimal Django project, configured here in code, mounts anymail's own inbound
webhook views:

    /postmark  anymail.webhooks.postmark.PostmarkInboundWebhookView
    /mailgun   anymail.webhooks.mailgun.MailgunInboundWebhookView
    /sendgrid  anymail.webhooks.sendgrid.SendGridInboundWebhookView

and serves them with the standard library's wsgiref on 127.0.0.1, port 0, so
that every POST goes through Django's normal request handling (its own
multipart/form-data and body parsing) exactly as in a deployed app.

stdout, one line each, flushed:
  first:          listening <port>
  each event:     a JSON object describing what anymail parsed (see describe())
  each failure:   {"error": "...", "path": "...", "status": 400|500, ...}
Django's and wsgiref's own logs go to stderr.
Read stdout while posting (a thread): an event line carries every attachment
in base64 and is written, under a lock, before the HTTP answer is sent, so a
client that only reads stdout after its POST returns deadlocks once a line
exceeds the pipe buffer (64 KiB).
A chunked request body is decoded (see dechunk()); wsgiref answers HTTP/1.0
and closes each connection; it sends no "100 Continue" (curl: -H 'Expect:').

Environment:
  ANYMAIL_WEBHOOK_SECRET       "user:password"; anymail then requires that
                               HTTP basic auth on every view (Mailgun's too)
  MAILGUN_WEBHOOK_SIGNING_KEY  anymail's MAILGUN_WEBHOOK_SIGNING_KEY: the
                               Mailgun view checks timestamp/token/signature
                               (without it the Mailgun view refuses to start:
                               each /mailgun POST then answers 500)

Install: python3 -m venv "$HOME/.cache/mailroom/anymail-venv" &&
  "$HOME/.cache/mailroom/anymail-venv/bin/pip" install --quiet \
  -r tests/anymail/requirements.txt
Run:     "$HOME/.cache/mailroom/anymail-venv/bin/python" tests/anymail/receiver.py
"""

import base64
import hashlib
import hmac
import io
import json
import os
import sys
import threading
import traceback
import warnings
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import django
from django.conf import settings

_ANYMAIL = {}
if os.environ.get("ANYMAIL_WEBHOOK_SECRET"):
    _ANYMAIL["WEBHOOK_SECRET"] = os.environ["ANYMAIL_WEBHOOK_SECRET"]
if os.environ.get("MAILGUN_WEBHOOK_SIGNING_KEY") is not None:
    _ANYMAIL["MAILGUN_WEBHOOK_SIGNING_KEY"] = os.environ["MAILGUN_WEBHOOK_SIGNING_KEY"]

settings.configure(
    DEBUG=False,
    SECRET_KEY="mailroom-anymail-test-receiver",
    ALLOWED_HOSTS=["127.0.0.1", "localhost", "[::1]"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["anymail"],
    MIDDLEWARE=[__name__ + ".ErrorLineMiddleware"],
    ANYMAIL=_ANYMAIL,
    # Test messages may be large and have many parts: no size/count refusals.
    # (FILE_UPLOAD_MAX_MEMORY_SIZE is not a limit, only where uploads spill
    # to temporary files; it stays at its default.)
    DATA_UPLOAD_MAX_MEMORY_SIZE=None,
    DATA_UPLOAD_MAX_NUMBER_FIELDS=None,
    DATA_UPLOAD_MAX_NUMBER_FILES=None,
)
django.setup()

from django.core.exceptions import SuspiciousOperation  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from anymail.signals import inbound  # noqa: E402
from anymail.webhooks.mailgun import MailgunInboundWebhookView  # noqa: E402
from anymail.webhooks.postmark import PostmarkInboundWebhookView  # noqa: E402
from anymail.webhooks.sendgrid import SendGridInboundWebhookView  # noqa: E402

urlpatterns = [
    path("postmark", PostmarkInboundWebhookView.as_view()),
    path("mailgun", MailgunInboundWebhookView.as_view()),
    # A Mailgun route forwarding to a URL that ends in "mime" gets the MIME variant.
    path("mailgun.mime", MailgunInboundWebhookView.as_view()),
    path("sendgrid", SendGridInboundWebhookView.as_view()),
]

_out_lock = threading.Lock()
_current = threading.local()  # the request being handled on this thread


def emit(obj):
    line = json.dumps(_jsonable(obj), ensure_ascii=True, sort_keys=False)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _jsonable(value):
    """Only what JSON needs: lone surrogates (left by the email package for
    undecodable 8-bit bytes, "surrogateescape") are not valid JSON text, so
    such a string becomes its bytes decoded as UTF-8 with U+FFFD for what
    is not UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class ErrorLineMiddleware:
    """Prints one JSON error line for any exception a view raises, so a test
    sees why; answers 400 for anymail's webhook validation failures (a
    SuspiciousOperation, as Django itself would) and 500 for anything else."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _current.request = request
        try:
            return self.get_response(request)
        finally:
            _current.request = None

    def process_exception(self, request, exception):
        status = 400 if isinstance(exception, SuspiciousOperation) else 500
        emit(
            {
                "error": "%s: %s" % (type(exception).__name__, exception),
                "error_type": type(exception).__name__,
                "path": request.path,
                "status": status,
                "traceback": traceback.format_exc(),
            }
        )
        return HttpResponse(
            "%s: %s\n" % (type(exception).__name__, exception),
            status=status,
            content_type="text/plain; charset=utf-8",
        )


# Mailgun's documented verification function, as given on
# https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
# ("Securing Webhooks": concatenate timestamp and token, HMAC-SHA256 with the
# webhook signing key, compare the hexdigest with the signature).
def verify(signing_key, token, timestamp, signature):
    hmac_digest = hmac.new(
        key=signing_key.encode(),
        msg=("{}{}".format(timestamp, token)).encode(),
        digestmod=hashlib.sha256,
    ).hexdigest()
    return hmac.compare_digest(str(signature), str(hmac_digest))


def _mailgun_signature_ok(request):
    key = os.environ.get("MAILGUN_WEBHOOK_SIGNING_KEY")
    if key is None or request is None:
        return None
    try:
        return verify(
            key,
            request.POST["token"],
            request.POST["timestamp"],
            request.POST["signature"],
        )
    except KeyError:
        return False


def _address(addr):
    if addr is None:
        return None
    if isinstance(addr, list):  # several From addresses: anymail keeps a list
        return [_address(a) for a in addr]
    return {"addr_spec": addr.addr_spec, "display_name": addr.display_name}


def _part(part, errors, where):
    out = {
        "filename": part.get_filename(),
        "content_type": part.get_content_type(),
        "content_id": None if part["Content-ID"] is None else str(part["Content-ID"]),
        "inline": part.is_inline(),
        "disposition": part.get_content_disposition(),
        "content_b64": None,
    }
    try:
        out["content_b64"] = base64.b64encode(part.get_content_bytes()).decode("ascii")
    except Exception as exc:  # e.g. a multipart attachment
        errors[where] = "%s: %s" % (type(exc).__name__, exc)
    return out


def describe(esp_name, event, request):
    message = event.message
    errors = {}  # field -> error, when reading that field raised

    def field(name, get):
        try:
            return get()
        except Exception as exc:
            errors[name] = "%s: %s" % (type(exc).__name__, exc)
            return None

    out = {
        "provider": esp_name,
        "path": None if request is None else request.path,
        "event_type": event.event_type,
        "message_id": event.event_id,
        "timestamp": None if event.timestamp is None else event.timestamp.isoformat(),
        "envelope_sender": message.envelope_sender,
        "envelope_recipient": message.envelope_recipient,
        "stripped_text": message.stripped_text,
        "stripped_html": message.stripped_html,
        "spam_detected": message.spam_detected,
        "spam_score": message.spam_score,
        "from": field("from", lambda: _address(message.from_email)),
        "to": field("to", lambda: [_address(a) for a in message.to]),
        "cc": field("cc", lambda: [_address(a) for a in message.cc]),
        "bcc": field("bcc", lambda: [_address(a) for a in message.bcc]),
        "subject": field("subject", lambda: None if message.subject is None else str(message.subject)),
        "date": field("date", lambda: None if message["Date"] is None else str(message["Date"])),
        "date_parsed": field(
            "date_parsed",
            lambda: None if message.date is None else message.date.isoformat(),
        ),
        "text": field("text", lambda: message.text),
        "html": field("html", lambda: message.html),
        # message.items(): names and values as the email package (policy
        # default) gives them, encoded-words decoded, in order.
        "headers": field("headers", lambda: [[k, str(v)] for k, v in message.items()]),
        # the same headers as stored (folding and encoded-words as posted)
        "raw_headers": field("raw_headers", lambda: [[k, str(v)] for k, v in message.raw_items()]),
        "content_type": field("content_type", lambda: message.get_content_type()),
        "attachments": [],
        "inlines": [],
        "content_id_map": {},
        "raw_mime_b64": None,
        "mailgun_signature_ok": None,
        "field_errors": errors,
    }
    attachments = field("attachments", lambda: message.attachments) or []
    out["attachments"] = [_part(p, errors, "attachments[%d]" % i) for i, p in enumerate(attachments)]
    inlines = field("inlines", lambda: message.inlines) or []
    out["inlines"] = [_part(p, errors, "inlines[%d]" % i) for i, p in enumerate(inlines)]
    # content_id_map: Content-ID (without <>) -> index into "inlines"
    cid_map = field("content_id_map", lambda: message.content_id_map) or {}
    out["content_id_map"] = {
        cid: next((i for i, p in enumerate(inlines) if p is part), None)
        for cid, part in cid_map.items()
    }
    out["raw_mime_b64"] = field(
        "raw_mime", lambda: base64.b64encode(message.as_bytes()).decode("ascii")
    )
    if esp_name == "Mailgun":
        out["mailgun_signature_ok"] = _mailgun_signature_ok(request)
    out["raw_field_sha256"] = field("raw_field", lambda: _raw_field_sha256(request))
    return out


def _raw_field_sha256(request):
    """SHA-256 of the original message as the app's framework hands it over (Postmark's RawEmail,
    Mailgun's body-mime, SendGrid's email; text, UTF-8), or None when the POST has no such field."""
    if request is None:
        return None
    if request.path.startswith("/postmark"):
        raw = json.loads(request.body).get("RawEmail")
    elif request.path.startswith("/mailgun"):
        raw = request.POST.get("body-mime")
    else:
        raw = request.POST.get("email")
    if raw is None:
        return None
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()


def on_inbound(sender, event, esp_name, **kwargs):
    emit(describe(esp_name, event, getattr(_current, "request", None)))


inbound.connect(on_inbound, weak=False)


def dechunk(app):
    """wsgiref does not decode a chunked request body (it has no
    Content-Length, so Django would read nothing); decode it here the way a
    production server would, so a chunked POST still works."""

    def wrapped(environ, start_response):
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            stream = environ["wsgi.input"]
            body = bytearray()
            while True:
                size_line = stream.readline()
                if not size_line:
                    break
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while stream.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                body += stream.read(size)
                stream.readline()  # CRLF after the chunk
            environ["wsgi.input"] = io.BytesIO(bytes(body))
            environ["CONTENT_LENGTH"] = str(len(body))
            del environ["HTTP_TRANSFER_ENCODING"]
        return app(environ, start_response)

    return wrapped


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Handler(WSGIRequestHandler):
    def log_message(self, format, *args):  # stderr, as wsgiref does
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def main():
    # SendGrid's view warns on every request that anymail dropped official
    # SendGrid support; the insecure-webhook warning appears when no
    # ANYMAIL_WEBHOOK_SECRET is set. Both go to stderr, once each.
    warnings.simplefilter("once")
    server = make_server(
        "127.0.0.1", 0, dechunk(get_wsgi_application()),
        server_class=ThreadingWSGIServer, handler_class=Handler,
    )
    sys.stdout.write("listening %d\n" % server.server_port)
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
