"""The Logs Insights query that aggregates invocation logs on the server (pure: text in, text out)."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Insights extracts at most 200 fields from a JSON event, and Bedrock puts the token counts (and sometimes
# schemaType) after the request/response bodies. A Converse record with a long conversation or tool config
# therefore loses them silently. Every value we need is also parsed from the raw @message and used when the
# extracted field is missing (coalesce). Records are selected by a regex on @message, not by the extracted
# schemaType field, for the same reason; that also skips the non-JSON permission-check line.
#
# The first regex match wins in `parse`. For records small enough to have the field extracted, the parsed
# value is never used; for large ones, the top-level keys come before any body text in every record seen.
# Image-generation settings (FACTS §3: priced per image by size, quality and steps) are grouped on too. Each
# has a sentinel (-1, "-") when absent, so text-model records form one group per key, exactly as before, and no
# record ever lacks a `by` field (how the service treats a missing one is not documented).
# Some models bill a whole request at a higher tier when its input (uncached + cache read + cache write) is above
# a threshold (FACTS §3: 200K tokens for Sonnet 4/4.5; other models use other thresholds). A sum cannot tell, so
# each record gets a band, the number of thresholds its input is above, and the band is a `by` field. The
# thresholds come from the tier table (pricing/context_tiers.csv); see `usage_query`.
# 1-hour cache writes cost more than 5-minute ones (FACTS §3) but the top-level count has no TTL split; the logged
# response body has it: Converse `usage.cacheDetails[] {"ttl": "1h", "inputTokens": N}` (either key order) and
# Anthropic InvokeModel `usage.cache_creation.ephemeral_1h_input_tokens`. Writes in records whose body has neither
# shape (text logging off, body offloaded to S3) are summed apart: their TTL is unknown. `strlen` of the matched
# key (12 or 14 characters, 0 when absent) over 20, rounded up, is 1 or 0: Logs Insights has no conditional.
# Latency-optimized inference (`performanceConfig.latency`, top-level in the record and in the request) and the
# service tier (`serviceTier.type` in Converse requests and responses) have prices of their own: both are group
# keys, with defaults ("standard", "default") so that no record lacks them.
# Names made by `parse` must differ from stats aliases (a Logs Insights rule), hence the p_ prefix.
# Counts are parsed as any number, sign, fraction and exponent included, so that a malformed count in a large
# record is seen as what it is (-5, 12.5, 1e30) and refused downstream, not read as its leading digits. A record
# is readable when it has an input token count (as text: JSON `true` is not one) or an error code; the others
# (a record cut short, a count that is not a number) are counted as unreadable, never priced as a $0 call.
_NUMBER = r"-?[0-9][0-9.eE+-]*"
MAX_QUERY_CHARS = 10_000  # StartQuery's limit on queryString
_QUERY = r"""filter @message like /"schemaType"\s*:\s*"ModelInvocationLog"/
| parse @message /"inputTokenCount"\s*:\s*(?<p_in>{NUMBER})/
| parse @message /"outputTokenCount"\s*:\s*(?<p_out>{NUMBER})/
| parse @message /"cacheReadInputTokenCount"\s*:\s*(?<p_cr>{NUMBER})/
| parse @message /"cacheWriteInputTokenCount"\s*:\s*(?<p_cw>{NUMBER})/
| parse @message /"ttl"\s*:\s*"1h"\s*,\s*"inputTokens"\s*:\s*(?<p_c1a>{NUMBER})/
| parse @message /"inputTokens"\s*:\s*(?<p_c1b>{NUMBER})\s*,\s*"ttl"\s*:\s*"1h"/
| parse @message /"ephemeral_1h_input_tokens"\s*:\s*(?<p_e1h>{NUMBER})/
| parse @message /"(?<p_ttl_split>cacheDetails|cache_creation)"/
| parse @message /"serviceTier"\s*:\s*\{\s*"type"\s*:\s*"(?<p_tier>priority|default|flex|reserved)"/
| parse @message /"latency"\s*:\s*"(?<p_latency>optimized|standard)"/
| parse @message /"modelId"\s*:\s*"(?<p_model>[^"]+)"/
| parse @message /"identity"\s*:\s*\{\s*"arn"\s*:\s*"(?<p_arn>[^"]+)"/
| parse @message /"accountId"\s*:\s*"(?<p_acct>[^"]+)"/
| parse @message /"region"\s*:\s*"(?<p_region>[^"]+)"/
| parse @message /"errorCode"\s*:\s*"(?<p_err>[^"]+)"/
| fields coalesce(`input.inputTokenCount`, p_in, 0) as in_tok,
         coalesce(`output.outputTokenCount`, p_out, 0) as out_tok,
         coalesce(`input.cacheReadInputTokenCount`, p_cr, 0) as cr_tok,
         coalesce(`input.cacheWriteInputTokenCount`, p_cw, 0) as cw_tok,
         coalesce(p_c1a, p_c1b, p_e1h, 0) as cw1h_tok,
         coalesce(p_tier, "") as svc_tier,
         coalesce(`performanceConfig.latency`, p_latency, "") as perf,
         strlen(coalesce(p_ttl_split, "")) as ttl_split_len,
         coalesce(accountId, p_acct) as a,
         coalesce(`identity.arn`, p_arn, "") as i,
         coalesce(modelId, p_model) as m,
         coalesce(region, p_region) as r,
         coalesce(errorCode, p_err) as error,
         coalesce(p_in, errorCode, p_err) as readable,
         coalesce(`input.inputBodyJson.imageGenerationConfig.width`, `input.inputBodyJson.width`, "") as img_w,
         coalesce(`input.inputBodyJson.imageGenerationConfig.height`, `input.inputBodyJson.height`, "") as img_h,
         coalesce(`input.inputBodyJson.imageGenerationConfig.quality`, "") as img_q,
         coalesce(`input.inputBodyJson.steps`, "") as img_steps,
         coalesce(`input.inputBodyJson.imageGenerationConfig.numberOfImages`, `input.inputBodyJson.samples`, "") as img_n{meta}
| fields cw_tok * (1 - ceil(ttl_split_len / 20)) as cw_ttl_unknown
{band}| fields concat(img_w, "|", img_h, "|", img_steps, "|", img_n, "|", svc_tier, "|", perf, "|", {band_value}, "|", img_q) as o
| stats sum(in_tok) as n, sum(out_tok) as u, sum(cr_tok) as cr, sum(cw_tok) as cw,
        sum(cw1h_tok) as ch, sum(cw_ttl_unknown) as cu, count(*) as c, count(error) as f, count(readable) as k
  by {day}a, i, m, r, o{meta_keys}
| sort i asc"""


def _above(threshold: int) -> str:
    """1 when all_in > threshold, else 0, in Logs Insights arithmetic (no conditional function exists):
    x = floor(all_in / (threshold + 1)) is 0 up to the threshold and a whole number >= 1 above it, and
    ceil(x / (x + 1)) maps 0 to 0 and every x >= 1 to 1."""
    x = f"floor(all_in / {threshold + 1})"
    return f"ceil({x} / ({x} + 1))"


def _meta_parse(n: int, key: str) -> str:
    # Cost-attribution tags a caller set through Converse `requestMetadata` (a flat string map, top-level in the
    # record, after the bodies in large records: the 200-field limit again). Keys are plain ASCII (config.py).
    pattern = re.sub(r"([.+=/@:-])", r"\\\1", key)
    return f'| parse @message /"requestMetadata"\\s*:\\s*\\{{[^}}]*"{pattern}"\\s*:\\s*"(?<p_m{n}>[^"]*)"/\n'


def meta_field(n: int) -> str:
    """The result field of the n-th attribution key."""
    return f"g{n}"


def usage_query(thresholds: Sequence[int] = (), attribution_keys: Sequence[str] = (), by_day: bool = True) -> str:
    """The usage query; with `thresholds` (input tokens), each row's options (`o`) also say how many of them the
    requests of its group are above (0 = none); with `attribution_keys`, one more group key per key (`g<n>`):
    the records' requestMetadata value for it, "" when they have none. Without `by_day` (a window within one UTC
    day) the rows have no day (`d`): the caller knows it."""
    ordered = sorted(set(thresholds))
    if any(t <= 0 for t in ordered):
        raise ValueError(f"thresholds must be positive: {ordered}")
    band, band_value = "", '""'
    if ordered:
        band = (
            "| fields in_tok + cr_tok + cw_tok as all_in\n"
            f"| fields {' + '.join(_above(t) for t in ordered)} as ctx_band\n"
        )
        band_value = "ctx_band"
    parses = "".join(_meta_parse(n, key) for n, key in enumerate(attribution_keys))
    meta = "".join(
        f',\n         coalesce(`requestMetadata.{key}`, p_m{n}, "") as {meta_field(n)}'
        for n, key in enumerate(attribution_keys)
    )
    meta_keys = "".join(f", {meta_field(n)}" for n in range(len(attribution_keys)))
    query = (
        _QUERY.replace("{band}", band)
        .replace("{band_value}", band_value)
        .replace("{day}", "bin(1d) as d, " if by_day else "")
        .replace("{meta}", meta)
        .replace("{meta_keys}", meta_keys)
        .replace("{NUMBER}", _NUMBER)
        .replace("| fields coalesce(`input.inputTokenCount`", parses + "| fields coalesce(`input.inputTokenCount`", 1)
    )
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(f"the usage query would be {len(query)} characters, over StartQuery's {MAX_QUERY_CHARS}")
    return query


# The result fields, in the service's names, and what the usage frame calls them. The names are short because
# every row repeats each of them (GetQueryResults sends rows as [{"field": ..., "value": ...}, ...]): at 50,000
# groups a day every byte of a name is 100 KB of JSON to transfer and decode.
RESULT_FIELDS = {
    "d": "usage_date",
    "a": "account_id",
    "i": "identity_arn",
    "m": "model_id",
    "r": "region",
    "n": "input_tokens",
    "u": "output_tokens",
    "cr": "cache_read_tokens",
    "cw": "cache_write_tokens",
    "ch": "cache_write_1h_tokens",
    "cu": "cache_write_ttl_unknown_tokens",
    "c": "invocations",
    "f": "failed_invocations",
}
# The rarely used group keys, folded into one field (`o`) with "|" between them, "" where a record has none (so
# that the common row says `||||||0|`, not eight fields of sentinels): image width, height, steps and images per
# call, the service tier, the latency mode, the long-context band, and last (it is free text) the image quality.
OPTIONS_FIELD = "o"
FOLDED = (
    "image_width",
    "image_height",
    "image_steps",
    "images_per_call",
    "service_tier",
    "latency",
    "input_band",
    "image_quality",
)
COUNT_FIELD = "c"
# The field whose ranges split a day with more groups than one query returns (insights.KeyRange): each group has
# one identity, so no group straddles two parts. The query makes it non-null ("" for a record without one), so
# that every record falls in exactly one range, and sorts its rows by it, so that a result cut off at the limit
# holds every group of the identities before its last one.
SPLIT_FIELD = "i"
READABLE_FIELD = "k"
