"""A test that needs a database server skips without one, except in CI, where
it fails: a CI run must never pass by skipping the PostgreSQL and MariaDB bakes."""

import pytest

from tests import conftest


@pytest.mark.parametrize(
    ("in_ci", "outcome"),
    [(True, pytest.fail.Exception), (False, pytest.skip.Exception)],
    ids=["ci-fails", "local-skips"],
)
def test_missing_server(
    monkeypatch: pytest.MonkeyPatch, in_ci: bool, outcome: type[BaseException]
) -> None:
    monkeypatch.setattr(conftest, "IN_CI", in_ci)
    with pytest.raises(outcome, match=r"Nothing is not accepting connections on 127\.0\.0\.1:1"):
        conftest._require_server("Nothing", "127.0.0.1", 1)
