"""Reads request targets the way a Python upstream that decodes, then normalises, does:
urllib.parse.urlparse (which also splits ';params' off the last segment and drops tab/CR/LF),
urllib.parse.unquote with strict UTF-8, then posixpath.normpath (trailing slash kept).
Input: a JSON array of request targets on stdin. Output: a JSON array of the paths read
(null where decoding fails). Used by broker/path.differential.test.ts."""
import json
import posixpath
import sys
from urllib.parse import unquote, urlparse


def read(target):
    try:
        raw = urlparse("http://h" + target).path
        decoded = unquote(raw, errors="strict")
    except (ValueError, UnicodeDecodeError):
        return None
    if decoded == "":
        decoded = "/"
    cleaned = posixpath.normpath(decoded)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if decoded.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


json.dump([read(t) for t in json.load(sys.stdin)], sys.stdout)
