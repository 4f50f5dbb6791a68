"""The public API is explicit: `__all__` lists exactly what probe authors may rely on."""

import slo


def test_all_names_exist_and_are_exported() -> None:
    assert sorted(slo.__all__) == slo.__all__
    for name in slo.__all__:
        assert getattr(slo, name) is not None
    public = {name for name in vars(slo) if not name.startswith("_")}
    # submodules become attributes once imported; only the listed objects are API
    assert {name for name in public if not isinstance(getattr(slo, name), type(slo))} == set(slo.__all__)


def test_cli_lists_every_command(capsys) -> None:  # type: ignore[no-untyped-def]
    from slo.cli import COMMANDS, main

    assert main([]) == 2
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    assert main(["no-such-command"]) == 2
