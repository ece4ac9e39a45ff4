"""One botocore data loader for the whole test process, shared by every Session.

botocore parses its data files (service models, endpoint rule sets, partitions) once per loader, and boto3 makes a
new loader with each Session. The product makes a Session per run, and so does each fault test, so every run parsed
the same JSON from disk again: about 40% of the CPU time of the tests that run the product. Sharing one loader does
across Sessions what botocore already does within one (parse each file once, hand every client the same parsed
model); the files, their search order and what any client sees are unchanged.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
import botocore.loaders
import botocore.session

BOTO3_DATA = os.path.join(os.path.dirname(boto3.__file__), "data")


class _SearchPaths(list[str]):
    """boto3 appends its data folder to the loader of each Session it makes: a shared loader needs it once."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> Any:
    # as botocore.loaders.create_loader builds it (AWS_DATA_PATH first, then botocore's own), plus boto3's folder
    paths = [] if search_path_string is None else search_path_string.split(os.pathsep)
    loader = botocore.loaders.Loader(
        extra_search_paths=_SearchPaths(os.path.expanduser(os.path.expandvars(p)) for p in paths)
    )
    loader.search_paths.append(BOTO3_DATA)
    return loader


def share_botocore_data() -> None:
    """From now on every botocore Session in this process (boto3's, the product's, moto's) uses one loader."""
    botocore.session.create_loader = _shared_loader  # type: ignore[attr-defined]
