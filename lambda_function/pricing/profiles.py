"""Application inference profiles hide the model behind an opaque ARN; `bedrock:GetInferenceProfile` tells
which model (and, through the regions of its model ARNs, which inference scope) it routes to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.pricing.model_ids import APPLICATION_PROFILE, GEO, GLOBAL, IN_REGION, ModelCatalog, ModelRef

log = logging.getLogger(__name__)


def _arn_region(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else ""


def _geography(region: str) -> str:
    # us-east-1 -> us, eu-west-3 -> eu, ap-northeast-1 -> ap, us-gov-west-1 -> us-gov
    return region.rsplit("-", 2)[0] if region.count("-") >= 2 else region


def profile_ref(raw: str, models: list[dict[str, str]], catalog: ModelCatalog) -> ModelRef:
    """The model behind a profile, from GetInferenceProfile's `models[].modelArn`.

    One model ARN: the profile calls the model in its own region (in-region price). Several regions in one
    geography: it was copied from a geo profile (`us.` ...). Regions across geographies: from `global.`.
    """
    arns = [m["modelArn"] for m in models if m.get("modelArn")]
    if not arns:
        return ModelRef(raw, "", IN_REGION, APPLICATION_PROFILE, arn=raw)
    base = catalog.normalise(arns[0])
    regions = {_arn_region(arn) for arn in arns}
    geographies = {_geography(region) for region in regions}
    scope = IN_REGION if len(regions) <= 1 else (GEO if len(geographies) == 1 else GLOBAL)
    return ModelRef(raw, base.model_id, scope, APPLICATION_PROFILE, arn=raw)


def resolve_profiles(
    raw_ids: Iterable[str], catalog: ModelCatalog, bedrock_for_region: Callable[[str], Any]
) -> tuple[dict[str, ModelRef], dict[str, str]]:
    """Resolve each application-profile ARN once. Returns the refs, and for failures the reason."""
    refs: dict[str, ModelRef] = {}
    failures: dict[str, str] = {}
    for raw in sorted(set(raw_ids)):
        ref = catalog.normalise(raw)
        if ref.kind != APPLICATION_PROFILE:
            continue
        try:
            response = bedrock_for_region(_arn_region(ref.arn)).get_inference_profile(
                inferenceProfileIdentifier=ref.arn
            )
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "error")
            failures[raw] = f"GetInferenceProfile failed: {code}"
            log.warning("cannot resolve %s: %s", raw, code)
            continue
        except BotoCoreError as err:
            failures[raw] = f"GetInferenceProfile failed: {type(err).__name__}"
            continue
        refs[raw] = profile_ref(raw, response.get("models", []), catalog)
    return refs, failures


def normaliser(
    catalog: ModelCatalog, resolved: dict[str, ModelRef], failures: dict[str, str]
) -> Callable[[str], ModelRef]:
    """catalog.normalise, with application profiles answered from what GetInferenceProfile said."""

    def normalise(raw: str) -> ModelRef:
        if raw in resolved:
            return resolved[raw]
        ref = catalog.normalise(raw)
        if raw in failures:
            return ModelRef(raw, "", ref.scope, ref.kind, arn=ref.arn, problem=failures[raw])
        return ref

    return normalise
