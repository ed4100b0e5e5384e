"""mlxhub.redact: the one place that masks credentials in URLs and connection strings."""

from __future__ import annotations

import pytest

from mlxhub.redact import redact


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://mlxhub:s3cret@postgres:5432/mlxhub", "postgresql://mlxhub:***@postgres:5432/mlxhub"),
    ("https://alice:tok-en@mlflow.example:5000/", "https://alice:***@mlflow.example:5000/"),
    ("nats://hub:pw@nats:4222", "nats://hub:***@nats:4222"),
    ("postgresql://u:p@ss@db/x", "postgresql://u:***@db/x"),  # an unencoded '@' in the password
    ("postgresql://db/x?sslmode=require&password=s3cret&x=1", "postgresql://db/x?sslmode=require&password=***&x=1"),
    ("host=db user=u password='a b' dbname=x", "host=db user=u password=*** dbname=x"),
    ("http://127.0.0.1:9101/metrics", "http://127.0.0.1:9101/metrics"),
    ("postgresql://postgres:@127.0.0.1:5432/postgres", "postgresql://postgres:@127.0.0.1:5432/postgres"),
    ("postgresql://postgres@127.0.0.1/postgres", "postgresql://postgres@127.0.0.1/postgres"),
    ("file:///data/mlflow:old@2", "file:///data/mlflow:old@2"),
    ("", ""),
])
def test_redact_masks_only_the_secret(text, expected):
    assert redact(text) == expected


def test_redact_finds_urls_inside_messages():
    message = ("MLflow unreachable at http://bob:hunter2@mlflow:5000 (start run: ConnectionError: "
               "HTTPConnectionPool(host='mlflow'): http://bob:hunter2@mlflow:5000/api/2.0/mlflow failed)")
    masked = redact(message)
    assert "hunter2" not in masked and masked.count("http://bob:***@mlflow:5000") == 2
