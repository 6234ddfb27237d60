"""The `Examples:` sections of the public API run as doctests, so they cannot drift.

Every public class and function (the `__all__` names of the subpackages and the
top-level names of the API modules) must have a docstring with an `Examples:`
section, and every example must give the output it shows.
"""

import doctest
import importlib
import inspect
import tempfile

import pytest

#: Subpackages whose `__all__` is public API.
PACKAGES = (
    "keras_dimsel.data",
    "keras_dimsel.layers",
    "keras_dimsel.models",
    "keras_dimsel.training",
    "keras_dimsel.autodim",
    "keras_dimsel.amtl",
)
#: Modules whose top-level classes and functions without a leading underscore (and the
#: classes and functions their `__all__` names, if they have one) are public API.
API_MODULES = (
    "keras_dimsel.pipeline",
    "keras_dimsel.tuning",
    "keras_dimsel.export",
    "keras_dimsel.preprocessing.pipeline",
    "keras_dimsel.preprocessing.statistics",
    "keras_dimsel.preprocessing.read",
    "keras_dimsel.preprocessing.splits",
    "keras_dimsel.autodim.probe",
    "keras_dimsel.autodim.memory",
    "keras_dimsel.training.memory",
    "keras_dimsel.data.input_fn",
    "keras_dimsel.data.lookup",
    "tfx_pipeline.pipeline",
    "tfx_pipeline.configs",
)
#: The modules whose doctests run: where the public names are defined.
#: `test_every_public_name_is_defined_in_a_doctested_module` keeps this list complete.
DOCTEST_MODULES = (
    "keras_dimsel._compat",
    "keras_dimsel.data.datasets",
    "keras_dimsel.data.feature_spec",
    "keras_dimsel.data.reader",
    "keras_dimsel.data.input_fn",
    "keras_dimsel.data.lookup",
    "keras_dimsel.layers._utils",
    "keras_dimsel.layers.adaptive_mask",
    "keras_dimsel.layers.candidate_embedding",
    "keras_dimsel.layers.compact_embedding",
    "keras_dimsel.layers.dimension_selector",
    "keras_dimsel.layers.frequency_features",
    "keras_dimsel.layers.planned_embedding",
    "keras_dimsel.models",
    "keras_dimsel.models.ctr_model",
    "keras_dimsel.models.embeddings",
    "keras_dimsel.models.heads",
    "keras_dimsel.models.dropout",
    "keras_dimsel.training.baseline",
    "keras_dimsel.training.checkpointing",
    "keras_dimsel.training.memory",
    "keras_dimsel.training.optimizers",
    "keras_dimsel.training.run_dir",
    "keras_dimsel.training.runner",
    "keras_dimsel.training.settings",
    "keras_dimsel.training.progress",
    "keras_dimsel.training.tensorboard",
    "keras_dimsel.autodim.alpha_history",
    "keras_dimsel.autodim.alternating",
    "keras_dimsel.autodim.embeddings",
    "keras_dimsel.autodim.model",
    "keras_dimsel.autodim.plan",
    "keras_dimsel.autodim.knapsack",
    "keras_dimsel.autodim.probe",
    "keras_dimsel.autodim.memory",
    "keras_dimsel.autodim.report",
    "keras_dimsel.autodim.runs",
    "keras_dimsel.autodim.search_tables",
    "keras_dimsel.autodim.temperature",
    "keras_dimsel.amtl.compact",
    "keras_dimsel.amtl.embeddings",
    "keras_dimsel.amtl.report",
    "keras_dimsel.amtl.runs",
    "keras_dimsel.amtl.warm_start",
    "keras_dimsel.pipeline",
    "keras_dimsel.cli_outputs",
    "keras_dimsel.export",
    "keras_dimsel.tuning",
    "keras_dimsel.preprocessing.pipeline",
    "keras_dimsel.preprocessing.statistics",
    "keras_dimsel.preprocessing.read",
    "keras_dimsel.preprocessing.splits",
    "tfx_pipeline.pipeline",
)
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _is_api_object(value) -> bool:
    # Constants such as `DATASETS` or `MODELS` are data: they carry no docstring of their own.
    return inspect.isclass(value) or inspect.isfunction(value)


def public_objects() -> dict:
    """`{"module.name": object}` for every public class and function."""
    found = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for name in package.__all__:
            value = getattr(package, name)
            if _is_api_object(value):
                found[f"{package_name}.{name}"] = value
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        exported = set(getattr(module, "__all__", ()))
        for name, value in vars(module).items():
            if name.startswith("_") or not _is_api_object(value):
                continue
            if value.__module__ == module_name or name in exported:
                found[f"{module_name}.{name}"] = value
    return found


def test_every_public_name_has_a_docstring_with_an_example():
    undocumented, without_example = [], []
    for name, value in sorted(public_objects().items()):
        docstring = inspect.getdoc(value)
        if not docstring:
            undocumented.append(name)
        elif not {"Example:", "Examples:"} & {line.strip() for line in docstring.splitlines()}:
            without_example.append(name)
    problems = []
    if undocumented:
        problems.append("no docstring: " + ", ".join(undocumented))
    if without_example:
        problems.append("no `Examples:` section: " + ", ".join(without_example))
    assert not problems, "; ".join(problems)


def test_every_public_name_is_defined_in_a_doctested_module():
    modules = {value.__module__ for value in public_objects().values()}
    missing = sorted(modules - set(DOCTEST_MODULES))
    assert not missing, f"add these modules to DOCTEST_MODULES: {', '.join(missing)}"


@pytest.fixture
def examples_tmpdir(tmp_path, monkeypatch):
    """`tempfile.mkdtemp()` in the examples makes folders under the test's tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("module_name", DOCTEST_MODULES)
def test_docstring_examples(module_name, examples_tmpdir):
    module = importlib.import_module(module_name)
    tests = [test for test in doctest.DocTestFinder().find(module) if test.examples]
    assert tests, f"{module_name} has no docstring examples"
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report = []
    for test in sorted(tests, key=lambda test: test.name):
        runner.run(test, out=report.append)
    assert not runner.failures, "".join(report)
