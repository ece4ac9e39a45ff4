"""The product's sessions read botocore's data files with msgspec (aws.ModelFiles): the same data, in the same
order, from the same places."""

from __future__ import annotations

import json
import os

import botocore
import botocore.loaders
import pytest

from lambda_function.aws import ModelFiles, new_session

DATA = os.path.join(os.path.dirname(botocore.__file__), "data")


@pytest.mark.parametrize(
    "name",
    [
        "s3/2006-03-01/service-2",  # .json.gz
        "s3/2006-03-01/endpoint-rule-set-1",
        "logs/2014-03-28/service-2",
        "s3/2006-03-01/paginators-1",  # .json
        "endpoints",
        "partitions",
        "sdk-default-configuration",
    ],
)
def test_a_data_file_reads_as_botocore_reads_it(name):
    path = os.path.join(DATA, name)
    ours, botocores = ModelFiles().load_file(path), botocore.loaders.JSONFileLoader().load_file(path)
    assert ours is not None
    assert json.dumps(ours) == json.dumps(botocores)  # equal, keys in the same order


def test_a_missing_file_is_none_and_does_not_exist(tmp_path):
    assert ModelFiles().load_file(str(tmp_path / "nothing")) is None
    assert not ModelFiles().exists(str(tmp_path / "nothing"))
    assert ModelFiles().exists(os.path.join(DATA, "endpoints"))


def test_the_session_still_finds_models_on_aws_data_path(tmp_path, monkeypatch):
    # a model of our own under AWS_DATA_PATH, as an operator may add one
    model = {"version": "2.0", "metadata": {"apiVersion": "2020-01-01", "endpointPrefix": "usage-test",
             "protocol": "json", "serviceId": "Usage Test", "signatureVersion": "v4"},
             "operations": {}, "shapes": {}}  # fmt: skip
    folder = tmp_path / "usage-test" / "2020-01-01"
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    session = new_session()
    assert "usage-test" in session.get_available_services()
    assert "s3" in session.get_available_services()
