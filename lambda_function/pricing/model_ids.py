"""Normalise the model ids found in invocation logs to the base model id and inference scope that prices use.

Forms (FACTS §1): base ids, system cross-region profiles (`us.` ... `global.` prefixes), foundation-model and
inference-profile ARNs, application inference profile ARNs (resolved elsewhere through the Bedrock API), and
provisioned-throughput ARNs (billed per hour, never per token). Prefixes and aliases are data in `pricing/`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

IN_REGION, GEO, GLOBAL = "in_region", "geo", "global"
FOUNDATION, APPLICATION_PROFILE, PROVISIONED = "foundation", "application_profile", "provisioned"

_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]*):(?P<account>\d*):(?P<type>[a-z-]+)/(?P<id>.+)$")
# Context-length variants such as `...-v1:0:200k` price like the base model.
_CONTEXT_SUFFIX = re.compile(r"^(?P<base>.+:\d+):\d+k$")


@dataclass(frozen=True)
class ModelRef:
    raw: str
    model_id: str  # base model id ('' when it cannot be known from the id alone)
    scope: str = IN_REGION
    kind: str = FOUNDATION
    arn: str = ""  # the ARN, for application profiles and provisioned models
    problem: str = ""  # why the model behind the id could not be found


@dataclass(frozen=True)
class ModelCatalog:
    """Profile prefixes and aliases, loaded from pricing/."""

    prefixes: dict[str, str]  # "us" -> "geo", "global" -> "global"
    aliases: dict[str, str]

    @classmethod
    def load(cls, pricing_dir: Path) -> ModelCatalog:
        aliases_path = pricing_dir / "model_aliases.csv"
        prefixes = read_pairs(pricing_dir / "inference_profile_prefixes.csv", "prefix", "scope")
        aliases = read_pairs(aliases_path, "alias", "model_id") if aliases_path.is_file() else {}
        return cls(prefixes, aliases)

    def normalise(self, raw: str) -> ModelRef:
        text = raw.strip()
        match = _ARN.match(text)
        if match:
            kind = match["type"]
            if kind == "foundation-model" or kind == "inference-profile":
                text = match["id"]
            elif kind == "application-inference-profile":
                return ModelRef(raw, "", IN_REGION, APPLICATION_PROFILE, arn=text)
            elif kind in ("provisioned-model", "custom-model-deployment"):
                return ModelRef(raw, "", IN_REGION, PROVISIONED, arn=text)
        scope = IN_REGION
        head, dot, rest = text.partition(".")
        if dot and head in self.prefixes and "." in rest:
            scope, text = self.prefixes[head], rest
        suffix = _CONTEXT_SUFFIX.match(text)
        if suffix:
            text = suffix["base"]
        return ModelRef(raw, self.aliases.get(text, text), scope)


def read_pairs(path: Path, key: str, value: str) -> dict[str, str]:
    """A two-column mapping from a CSV in pricing/ (rows with an empty key are skipped)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {row[key].strip(): row[value].strip() for row in csv.DictReader(handle) if row.get(key, "").strip()}
