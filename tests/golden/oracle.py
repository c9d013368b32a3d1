#!/usr/bin/env python3
"""Independent oracle for the golden JSON payloads.

Usage:
    oracle.py show    MESSAGE.eml            print the oracle's view as JSON
    oracle.py compare MESSAGE.eml GOLDEN.json print every difference, field by field
    oracle.py all     CORPUS_DIR GOLDEN_DIR   compare every golden file

The oracle is built on Python's standard `email` package (policy.default, with
policy.compat32 as a fallback) plus a few small helpers of its own where the
package is not faithful to the bytes or to the RFCs:

* headers: a field name is printable ASCII without space or colon; other
  lines of the header block (mbox "From " lines, broken folds) are reported
  and left out. The raw value of every field is unfolded and RFC 2047 decoded
  by our own decoder (`decode_words`). Two unfoldings are computed: the
  RFC 5322 one (line break removed, whitespace kept) and the collapsed one
  (a fold and the whitespace around it become one space); a value that only
  matches the collapsed form is reported as a note, not a difference.
  Python's own rendering (str(msg[name])) is shown when it disagrees.
* Python stops the header section at the first non-field line and takes the
  rest as body, so it is given only the real fields.
* quoted-printable: our own decoder (`qp_decode`), which removes trailing
  transport whitespace as RFC 2045 6.7 requires (Python's keeps it).
* message/rfc822 parts: Python parses them into a sub-message and cannot give
  back the original bytes, so a tiny raw MIME splitter (`raw_tree`) walks the
  same boundaries on the bytes and the leaf is paired by position.
* a multipart container without any part (no boundary found) is not a leaf:
  it is reported, never listed as an attachment.
* bodies: the first text/plain and the first text/html leaf of the message's
  own tree that is not Content-Disposition: attachment (message/* parts are
  never entered); every other leaf is an attachment, in document order.
* disposition: the Content-Disposition type; when the header is absent,
  "inline" if the part has a Content-ID, else "attachment".

Known limits (checked by hand in REVIEW.md): Python gives up on a
Content-Type without ";" before its parameters, on unquoted parameter values
holding an encoded word, and on base64 whose length is 1 modulo 4 (it then
returns the undecoded text). The envelope, reply_plain and warnings are ours
only: they are printed for manual reading.
"""

import base64
import binascii
import codecs
import hashlib
import json
import os
import re
import sys
from email import policy
from email.parser import BytesParser

# --------------------------------------------------------------------------
# charsets

CHARSET_ALIASES = {
    "utf8": "utf-8",
    "x-unknown": None,
    "unknown-8bit": None,
    "iso-8859-8-i": "iso-8859-8",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift-jis": "shift_jis",
    "x-sjis": "shift_jis",
    "windows-874": "cp874",
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
}


def py_codec(charset):
    """Map a MIME charset label to a Python codec name, or None if unknown."""
    if not charset:
        return None
    cs = charset.strip().strip('"').lower()
    if "*" in cs:  # RFC 2231 language suffix in encoded words
        cs = cs.split("*", 1)[0]
    if cs in CHARSET_ALIASES:
        return CHARSET_ALIASES[cs]
    try:
        return codecs.lookup(cs).name
    except LookupError:
        return None


def decode_bytes(data, charset, fallback="utf-8"):
    """Decode bytes from charset; report what was done."""
    codec = py_codec(charset)
    if codec is None:
        codec = fallback
    try:
        return data.decode(codec), codec, True
    except UnicodeDecodeError:
        return data.decode(codec, errors="replace"), codec, False


# --------------------------------------------------------------------------
# RFC 2047

EW = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _decode_one(enc, text):
    """Bytes of one encoded word's payload, or None if it cannot be decoded."""
    if enc in b"bB":
        t = text + b"=" * (-len(text) % 4)
        try:
            return base64.b64decode(t, validate=False)
        except (binascii.Error, ValueError):
            return None
    return re.sub(
        rb"=([0-9A-Fa-f]{2})",
        lambda m: bytes([int(m.group(1), 16)]),
        text.replace(b"_", b" "),
    )


def plain_text(b):
    """Text outside encoded words: UTF-8 if valid, else latin-1."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("latin-1")


def decode_words(value):
    """Decode RFC 2047 encoded words in an (unfolded) header value.

    Works on bytes (a str is turned back into bytes first). Whitespace between
    two adjacent encoded words is dropped; adjacent words in the same charset
    are joined at the byte level before decoding (so a multi-byte character
    split over two words survives).
    """
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    out = []  # ("text", bytes) or ("ew", bytes, charset)
    pos = 0
    for m in EW.finditer(value):
        between = value[pos:m.start()]
        dec = _decode_one(m.group(2), m.group(3))
        if dec is None:
            out.append(("text", between + m.group(0)))
            pos = m.end()
            continue
        if out and out[-1][0] == "ew" and between.strip(b" \t") == b"":
            between = b""
        if between:
            out.append(("text", between))
        out.append(("ew", dec, m.group(1).decode("latin-1")))
        pos = m.end()
    out.append(("text", value[pos:]))
    merged = []
    for item in out:
        if (
            item[0] == "ew"
            and merged
            and merged[-1][0] == "ew"
            and py_codec(merged[-1][2]) == py_codec(item[2])
        ):
            merged[-1] = ("ew", merged[-1][1] + item[1], item[2])
        else:
            merged.append(item)
    res = []
    for item in merged:
        if item[0] == "text":
            res.append(plain_text(item[1]))
        else:
            res.append(decode_bytes(item[1], item[2])[0])
    return "".join(res)


# --------------------------------------------------------------------------
# raw header block


def split_head_body(raw):
    """Split at the first empty line. Returns (head_bytes, body_bytes)."""
    m = re.search(rb"\r?\n\r?\n", raw)
    if raw.startswith(b"\r\n") or raw.startswith(b"\n"):
        return b"", raw[2:] if raw.startswith(b"\r\n") else raw[1:]
    if not m:
        return raw, b""
    return raw[: m.start()], raw[m.end():]


FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:")


def raw_headers(head, skipped=None):
    """List of (name, raw_value_bytes) from a header block, folding kept.

    A field name is printable US-ASCII without space or colon (RFC 5322
    2.2); whitespace before the colon is the obsolete syntax of RFC 5322
    4.5 and is accepted. Any other line (an mbox "From " separator, a line
    without a colon, a continuation line with no field before it) is not a
    header field: it is left out and recorded in `skipped`.
    """
    res = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t"):
            if res:
                res[-1][1].append(line)
            elif skipped is not None:
                skipped.append(line)
            continue
        m = FIELD.match(line)
        if not m:
            if skipped is not None and line:
                skipped.append(line)
            continue
        res.append((m.group(1), [line[m.end():]]))
    return [(n, b"\r\n".join(v)) for n, v in res]


def unfold(value_bytes):
    """RFC 5322 unfolding: remove the line break, keep the whitespace."""
    return re.sub(rb"\r?\n(?=[ \t])", b"", value_bytes)


def unfold_collapsed(value_bytes):
    """Common convention: a fold and the whitespace around it become one space."""
    return re.sub(rb"[ \t]*\r?\n[ \t]+", b" ", value_bytes)


def header_text(value_bytes, collapse=False):
    """Unfolded, raw bytes decoded (UTF-8, else latin-1), then RFC 2047."""
    f = unfold_collapsed if collapse else unfold
    return decode_words(f(value_bytes).strip(b" \t\r\n"))


# --------------------------------------------------------------------------
# raw MIME splitter (only used to recover raw bytes of message/* leaves)


def _param(ctype_value, name):
    m = re.search(
        r";\s*" + name + r'\s*=\s*("((?:[^"\\]|\\.)*)"|[^;\s]+)', ctype_value, re.I
    )
    if not m:
        return None
    return m.group(2) if m.group(2) is not None else m.group(1)


def raw_tree(raw):
    """Return a nested structure of the raw entity: dict(ctype, body, children)."""
    head, body = split_head_body(raw)
    hdrs = {n.decode("latin-1").lower(): unfold(v).decode("latin-1") for n, v in raw_headers(head)[::-1]}
    ctype = hdrs.get("content-type", "text/plain").split(";")[0].strip().lower()
    node = {"ctype": ctype, "body": body, "children": []}
    if ctype.startswith("multipart/"):
        b = _param(hdrs.get("content-type", ""), "boundary")
        if b:
            delim = re.compile(rb"(?:^|\r?\n)--" + re.escape(b.encode("latin-1")) + rb"(--)?[ \t]*(?=\r?\n|$)")
            pieces = []
            last = None
            for m in delim.finditer(body):
                if last is not None:
                    pieces.append(body[last:m.start()])
                if m.group(1):
                    last = None
                    break
                nl = re.compile(rb"\r?\n").match(body, m.end())
                last = nl.end() if nl else m.end()
            if last is not None:
                pieces.append(body[last:])
            node["children"] = [raw_tree(p) for p in pieces]
    return node


# --------------------------------------------------------------------------
# the oracle's view of a message


def parse(raw):
    try:
        return BytesParser(policy=policy.default).parsebytes(raw), "default"
    except Exception:  # pragma: no cover - fall back for robustness
        return BytesParser(policy=policy.compat32).parsebytes(raw), "compat32"


def header_key(name):
    return name.lower().replace("-", "_")


def py_header_str(msg, name, index):
    try:
        vals = msg.get_all(name)
        return str(vals[index])
    except Exception as e:  # Python's header parser gave up
        return "<python error: %r>" % e


headers_skipped = [[]]


def own_view(raw):
    # skip leading blank lines like any lenient reader would
    stripped = raw.lstrip(b"\r\n")
    head, body = split_head_body(stripped)
    headers = {}
    collapsed = {}
    pyheaders = {}
    # Python ends the header section at the first line that is not a field
    # and takes the rest as body; give it only the real fields instead.
    clean = b"\n".join(
        n + b":" + v.replace(b"\r\n", b"\n") for n, v in raw_headers(head)
    )
    msg, pol = parse(clean + b"\n\n" + body)
    counts = {}
    skipped = []
    for name, val in raw_headers(head, skipped):
        n = name.decode("latin-1")
        k = header_key(n)
        v = header_text(val)
        c = header_text(val, collapse=True)
        idx = counts.get(n.lower(), 0)
        counts[n.lower()] = idx + 1
        pv = py_header_str(msg, n, idx)
        if k in headers:
            if not isinstance(headers[k], list):
                headers[k] = [headers[k]]
                collapsed[k] = [collapsed[k]]
                pyheaders[k] = [pyheaders[k]]
            headers[k].append(v)
            collapsed[k].append(c)
            pyheaders[k].append(pv)
        else:
            headers[k] = v
            collapsed[k] = c
            pyheaders[k] = pv
    headers_skipped[0] = skipped
    return msg, pol, headers, collapsed, pyheaders, stripped


def is_attachment_disp(part):
    d = part.get("content-disposition")
    if d is None:
        return False
    return str(d).split(";")[0].strip().lower() == "attachment"


def find_bodies(msg):
    """The message's own text/plain and text/html: first of each type met in
    document order, not marked as attachment, not inside message/*. Inside
    multipart/alternative only direct alternatives count."""
    found = {}

    def walk(part):
        ctype = part.get_content_type()
        if ctype.startswith("multipart/"):
            for sub in part.iter_parts():
                walk(sub)
            return
        if part.get_content_maintype() == "message":
            return
        if ctype in ("text/plain", "text/html") and not is_attachment_disp(part):
            key = "plain" if ctype == "text/plain" else "html"
            if key not in found:
                found[key] = part

    walk(msg)
    return found


empty_multiparts = []


def leaves(msg):
    """Leaf parts in document order with their index path. A multipart
    container with no parts at all (no boundary found) is not a leaf: it is
    recorded in `empty_multiparts` instead."""
    out = []

    def walk(part, path):
        if part.get_content_maintype() == "multipart":
            subs = list(part.iter_parts()) if part.is_multipart() else []
            if not subs:
                empty_multiparts.append(path)
                return
            for i, sub in enumerate(subs):
                walk(sub, path + [i])
            return
        out.append((part, path))

    walk(msg, [])
    return out


def raw_at(tree, path):
    node = tree
    for i in path:
        if i >= len(node["children"]):
            return None
        node = node["children"][i]
    return node


def qp_decode(data):
    """Quoted-printable decoding per RFC 2045 6.7: trailing whitespace on a
    line is transport padding and is removed, "=" at the end of a line is a
    soft line break, "=XX" is an octet; a malformed "=" is kept as it is."""
    out = bytearray()
    for line in re.split(rb"(\r?\n)", data):
        if line in (b"\n", b"\r\n"):
            out += line
            continue
        line = line.rstrip(b" \t")
        soft = line.endswith(b"=")
        if soft:
            line = line[:-1]
        out += re.sub(
            rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), line
        )
        if soft:
            out += b"\x00SOFT\x00"
    return bytes(re.sub(rb"\x00SOFT\x00\r?\n?", b"", bytes(out)))


def payload_bytes(part):
    """Transfer-decoded bytes of a leaf: our own quoted-printable decoder,
    Python's for everything else (it skips non-alphabet base64 characters as
    RFC 2045 6.8 asks)."""
    cte = str(part.get("content-transfer-encoding", "7bit")).strip().lower()
    if cte == "quoted-printable":
        # the stored payload keeps 8-bit bytes as surrogate escapes
        # (get_payload(decode=False) would charset-decode them)
        raw = part._payload
        if isinstance(raw, str):
            return qp_decode(raw.encode("ascii", "surrogateescape"))
    data = part.get_payload(decode=True)
    return data if data is not None else b""


def transfer_decode(part, rawnode):
    cte = str(part.get("content-transfer-encoding", "7bit")).strip().lower()
    if part.get_content_maintype() == "message" and rawnode is not None:
        body = rawnode["body"]
        if cte == "base64":
            return base64.b64decode(body, validate=False)
        if cte == "quoted-printable":
            return qp_decode(body)
        return body
    return payload_bytes(part)


def text_of(part):
    data = payload_bytes(part)
    cs = part.get_param("charset")
    if cs is None:
        cs = "us-ascii"
    text, codec, clean = decode_bytes(data, str(cs))
    if not clean and py_codec(str(cs)) in ("ascii", None):
        t2, codec, clean = decode_bytes(data, "utf-8")
        text = t2
    return text, codec, clean


def file_name(part):
    try:
        fn = part.get_filename()
    except Exception as e:
        return "<python error: %r>" % e
    if fn is None:
        return ""
    return decode_words(str(fn))


def disposition(part):
    """Content-Disposition type; when absent: inline if the part has a
    Content-ID (it is referenced from a body), else attachment."""
    d = part.get("content-disposition")
    if d is None:
        return "inline" if part.get("content-id") is not None else "attachment"
    return str(d).split(";")[0].strip().lower()


def content_id(part):
    c = part.get("content-id")
    if c is None:
        return None
    c = str(c).strip()
    if c.startswith("<") and c.endswith(">"):
        c = c[1:-1]
    return c.strip()


def view(path):
    del empty_multiparts[:]
    raw = open(path, "rb").read()
    msg, pol, headers, collapsed, pyheaders, stripped = own_view(raw)
    tree = raw_tree(stripped)
    bodies = find_bodies(msg)
    res = {"policy": pol, "headers": headers, "headers_collapsed": collapsed, "py_headers": pyheaders}
    for k, part in bodies.items():
        text, codec, clean = text_of(part)
        res[k] = text
        res[k + "_codec"] = codec + ("" if clean else " (with replacement)")
    atts = []
    chosen = set(id(p) for p in bodies.values())
    for part, p in leaves(msg):
        if id(part) in chosen:
            continue
        rawnode = raw_at(tree, p)
        data = transfer_decode(part, rawnode)
        atts.append(
            {
                "file_name": file_name(part),
                "content_type": part.get_content_type(),
                "size": len(data),
                "disposition": disposition(part),
                "content_id": content_id(part),
                "content": "sha256:" + hashlib.sha256(data).hexdigest(),
                "path": p,
                "defects": [type(d).__name__ for d in part.defects],
            }
        )
    res["attachments"] = atts
    res["empty_multiparts"] = list(empty_multiparts)
    res["defects"] = [type(d).__name__ for d in msg.defects]
    res["skipped_header_lines"] = [l.decode("latin-1") for l in headers_skipped[0]]
    return res


# --------------------------------------------------------------------------
# comparison


def show_diff(field, ours, theirs, extra=None):
    print("  DIFF %s" % field)
    print("     ours  : %s" % json.dumps(ours, ensure_ascii=False)[:600])
    print("     oracle: %s" % json.dumps(theirs, ensure_ascii=False)[:600])
    if extra is not None:
        print("     python: %s" % json.dumps(extra, ensure_ascii=False)[:600])


def compare(eml, golden):
    o = view(eml)
    g = json.load(open(golden))
    ndiff = 0
    print("== %s" % os.path.basename(eml))
    # headers
    for k in sorted(set(o["headers"]) | set(g["headers"])):
        ov = o["headers"].get(k)
        gv = g["headers"].get(k)
        if ov != gv and o["headers_collapsed"].get(k) == gv:
            print("  note headers.%s: equal once each fold and its surrounding whitespace is collapsed to one space" % k)
        elif ov != gv:
            ndiff += 1
            pv = o["py_headers"].get(k)
            show_diff("headers.%s" % k, gv, ov, pv if pv != ov else None)
        else:
            pv = o["py_headers"].get(k)
            if pv != ov and not (isinstance(pv, str) and pv.startswith("<python")):
                print("  note headers.%s: python renders %s" % (k, json.dumps(pv, ensure_ascii=False)[:300]))
    # bodies
    for k in ("plain", "html"):
        if o.get(k) != g.get(k):
            ndiff += 1
            show_diff(k, g.get(k), o.get(k))
            if o.get(k) is not None and g.get(k) is not None:
                a, b = g[k], o[k]
                i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
                print("     first difference at char %d: ours %r / oracle %r" % (i, a[i:i + 40], b[i:i + 40]))
        if k + "_codec" in o:
            print("  %s decoded with %s" % (k, o[k + "_codec"]))
    # attachments
    ga, oa = g["attachments"], o["attachments"]
    if len(ga) != len(oa):
        ndiff += 1
        show_diff("attachments.count", len(ga), len(oa))
    for i in range(max(len(ga), len(oa))):
        a = ga[i] if i < len(ga) else {}
        b = oa[i] if i < len(oa) else {}
        for f in ("file_name", "content_type", "size", "disposition", "content_id", "content"):
            if a.get(f) != b.get(f):
                ndiff += 1
                show_diff("attachments[%d].%s" % (i, f), a.get(f), b.get(f))
        if b.get("defects"):
            print("  note attachments[%d] python defects: %s" % (i, b["defects"]))
    if o["defects"]:
        print("  note message python defects: %s" % o["defects"])
    if o["empty_multiparts"]:
        print("  note multipart container(s) with no parts at %s" % o["empty_multiparts"])
    if o["skipped_header_lines"]:
        print("  note top-level header lines that are not fields: %s" % json.dumps(o["skipped_header_lines"])[:400])
    # the parts the oracle cannot check: print for manual reading
    print("  envelope   : %s" % json.dumps(g.get("envelope"), ensure_ascii=False))
    rp = g.get("reply_plain")
    print("  reply_plain: %s" % ("== plain" if rp == g.get("plain") else json.dumps(rp, ensure_ascii=False)[:300]))
    print("  warnings   : %s" % json.dumps(g.get("warnings"), ensure_ascii=False))
    print("  %d difference(s)" % ndiff)
    return ndiff


def main(argv):
    if len(argv) >= 2 and argv[0] == "show":
        print(json.dumps(view(argv[1]), ensure_ascii=False, indent=2))
    elif len(argv) >= 3 and argv[0] == "compare":
        compare(argv[1], argv[2])
    elif len(argv) >= 3 and argv[0] == "all":
        total = 0
        for f in sorted(os.listdir(argv[2])):
            if f.endswith(".eml.json"):
                total += compare(os.path.join(argv[1], f[:-5]), os.path.join(argv[2], f))
        print("TOTAL %d difference(s)" % total)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
