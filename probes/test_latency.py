"""Latency: P95 of N requests per endpoint under the SLO threshold, with evidence.

The verdict comes from exact order statistics with a distribution-free confidence bound
(`slo.stats`): pass only when the bound is under the threshold. With too few samples the
probe fails as *inconclusive* and says why. A request that fails or is not 2xx counts as
slower than any threshold. Sampling stops once a pass is out of reach, and at the deadline,
so a hung target costs one timeout, not N.
"""

import math
import time

from slo import (
    ProbeFailure,
    estimate,
    format_ms,
    min_samples,
    parametrize_probes,
    percentile_upper_bound,
    probe_config,
    probe_param,
    verdict,
)


def pytest_generate_tests(metafunc):
    if "endpoint" in metafunc.fixturenames:
        endpoints = probe_config(metafunc.config).probes.latency.endpoints
        parametrize_probes(
            metafunc,
            "endpoint",
            # The id without the query string, which may carry a key.
            [
                probe_param(e, id=f"{e.target}{e.path.split('?')[0]}", target=e.target, slo=e.slo)
                for e in endpoints
            ],
            empty="no probes.latency.endpoints in the config",
        )


def test_latency_percentile(http, slo_config, endpoint):
    settings = slo_config.probes.latency
    threshold, quantile = settings.threshold, settings.quantile
    if endpoint.slo:
        slo = slo_config.slo(endpoint.slo)
        threshold, quantile = slo.sli.threshold, slo.objective
    client = http(endpoint.target)
    wanted = settings.samples
    needed = min_samples(quantile, settings.confidence)
    # Pass needs the sample at this rank under the threshold: more bad samples than
    # `wanted - rank` make a pass impossible, so sampling can stop early.
    rank = percentile_upper_bound(wanted, quantile, settings.confidence)
    bad_allowed = wanted - rank if rank else wanted  # too few to pass: still gather evidence
    samples, bad, errors = [], 0, []
    deadline = time.monotonic() + settings.deadline
    while len(samples) < wanted and bad <= bad_allowed:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            response = client.get(endpoint.path, timeout=min(client.target.timeout, remaining))
            latency = response.elapsed.total_seconds() if response.is_success else math.inf
            if not response.is_success:
                errors.append(f"HTTP {response.status_code}")
        except ProbeFailure as failure:
            latency = math.inf
            errors.append(str(failure).split(": ", 2)[-1])
        samples.append(latency)
        bad += latency > threshold

    label = f"{endpoint.target} {endpoint.path}: P{quantile * 100:g}"
    result = estimate(sorted(samples), quantile, settings.confidence) if samples else None
    judged = verdict(result.lower, result.upper, threshold) if result else "inconclusive"
    evidence = _evidence(samples, result, threshold, settings.confidence, errors)
    if judged == "pass":
        return
    if judged == "fail":
        raise ProbeFailure(f"{label} over the {format_ms(threshold)} threshold: {evidence}")
    if bad > bad_allowed:
        raise ProbeFailure(
            f"{label} cannot be under {format_ms(threshold)}: {bad} of {len(samples)} samples over, "
            f"a pass allows at most {bad_allowed} of {wanted} (sampling stopped): {evidence}"
        )
    why = (
        f"only {len(samples)} samples before the {format_ms(settings.deadline)} deadline"
        if len(samples) < wanted
        else f"{len(samples)} samples"
    )
    raise ProbeFailure(
        f"{label} inconclusive: {why}; a claim at {settings.confidence:.0%} confidence needs "
        f"at least {needed} samples with none over the threshold: {evidence}"
    )


def _evidence(samples, result, threshold, confidence, errors):
    if result is None:
        return "no samples"
    over = sum(s > threshold for s in samples)
    upper = format_ms(result.upper) if result.upper is not None and math.isfinite(result.upper) else "none"
    value = format_ms(result.value) if math.isfinite(result.value) else "no answer"
    text = (
        f"P{result.q * 100:g} {value}, {confidence:.0%} upper bound {upper}, "
        f"{over} of {len(samples)} samples over"
    )
    if errors:
        text += f", {len(errors)} failed ({errors[0]})"
    return text
