"""The product's sessions read botocore's data files with msgspec (aws.ModelFiles): the same data, in the same
order, from the same places; whether a service is known is asked of its own folder (aws.KnownServices), with the
answers botocore's full listing gives."""

from __future__ import annotations

import json
import os

import botocore
import botocore.loaders
import pytest
from botocore.exceptions import UnknownServiceError

from lambda_function.aws import KnownServices, ModelFiles, ModelLoader, new_session

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


def _operator_model(tmp_path):
    """A model of our own under `tmp_path` (AWS_DATA_PATH), as an operator may add one."""
    model = {"version": "2.0", "metadata": {"apiVersion": "2020-01-01", "endpointPrefix": "usage-test",
             "protocol": "json", "serviceId": "Usage Test", "signatureVersion": "v4", "jsonVersion": "1.1",
             "targetPrefix": "UsageTest"},
             "operations": {}, "shapes": {}}  # fmt: skip
    folder = tmp_path / "usage-test" / "2020-01-01"
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    (tmp_path / "not-a-service").mkdir()  # a folder without a model of the type: not a service
    (tmp_path / "not-a-service" / "2020-01-01").mkdir()


def test_the_session_still_finds_models_on_aws_data_path(tmp_path, monkeypatch):
    _operator_model(tmp_path)
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    session = new_session()
    assert "usage-test" in session.get_available_services()
    assert "s3" in session.get_available_services()


@pytest.mark.parametrize("type_name", ["service-2", "endpoint-rule-set-1", "paginators-1"])
def test_known_services_answer_as_botocores_full_listing(tmp_path, monkeypatch, type_name):
    _operator_model(tmp_path)
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    ours = new_session()._session.get_component("data_loader")
    assert isinstance(ours, ModelLoader)
    theirs = botocore.loaders.create_loader(str(tmp_path))
    listed = theirs.list_available_services(type_name)
    known = ours.list_available_services(type_name)
    assert isinstance(known, KnownServices)
    assert list(known) == listed and len(known) == len(listed) and known[0] == listed[0]
    names = [*listed, *os.listdir(DATA), "usage-test", "not-a-service", "no-such-service", "", ".", "..", "s3/..", 3]
    assert {name: name in known for name in names} == {name: name in listed for name in names}


def test_a_client_is_made_for_a_model_on_aws_data_path_and_refused_for_an_unknown_service(tmp_path, monkeypatch):
    _operator_model(tmp_path)
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    session = new_session()
    client = session.client("usage-test", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    assert client.meta.service_model.service_name == "usage-test"
    with pytest.raises(UnknownServiceError) as refused:
        session.client("no-such-service", region_name="us-east-1")
    assert "usage-test" in str(refused.value) and "s3" in str(refused.value)  # the known services, all listed
