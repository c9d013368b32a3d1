#!/usr/bin/env python3
"""Generates Mailroom's benchmark corpora, deterministically (fixed seeds), under bench/data/.

Sets (all CRLF, as SES stores mail):
  small/   1,000 x ~3 KB plain-text messages with SES trace headers, some quoted-printable, some replies
  medium/    200 x ~200 KB multipart/mixed messages: text + html + 1-3 base64 attachments of various types,
             some with non-ASCII file names (RFC 2231 and RFC 2047)
  large/       5 x 14 MB messages: text + one big base64 attachment
  xl/          1 x 40 MB message (SES's ceiling): text + html + one ~29.5 MB base64 attachment, 76 columns
  hostile/     5,000-deep nested multipart, 100,000 parts, 300,000 RFC 2047 encoded words in one header,
             200,000 header fields, one 10 MB header line

Usage: python3 bench/gen_corpus.py [--out bench/data] [--force]
Files that already exist are kept unless --force is given; a set is regenerated whole when its count differs.
"""

import argparse
import base64
import email.utils
import os
import random
import re
import sys
import urllib.parse
from pathlib import Path

CRLF = b"\r\n"

WORDS = (
    "the order invoice shipment account please thanks meeting tomorrow attached report quarter review "
    "customer support ticket update schedule delivery payment receipt project deadline draft version "
    "team office budget forecast contract signature password reset confirm subscription renewal plan "
    "server deploy release notes feedback question answer issue status pending approved rejected call "
    "week monday friday morning afternoon evening regards best hello hi dear kind sincerely cheers "
    "warehouse logistics pallet container customs invoice net total amount due balance credit refund"
).split()
NON_ASCII_WORDS = ["café", "naïve", "Zürich", "São Paulo", "résumé", "Straße", "Ελλάδα", "東京", "Kraków", "Øresund"]
FIRST = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory",
         "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Jörg", "Zoë", "Łukasz"]
LAST = ["Smith", "Johnson", "Müller", "García", "Rossi", "Dubois", "Nakamura", "Kowalski", "Olsen", "Brown"]
DOMAINS = ["sender.example", "mail.example.org", "customer.example.net", "shop.example.com", "corp.example"]
MX = ["mail-wr1-f54.google.com", "mail-ej1-f41.google.com", "mx.mail.example.org", "smtp.example.net",
      "outbound.protection.example.com"]

ATTACHMENT_TYPES = [
    ("application/pdf", "pdf"), ("image/png", "png"), ("image/jpeg", "jpg"), ("application/zip", "zip"),
    ("text/csv", "csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    ("application/msword", "doc"), ("text/calendar", "ics"), ("application/octet-stream", "bin"),
]
ASCII_STEMS = ["report", "invoice_2024_06", "scan0001", "photo", "contract-signed", "data export", "notes",
               "meeting", "backup", "statement"]
NON_ASCII_STEMS = ["Résumé Jörg", "Rechnung für Müller", "東京の写真", "Ελληνικά έγγραφα", "Zoë's café menu",
                   "Kraków – plan", "Øresund broen", "naïve-test"]


def sentence(rng, n=None):
    n = n or rng.randint(6, 16)
    words = [rng.choice(WORDS) for _ in range(n)]
    if rng.random() < 0.15:
        words[rng.randrange(n)] = rng.choice(NON_ASCII_WORDS)
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice([".", ".", ".", "?", "!"])


def paragraph(rng, sentences=None):
    return " ".join(sentence(rng) for _ in range(sentences or rng.randint(2, 5)))


def wrap(text, width=72):
    out, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        out.append(line)
    return out


def person(rng):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = (first + "." + last).lower().encode("ascii", "ignore").decode() or "user"
    return f"{first} {last}", f"{local}@{rng.choice(DOMAINS)}"


def encode_word(text, rng=None):
    """RFC 2047: plain ASCII stays, anything else becomes a UTF-8 B or Q encoded word."""
    if text.isascii():
        return text
    if rng is not None and rng.random() < 0.5:
        q = "".join(
            c if c.isascii() and c.isalnum() else ("_" if c == " " else "".join(f"={b:02X}" for b in c.encode()))
            for c in text
        )
        return f"=?UTF-8?Q?{q}?="
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def address_header(rng, name, addr):
    return f'{encode_word(name, rng)} <{addr}>'


def qp_encode(text):
    """Quoted-printable with soft line breaks at 76 columns, CRLF line ends."""
    out = []
    for line in text.split("\n"):
        enc = ""
        for ch in line:
            for b in ch.encode("utf-8"):
                if (33 <= b <= 126 and b != 61) or b == 32:
                    enc += chr(b)
                else:
                    enc += f"={b:02X}"
        if enc.endswith(" "):
            enc = enc[:-1] + "=20"
        while len(enc) > 75:
            cut = 75
            # never split an =XX escape
            if "=" in enc[cut - 2:cut]:
                cut = enc.rfind("=", cut - 2, cut)
            out.append(enc[:cut] + "=")
            enc = enc[cut:]
        out.append(enc)
    return "\r\n".join(out)


def b64_wrapped(data):
    """base64 in 76-column lines, CRLF."""
    return base64.encodebytes(data).replace(b"\n", CRLF)


def ses_trace_headers(rng, rcpt, sender, when):
    mx = rng.choice(MX)
    ip = f"209.85.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
    smtp_id = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(40))
    date = email.utils.format_datetime(when)
    domain = sender.split("@")[1]
    receipt = base64.b64encode(rng.randbytes(120)).decode()
    ses_sig = base64.b64encode(rng.randbytes(128)).decode()
    lines = [
        f"Return-Path: <{sender}>",
        f"Received: from {mx} ({mx} [{ip}])",
        f" by inbound-smtp.us-east-1.amazonaws.com with SMTP id {smtp_id}",
        f" for {rcpt};",
        f" {date}",
        "X-SES-Spam-Verdict: PASS",
        "X-SES-Virus-Verdict: PASS",
        f"Received-SPF: pass (spfCheck: domain of {domain} designates {ip} as permitted sender)"
        f" client-ip={ip}; envelope-from={sender}; helo={mx};",
        "Authentication-Results: amazonses.com;",
        f" spf=pass (spfCheck: domain of {domain} designates {ip} as permitted sender)"
        f" client-ip={ip}; envelope-from={sender}; helo={mx};",
        f" dkim=pass header.i=@{domain};",
        f" dmarc=pass header.from={domain};",
        f"X-SES-RECEIPT: {receipt}",
        f"X-SES-DKIM-SIGNATURE: a=rsa-sha256; q=dns/txt; b={ses_sig}; c=relaxed/simple;",
        " s=224i4yxa5dv7c2xz3womw6peuasteono; d=amazonses.com; t=1717409732; v=1;",
        f" bh={base64.b64encode(rng.randbytes(32)).decode()}; h=From:To:Cc:Bcc:Subject:Date:Message-ID:MIME-Version:Content-Type:X-SES-RECEIPT;",
    ]
    dkim_b = base64.b64encode(rng.randbytes(256)).decode()
    lines.append(
        f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=20230601; t=1717409731;"
    )
    lines.append(" x=1718014531; h=to:subject:message-id:date:from:mime-version:from:to:cc:subject")
    lines.append(f"  :date:message-id:reply-to; bh={base64.b64encode(rng.randbytes(32)).decode()};")
    for i in range(0, len(dkim_b), 70):
        lines.append("  " + ("b=" if i == 0 else "") + dkim_b[i:i + 70])
    return lines


def when_of(rng):
    import datetime
    base = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    return base + datetime.timedelta(seconds=rng.randrange(180 * 86400))


def message_headers(rng, index, subject_words=None):
    when = when_of(rng)
    rcpt = f"support+{index % 7}@inbox.example.com" if rng.random() < 0.3 else "support@inbox.example.com"
    name, sender = person(rng)
    lines = ses_trace_headers(rng, rcpt, sender, when)
    subject = sentence(rng, subject_words or rng.randint(3, 9)).rstrip(".?!")
    if rng.random() < 0.2:
        subject = "Re: " + subject
    lines += [
        "MIME-Version: 1.0",
        f"From: {address_header(rng, name, sender)}",
        f"Date: {email.utils.format_datetime(when)}",
        f"Message-ID: <{rng.getrandbits(64):016x}.{index}@{sender.split('@')[1]}>",
        f"Subject: {encode_word(subject, rng)}",
        f"To: Support <{rcpt}>",
    ]
    if rng.random() < 0.3:
        cc_name, cc = person(rng)
        lines.append(f"Cc: {address_header(rng, cc_name, cc)}")
    return lines, name, sender, when


def small_message(rng, index):
    lines, name, sender, when = message_headers(rng, index)
    reply = rng.random() < 0.4
    paragraphs = [f"Hi {rng.choice(FIRST)},"]
    body_target = rng.randint(250, 700)
    while sum(len(p) for p in paragraphs) < body_target:
        paragraphs.append("\n".join(wrap(paragraph(rng, rng.randint(1, 3)))))
    paragraphs.append(f"Best regards,\n{name}")
    text = "\n\n".join(paragraphs)
    if reply:
        qname, qaddr = person(rng)
        quoted = "\n".join(wrap(paragraph(rng, rng.randint(2, 4))))
        text += (f"\n\nOn {email.utils.format_datetime(when)}, {qname} <{qaddr}> wrote:\n"
                 + "\n".join("> " + l if l else ">" for l in quoted.split("\n")))
        lines.append(f"In-Reply-To: <{rng.getrandbits(64):016x}@{qaddr.split('@')[1]}>")
        lines.append(f"References: <{rng.getrandbits(64):016x}@{qaddr.split('@')[1]}>")
    if text.isascii() and rng.random() < 0.5:
        lines += ['Content-Type: text/plain; charset="us-ascii"', "Content-Transfer-Encoding: 7bit"]
        body = text.replace("\n", "\r\n")
    else:
        lines += ['Content-Type: text/plain; charset="UTF-8"', "Content-Transfer-Encoding: quoted-printable"]
        body = qp_encode(text)
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode("utf-8")


def html_of(text):
    import html
    paras = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>\n" for p in text.split("\n\n"))
    return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><style>p{font-family:Arial,sans-serif;'
            'font-size:14px;color:#222}</style></head>\n<body>\n' + paras + "</body></html>\n")


def attachment_name_params(rng, ctype, ext):
    """Content-Type name param and Content-Disposition filename param, ASCII or RFC 2231 / RFC 2047."""
    kind = rng.random()
    if kind < 0.55:
        fname = f"{rng.choice(ASCII_STEMS)}.{ext}"
        return f'; name="{fname}"', f'; filename="{fname}"'
    fname = f"{rng.choice(NON_ASCII_STEMS)}.{ext}"
    if kind < 0.8:
        # RFC 2231, split into continuations when long
        enc = urllib.parse.quote(fname.encode("utf-8"), safe="")
        if len(enc) > 40:
            # continuations split between escapes, never inside a %XX
            pieces, piece = [], ""
            for token in re.findall(r"%[0-9A-F]{2}|.", enc):
                if len(piece) + len(token) > 40:
                    pieces.append(piece)
                    piece = ""
                piece += token
            pieces.append(piece)
            disp = "".join(
                f";\r\n filename*{i}*=" + ("UTF-8''" if i == 0 else "") + p for i, p in enumerate(pieces)
            )
        else:
            disp = f";\r\n filename*=UTF-8''{enc}"
        return f'; name="{encode_word(fname)}"', disp
    word = encode_word(fname, rng)
    return f';\r\n name="{word}"', f';\r\n filename="{word}"'


def attachment_content(rng, ctype, size):
    if ctype.startswith("text/"):
        rows = []
        total = 0
        while total < size:
            row = ",".join([str(rng.randint(1, 99999)), rng.choice(WORDS), rng.choice(NON_ASCII_WORDS),
                            f"{rng.random() * 1000:.2f}"]) + "\r\n"
            rows.append(row)
            total += len(row.encode())
        return "".join(rows).encode("utf-8")[:size]
    return rng.randbytes(size)


def attachment_part(rng, ctype, ext, size, inline_cid=None):
    name_param, disp_param = attachment_name_params(rng, ctype, ext)
    head = [f"Content-Type: {ctype}{name_param}"]
    if inline_cid:
        head += [f"Content-Disposition: inline{disp_param}", f"Content-ID: <{inline_cid}>"]
    else:
        head.append(f"Content-Disposition: attachment{disp_param}")
    head.append("Content-Transfer-Encoding: base64")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + b64_wrapped(attachment_content(rng, ctype, size))


def multipart_message(rng, index, attachments, html=True):
    """attachments: list of (ctype, ext, decoded_size, cid or None). Returns bytes."""
    lines, name, sender, when = message_headers(rng, index)
    mixed = f"----=_Part_{rng.getrandbits(48):012x}_mixed"
    alt = f"----=_Part_{rng.getrandbits(48):012x}_alt"
    text = "\n\n".join(["Hello,"] + ["\n".join(wrap(paragraph(rng))) for _ in range(rng.randint(3, 6))]
                       + [f"Kind regards,\n{name}"])
    lines += [f'Content-Type: multipart/mixed; boundary="{mixed}"']
    out = [("\r\n".join(lines) + "\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n").encode()]
    out.append(f"--{mixed}\r\n".encode())
    if html:
        out.append(f'Content-Type: multipart/alternative; boundary="{alt}"\r\n\r\n--{alt}\r\n'.encode())
    out.append(b'Content-Type: text/plain; charset="UTF-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n')
    out.append(qp_encode(text).encode() + CRLF)
    if html:
        out.append(f'--{alt}\r\nContent-Type: text/html; charset="UTF-8"\r\n'
                   'Content-Transfer-Encoding: quoted-printable\r\n\r\n'.encode())
        out.append(qp_encode(html_of(text)).encode() + CRLF)
        out.append(f"--{alt}--\r\n".encode())
    for ctype, ext, size, cid in attachments:
        out.append(f"\r\n--{mixed}\r\n".encode())
        out.append(attachment_part(rng, ctype, ext, size, cid))
    out.append(f"\r\n--{mixed}--\r\n".encode())
    return b"".join(out)


def b64_len(n):
    """Bytes of base64_wrapped(n bytes): 4 chars per 3 bytes, CRLF after each 76 chars (and the last line)."""
    chars = (n + 2) // 3 * 4
    return chars + (chars + 75) // 76 * 2


def medium_message(rng, index):
    target = rng.randint(190_000, 210_000)
    count = rng.choice([1, 1, 2, 2, 3])
    shape = []
    weights = [rng.random() + 0.2 for _ in range(count)]
    for i in range(count):
        ctype, ext = rng.choice(ATTACHMENT_TYPES)
        cid = f"img{index}.{i}@mail.example" if ctype.startswith("image/") and rng.random() < 0.3 else None
        shape.append((ctype, ext, cid))
    # a pass without attachments tells the overhead; the attachments fill the rest
    seed = rng.random()
    overhead = len(multipart_message(random.Random(seed), index, [])) + count * 400
    budget = max(target - overhead, 10_000)
    decoded_total = budget * 3 // 4 * 76 // 78
    sizes = [max(1000, int(decoded_total * w / sum(weights))) for w in weights]
    atts = [(ct, ext, size, cid) for (ct, ext, cid), size in zip(shape, sizes)]
    return multipart_message(random.Random(seed), index, atts)


def sized_message(rng, index, total, html, ctype, ext):
    """One big base64 attachment sized so the whole message is about `total` bytes."""
    seed = rng.random()
    overhead = len(multipart_message(random.Random(seed), index, [], html=html)) + 600
    # the largest decoded size whose wrapped base64 fits in what is left
    lo, hi = 0, total
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if b64_len(mid) <= total - overhead:
            lo = mid
        else:
            hi = mid - 1
    return multipart_message(random.Random(seed), index, [(ctype, ext, lo, None)], html=html)


# ---------------------------------------------------------------- hostile inputs

def hostile_head(subject, extra=()):
    return ("\r\n".join([
        "Return-Path: <attacker@evil.example>",
        "From: Attacker <attacker@evil.example>",
        "To: support@inbox.example.com",
        f"Subject: {subject}",
        "Date: Mon, 03 Jun 2024 10:15:32 +0000",
        "Message-ID: <hostile@evil.example>",
        "MIME-Version: 1.0",
        *extra,
    ]) + "\r\n").encode()


def deep_nesting(depth=5000):
    out = [hostile_head("5000-deep multipart", ['Content-Type: multipart/mixed; boundary="b0"']), b"\r\n"]
    for level in range(depth):
        out.append(f"--b{level}\r\n".encode())
        if level + 1 < depth:
            out.append(f'Content-Type: multipart/mixed; boundary="b{level + 1}"\r\n\r\n'.encode())
        else:
            out.append(b"Content-Type: text/plain\r\n\r\nthe bottom\r\n")
    for level in reversed(range(depth)):
        out.append(f"--b{level}--\r\n".encode())
    return b"".join(out)


def many_parts(parts=100_000):
    out = [hostile_head("100000 parts", ['Content-Type: multipart/mixed; boundary="p"']), b"\r\n"]
    for i in range(parts):
        if i % 2:
            out.append(f'--p\r\nContent-Type: application/octet-stream; name="f{i}.bin"\r\n'
                       f"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n".encode())
        else:
            out.append(f"--p\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n".encode())
    out.append(b"--p--\r\n")
    return b"".join(out)


def encoded_words(count=300_000):
    words = []
    samples = [
        "=?UTF-8?Q?caf=C3=A9?=", "=?UTF-8?B?w6lnYWw=?=", "=?ISO-8859-1?Q?Z=FCrich?=",
        "=?utf-8?q?na=C3=AFve?=", "=?UTF-8?B?5p2x5Lqs?=", "=?iso-8859-2?Q?Krak=F3w?=",
    ]
    for i in range(count):
        words.append(samples[i % len(samples)])
    # several words per folded line, as a sender packing a header would
    lines = [" ".join(words[i:i + 3]) for i in range(0, len(words), 3)]
    subject = "\r\n ".join(lines)
    return hostile_head(subject, ["Content-Type: text/plain"]) + b"\r\nbody\r\n"


def many_headers(count=200_000):
    fields = "".join(f"X-Filler-{i:06d}: value number {i} of many\r\n" for i in range(count))
    return hostile_head("200000 header fields") + fields.encode() + b"Content-Type: text/plain\r\n\r\nbody\r\n"


def long_header_line(size=10 * 1024 * 1024):
    rng = random.Random(10)
    chunk = " ".join(rng.choice(WORDS) for _ in range(2000)).encode()
    line = (chunk + b" ") * (size // (len(chunk) + 1) + 1)
    line = line[:size]
    return hostile_head("one 10 MB header line") + b"X-Long: " + line + b"\r\nContent-Type: text/plain\r\n\r\nbody\r\n"


# ---------------------------------------------------------------- driver

def write_set(out, name, count, make, force):
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("*.eml"))
    if not force and len(existing) == count:
        print(f"{name}: {count} file(s) already there, kept")
        return
    for f in existing:
        f.unlink()
    total = 0
    for i in range(count):
        path, data = make(i)
        (folder / path).write_bytes(data)
        total += len(data)
    print(f"{name}: {count} file(s), {total:,} bytes, mean {total // count:,} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "data"))
    ap.add_argument("--force", action="store_true", help="regenerate even what exists")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    small_rng = random.Random(20240601)
    write_set(out, "small", 1000, lambda i: (f"small_{i:04d}.eml", small_message(small_rng, i)), args.force)

    medium_rng = random.Random(20240602)
    write_set(out, "medium", 200, lambda i: (f"medium_{i:03d}.eml", medium_message(medium_rng, i)), args.force)

    large_rng = random.Random(20240603)
    large_types = [("application/zip", "zip"), ("video/mp4", "mp4"), ("application/pdf", "pdf"),
                   ("image/tiff", "tif"), ("application/octet-stream", "bin")]
    write_set(out, "large", 5, lambda i: (f"large_{i}.eml", sized_message(
        large_rng, i, 14_000_000, False, *large_types[i])), args.force)

    xl_rng = random.Random(20240604)
    write_set(out, "xl", 1, lambda i: ("ses_max_40mb.eml", sized_message(
        xl_rng, i, 40_000_000, True, "application/pdf", "pdf")), args.force)

    hostile = [
        ("deep_nesting_5000.eml", deep_nesting),
        ("parts_100000.eml", many_parts),
        ("encoded_words_300000.eml", encoded_words),
        ("header_fields_200000.eml", many_headers),
        ("header_line_10mb.eml", long_header_line),
    ]
    write_set(out, "hostile", len(hostile), lambda i: (hostile[i][0], hostile[i][1]()), args.force)


if __name__ == "__main__":
    sys.exit(main())
