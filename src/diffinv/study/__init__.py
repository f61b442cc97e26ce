"""Studies: many reconstructions (problems x images x solvers x settings x seeds) on Dask.

``diffinv.study.run(spec, out=DIR)`` expands a spec (YAML file or mapping, see
:mod:`diffinv.study.spec`) into independent tasks with stable ids
(:mod:`~diffinv.study.tasks`), runs the missing ones on Dask distributed
(:mod:`~diffinv.study.runner`: a LocalCluster by default, or ``scheduler=ADDRESS``) and
writes each finished task to the store (:mod:`~diffinv.study.store`: one HDF5 file per
task, written atomically).  ``diffinv.study.write_report(DIR)`` writes the tables and plots
(:mod:`~diffinv.study.report`).  Command line: ``diffinv study SPEC.yaml`` and
``diffinv study report STORE``.

Needs the ``study`` extra (``pip install diffinv[study]``: dask[distributed], PyYAML,
bokeh for the dashboard, matplotlib for the report's plots) to run tasks, read YAML and plot;
reading a store needs only the core dependencies.
"""

from .execute import TaskResult, execute_task
from .report import write_report
from .runner import StudyResult, run
from .spec import StudySpec, load_spec, parse_spec
from .store import Store
from .tasks import Task, expand

__all__ = [
    "Store",
    "StudyResult",
    "StudySpec",
    "Task",
    "TaskResult",
    "execute_task",
    "expand",
    "load_spec",
    "parse_spec",
    "run",
    "write_report",
]
