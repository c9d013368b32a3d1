#!/usr/bin/env bash
# Self-test of tests/anymail/receiver.py with hand-made posts (curl), no Rust.
# Prints each answer's status and the receiver's stdout lines.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$HOME/.cache/mailroom/anymail-venv"
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet -r "$here/requirements.txt"; }

work="$(mktemp -d)"
export ANYMAIL_WEBHOOK_SECRET="hook:s3cret"
export MAILGUN_WEBHOOK_SIGNING_KEY="key-mailroom-test"
"$venv/bin/python" "$here/receiver.py" >"$work/out" 2>"$work/err" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q '^listening ' "$work/out" 2>/dev/null && break; sleep 0.1; done
port="$(sed -n 's/^listening //p' "$work/out")"
base="http://127.0.0.1:$port"
auth="hook:s3cret"
post() { curl -s -o /dev/null -w "%{http_code}" -H 'Expect:' "$@"; }
fail=0
expect() { # expect CODE NAME CURL-ARGS...
  local want="$1" name="$2"; shift 2
  local got; got="$(post "$@")"
  echo "$name: HTTP $got"
  [ "$got" = "$want" ] || { echo "  expected $want"; fail=1; }
}

# --- Postmark (JSON, parsed fields) ---
cat >"$work/postmark.json" <<'EOF'
{"FromName":"Zoë Sender","MessageStream":"inbound","From":"zoe@example.org",
 "FromFull":{"Email":"zoe@example.org","Name":"Zoë Sender","MailboxHash":""},
 "To":"app@in.example.com","ToFull":[{"Email":"app@in.example.com","Name":"App","MailboxHash":""}],
 "Cc":"","CcFull":[],"Bcc":"","BccFull":[],
 "OriginalRecipient":"app@in.example.com","Subject":"Grüße — test",
 "MessageID":"22c74902-a0c1-4511-804f-341342852c90","ReplyTo":"","MailboxHash":"",
 "Date":"Fri, 1 Aug 2025 16:45:32 -0400","TextBody":"Héllo text","HtmlBody":"<p>Héllo <img src=\"cid:logo@x\"></p>",
 "StrippedTextReply":"Héllo","Tag":"",
 "Headers":[{"Name":"Return-Path","Value":"<bounce@example.org>"},
            {"Name":"X-Spam-Status","Value":"No"},{"Name":"X-Spam-Score","Value":"-0.1"},
            {"Name":"Message-ID","Value":"<abc@example.org>"},{"Name":"X-Custom","Value":"ünï"}],
 "Attachments":[{"Name":"a.txt","Content":"aGVsbG8=","ContentType":"text/plain","ContentLength":5},
                {"Name":"logo.png","Content":"iVBORw0K","ContentType":"image/png","ContentLength":6,"ContentID":"logo@x"}]}
EOF
expect 200 "postmark" -u "$auth" -H 'Content-Type: application/json' --data-binary @"$work/postmark.json" "$base/postmark"
expect 400 "postmark wrong auth" -u "hook:wrong" -H 'Content-Type: application/json' --data-binary @"$work/postmark.json" "$base/postmark"
expect 400 "postmark no auth" -H 'Content-Type: application/json' --data-binary @"$work/postmark.json" "$base/postmark"

# --- Mailgun forward(), parsed fields ---
ts=1754000000; token=0123456789abcdef0123456789abcdef0123456789abcdef01
sig="$(printf '%s%s' "$ts" "$token" | openssl dgst -sha256 -hmac "$MAILGUN_WEBHOOK_SIGNING_KEY" -r | cut -d' ' -f1)"
printf 'attached bytes\n' >"$work/note.txt"
printf '\x89PNG\r\n\x1a\n' >"$work/logo.png"
headers='[["Received","by mx.example.com"],["From","Zoë <zoe@example.org>"],["To","App <app@in.example.com>"],["Cc","c@example.net"],["Subject","Grüße mailgun"],["Date","Fri, 01 Aug 2025 16:45:32 +0000"],["Message-Id","<m1@example.org>"],["Content-Type","multipart/mixed; boundary=\"xyz\""],["Mime-Version","1.0"],["X-Mailgun-Sflag","No"],["X-Mailgun-Sscore","0.5"]]'
mg=(-u "$auth"
  --form-string "recipient=app@in.example.com" --form-string "sender=bounce@example.org" --form-string "from=Zoë <zoe@example.org>"
  --form-string "subject=Grüße mailgun" --form-string "body-plain=Héllo plain" --form-string "body-html=<p>Héllo <img src=\"cid:logo@x\"></p>"
  --form-string "stripped-text=Héllo" --form-string "stripped-html=<p>Héllo</p>" --form-string "stripped-signature="
  --form-string "message-headers=$headers" -F "attachment-count=2"
  --form-string "content-id-map={\"<logo@x>\": \"attachment-2\"}"
  -F "attachment-1=@$work/note.txt;type=text/plain" -F "attachment-2=@$work/logo.png;type=image/png"
  --form-string "timestamp=$ts" --form-string "token=$token")
expect 200 "mailgun parsed" "${mg[@]}" --form-string "signature=$sig" "$base/mailgun"
expect 400 "mailgun wrong signature" "${mg[@]}" --form-string "signature=${sig/a/b}0" "$base/mailgun"
expect 400 "mailgun no auth" --form-string "recipient=x@y" --form-string "timestamp=$ts" --form-string "token=$token" --form-string "signature=$sig" --form-string "message-headers=[]" "$base/mailgun"

# --- Mailgun forward(), body-mime ---
cat >"$work/raw.eml" <<'EOF'
Return-Path: <bounce@example.org>
From: =?utf-8?q?Zo=C3=AB?= <zoe@example.org>
To: App <app@in.example.com>
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_raw?=
Date: Fri, 01 Aug 2025 16:45:32 +0000
Message-ID: <raw1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Héllo raw
--b1
Content-Type: application/octet-stream; name="x.bin"
Content-Disposition: attachment; filename="x.bin"
Content-Transfer-Encoding: base64

AAECAw==
--b1--
EOF
expect 200 "mailgun body-mime" -u "$auth" --form-string "recipient=app@in.example.com" --form-string "sender=bounce@example.org" \
  -F "body-mime=<$work/raw.eml" --form-string "timestamp=$ts" --form-string "token=$token" --form-string "signature=$sig" "$base/mailgun"

# --- SendGrid Inbound Parse, parsed ---
sghead=$'Received: by mx.sendgrid.net\nFrom: =?utf-8?q?Zo=C3=AB?= <zoe@example.org>\nTo: app@in.example.com\nSubject: Grüße sendgrid\nDate: Fri, 01 Aug 2025 16:45:32 +0000\nMessage-ID: <sg1@example.org>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="q"\n'
expect 200 "sendgrid parsed" -u "$auth" --form-string "headers=$sghead" --form-string "dkim={@example.org : pass}" \
  --form-string "to=app@in.example.com" --form-string "from=Zoë <zoe@example.org>" --form-string "subject=Grüße sendgrid" \
  --form-string "text=Héllo sg" --form-string "html=<p>Héllo sg</p>" --form-string "sender_ip=192.0.2.1" --form-string "spam_score=1.5" \
  --form-string 'envelope={"to":["app@in.example.com"],"from":"bounce@example.org"}' \
  --form-string 'charsets={"to":"UTF-8","html":"utf-8","subject":"UTF-8","from":"UTF-8","text":"utf-8"}' \
  --form-string "attachments=2" \
  --form-string 'attachment-info={"attachment1":{"filename":"note.txt","name":"note.txt","type":"text/plain"},"attachment2":{"filename":"logo.png","name":"logo.png","type":"image/png","content-id":"logo@x"}}' \
  -F "attachment1=@$work/note.txt;type=text/plain" -F "attachment2=@$work/logo.png;type=image/png" \
  "$base/sendgrid"
# --- SendGrid, charsets other than utf-8 (text posted as ISO-8859-1 bytes) ---
printf 'H\xe9llo latin1' >"$work/latin1.txt"
expect 200 "sendgrid latin1 text" -u "$auth" --form-string "headers=$sghead" -F "text=<$work/latin1.txt" \
  --form-string 'charsets={"text":"iso-8859-1"}' "$base/sendgrid"
# --- SendGrid Inbound Parse, raw (email) ---
expect 200 "sendgrid raw" -u "$auth" -F "email=<$work/raw.eml" --form-string "to=app@in.example.com" \
  --form-string 'envelope={"to":["app@in.example.com"],"from":"bounce@example.org"}' --form-string 'charsets={"to":"UTF-8"}' \
  "$base/sendgrid"
expect 500 "sendgrid neither headers nor email" -u "$auth" --form-string "text=x" "$base/sendgrid"

sleep 0.3
echo "--- receiver stdout ---"
cat "$work/out"
n_events="$(grep -c '"provider"' "$work/out" || true)"
echo "events: $n_events"
[ "$n_events" = 6 ] || fail=1
if [ "$fail" = 0 ]; then echo "selftest: 1 passed, 0 failed"; else echo "selftest: 0 passed, 1 failed"; exit 1; fi
