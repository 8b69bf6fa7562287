"""The dataset contract as explicit pyarrow schemas, reason codes and warning codes.

Every Parquet file the pipeline writes uses one of these schemas; nothing is inferred.
"""

from __future__ import annotations

import pyarrow as pa

PIPELINE_VERSION = "1.0.0"

CREDIT_ROLES = ("translator", "reviewer", "editor", "compiler", "other")

_credit = pa.struct([("role", pa.string()), ("name", pa.string())])
_image = pa.struct([("url", pa.string()), ("caption", pa.string())])
_related = pa.struct([("url", pa.string()), ("title", pa.string())])
_ts = pa.timestamp("ms", tz="UTC")

ARTICLE_FIELDS: list[tuple[str, pa.DataType, bool, str]] = [
    # name, type, nullable, meaning (used by the dataset card)
    ("article_id", pa.string(), False, "CNA: 12-digit id from the URL; other feeds: 16-hex id derived from the canonical URL"),
    ("source", pa.string(), True, "feed name from front matter `author`, as written"),
    ("url", pa.string(), True, "front matter `from`"),
    ("section", pa.string(), True, "CNA URL section code (aopl, firstnews, acn, ...); null for other feeds"),
    ("title", pa.string(), True, "headline"),
    ("published_at", _ts, True, "true publish time from the <!--epoch ms--> comment; null when absent"),
    ("feed_date", _ts, True, "front matter `date` (clamped to crawl time by the archiver)"),
    ("paragraphs", pa.list_(pa.string()), True, "clean body paragraphs in order, without dateline, credits and ROC code"),
    ("text", pa.string(), True, "paragraphs joined with newlines"),
    ("dateline", pa.string(), True, "dateline as written, without brackets"),
    ("dateline_place", pa.string(), True, "place named in the dateline"),
    ("dateline_day", pa.int8(), True, "day of month written in the dateline"),
    ("dateline_kind", pa.string(), True, "closing word(s) of the dateline: 電, 專電, 綜合外電報導, ..."),
    ("reporters", pa.list_(pa.string()), True, "reporter names in the dateline"),
    ("credit_line", pa.string(), True, "credit block as written, without brackets"),
    ("credits", pa.list_(_credit), True, "one {role, name} per person and role, in order"),
    ("translators", pa.list_(pa.string()), True, "names with role translator"),
    ("reviewers", pa.list_(pa.string()), True, "names with role reviewer"),
    ("editors", pa.list_(pa.string()), True, "names with role editor"),
    ("compilers", pa.list_(pa.string()), True, "names with role compiler"),
    ("roc_code", pa.string(), True, "trailing ROC date code as written"),
    ("roc_date", pa.date32(), True, "ROC code as a Gregorian date; null when it is no real date"),
    ("images", pa.list_(_image), True, "images with their captions"),
    ("related", pa.list_(_related), True, "延伸閱讀 / related links"),
    ("warnings", pa.list_(pa.string()), True, "stable short codes for anything odd (see WARNING_CODES)"),
    ("source_path", pa.string(), False, "path of the raw post relative to the input root"),
    ("content_sha256", pa.string(), False, "SHA-256 of the raw file's bytes"),
]

ARTICLE_SCHEMA = pa.schema([pa.field(n, t, nullable=null) for n, t, null, _ in ARTICLE_FIELDS])
ARTICLE_COLUMNS = ARTICLE_SCHEMA.names
# Columns the write stage derives from others (pipeline.assemble.add_derived_columns), so workers
# neither build nor ship them: `text` doubles the paragraphs' bytes.
DERIVED_COLUMNS = ("text",)
# What a worker's shard holds: the article columns without the derived ones.
SHARD_SCHEMA = pa.schema([f for f in ARTICLE_SCHEMA if f.name not in DERIVED_COLUMNS])

REJECT_FIELDS: list[tuple[str, pa.DataType, bool, str]] = [
    ("source_path", pa.string(), False, "path of the raw post relative to the input root"),
    ("reason", pa.string(), False, "stable short code (see REJECT_REASONS)"),
    ("detail", pa.string(), True, "human-readable explanation"),
    ("content_sha256", pa.string(), True, "SHA-256 of the raw bytes, when they could be read"),
    ("size_bytes", pa.int64(), True, "file size in bytes, when known"),
    ("source", pa.string(), True, "feed name, when the front matter could be read"),
]
REJECT_SCHEMA = pa.schema([pa.field(n, t, nullable=null) for n, t, null, _ in REJECT_FIELDS])

# Why an input file did not become an article. Codes are stable: analysts filter on them.
REJECT_REASONS: dict[str, str] = {
    "empty_file": "the file has no bytes (or only whitespace)",
    "binary_content": "the bytes are not text in any supported encoding",
    "too_large": "the file is larger than the configured --max-bytes limit",
    "unreadable": "the file could not be read (permissions, broken symlink, I/O error), a folder could not be "
                  "listed, or a tar archive lacks its end blocks (posts after its last member may be missing)",
    "no_front_matter": "the file does not start with a '---' front matter block",
    "unclosed_front_matter": "the front matter block is never closed by '---'",
    "bad_front_matter": "the front matter is neither valid YAML nor simple 'key: value' lines",
    "no_url": "the front matter has no usable `from` URL (missing, or not an http(s) URL), so the post has no identity",
    "not_a_file": "a path named *.md that is not a regular file (a folder, a socket, ...)",
    "internal_error": "an unexpected error while processing this post (a bug: please report)",
}

# Odd but usable: the post becomes an article and carries these codes in `warnings`.
WARNING_CODES: dict[str, str] = {
    "decoded_bom": "the file started with a UTF-8 BOM (stripped)",
    "decoded_utf16": "the file was UTF-16 and was decoded as such",
    "decoded_legacy": "the file was decoded as Big5 or GB18030, not UTF-8",
    "invalid_utf8": "invalid UTF-8 bytes were replaced with U+FFFD",
    "invalid_utf16": "invalid UTF-16 bytes (e.g. a dangling last byte) were replaced with U+FFFD",
    "control_chars_removed": "NUL or other control characters were removed",
    "front_matter_fallback": "the front matter was not valid YAML; simple key: value lines were read instead",
    "no_epoch": "no <!--epoch--> comment: published_at is null",
    "bad_epoch": "the <!--epoch--> comment is not a plausible time: published_at is null",
    "bad_feed_date": "the front matter `date` could not be parsed: feed_date is null",
    "no_source": "the front matter has no `author`: source is null",
    "no_title": "the front matter has no title",
    "empty_body": "no paragraph of text was left after cleaning (e.g. a photo-only post)",
    "html_truncated": "the body HTML was truncated or malformed and was recovered",
    "html_too_deep": "the body HTML nested deeper than the parser allows; text was recovered as far as possible",
    "roc_code_malformed": "the ROC code does not have 6 or 7 digits: roc_date is null",
    "roc_code_invalid_date": "the ROC code is no real calendar date: roc_date is null",
    "roc_date_far_from_published": "the ROC date is more than 2 days from published_at (Asia/Taipei)",
    "credits_unparsed": "a credit block was found but no name could be read from it",
    "no_dateline": "a CNA post whose first paragraph has no dateline",
    "several_datelines": "the post has more than one dateline (digest); the first is used",
}

DUPLICATE_FIELDS: list[tuple[str, pa.DataType, bool, str]] = [
    ("source_path", pa.string(), False, "path of the raw post that was not kept"),
    ("article_id", pa.string(), False, "the article id it shares with the kept post"),
    ("kept_source_path", pa.string(), False, "path of the post kept as the article"),
    ("published_at", _ts, True, "publish time of the dropped copy"),
    ("content_sha256", pa.string(), False, "SHA-256 of the dropped copy's bytes"),
]
DUPLICATE_SCHEMA = pa.schema([pa.field(n, t, nullable=null) for n, t, null, _ in DUPLICATE_FIELDS])
