"""``diffinv study`` on the command line: report, an already finished study, bad specs."""

from __future__ import annotations

import pytest

from diffinv.cli import main
from diffinv.study import Store, execute_task, expand

SPEC_YAML = """\
name: cli
problems: [gaussian-field]
seeds: [0, 1]
solvers:
  - {name: dps, steps: 3, samples: 2}
"""


def test_finished_study_reruns_at_once_and_reports(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC_YAML)
    store = Store.open(tmp_path / "store", create=True)
    for task in expand(spec):
        store.write(execute_task(task))
    assert main(["study", str(spec), "--out", str(store.root), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "2 tasks, 2 already in" in err and "0 to run" in err
    assert main(["study", "report", str(store.root), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "summary.md").is_file()
    assert (tmp_path / "rep" / "calibration.png").is_file()


@pytest.mark.parametrize(
    "text, message",
    [
        ("problems: [gaussian-field]\nseeds: [0]\nsolvers: [{name: dps, steps: 3}]\n",
         r"solvers\[0\].samples: required"),
        ("problems: [nowhere]\nseeds: [0]\nsolvers: [{name: dps, steps: 3, samples: 2}]\n",
         r"problems\[0\].name: unknown problem"),
        ("problems: [gaussian-field\n", "not valid YAML"),
    ],
)
def test_bad_spec_exits_2_naming_the_key(tmp_path, capsys, text, message):
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    assert main(["study", str(spec), "--out", str(tmp_path / "s")]) == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)


def test_report_of_a_non_store_exits_2(tmp_path, capsys):
    assert main(["study", "report", str(tmp_path)]) == 2
    assert "not a study store" in capsys.readouterr().err
