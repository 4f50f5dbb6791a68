"""Where probe and load results are pushed (`pushgateway:` in the config)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator

from slo import conventions
from slo.config.fields import Duration, StrictModel, Url

__all__ = ["PushgatewaySettings"]


class PushgatewaySettings(StrictModel):
    #: Empty: no push. `--pushgateway` / `PUSHGATEWAY_URL` override.
    url: Url | None = None
    #: Grouping-key values: bounded, or the push URL grows past what servers accept.
    job: str = Field(conventions.JOB, min_length=1, max_length=1024)
    #: Runner name in the grouping key; the host name when empty.
    instance: str | None = Field(None, max_length=1024)
    #: Where the runner is (a grouping label of every push); the instance when empty.
    #: Several runners may share one location; an SLO's `quorum` counts locations.
    location: str | None = Field(None, max_length=1024)
    #: Per attempt; the client library's own default is 30 s, far too long for a timer.
    timeout: Duration = 2.0
    #: Total time spent on retries before giving up and warning.
    deadline: Duration = 6.0
    retries: int = Field(2, ge=0)
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    verify: bool = True
    ca_file: Path | None = None
    #: Fail the run (exit 1) when the push fails; by default a push failure only warns.
    required: bool = False
    state_file: Path | None = None

    @field_validator("url", "password", "token", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # `${PUSHGATEWAY_URL:-}` expands to "" when unset: that means no push.
        return None if value == "" else value

    def with_overrides(self, **overrides: object) -> PushgatewaySettings:
        """These settings with values from flags or the environment, validated like the file,
        so `--pushgateway host:9091` is one clear line (ValueError), not a failed push later.
        The caller knows where the value came from and names it (see `slo.options`)."""
        try:
            return PushgatewaySettings.model_validate({**self.model_dump(), **overrides})
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
