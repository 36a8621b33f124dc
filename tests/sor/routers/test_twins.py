"""The compiled kernels and their Python references name each other in their docstrings.

Every compiled function of a kernel module (`KERNELS`) says which Python function it repeats
("Python twin: `module.function`", or "Python twin: none" with the reason), and that function
names it back ("Compiled twin: `sor.routers.static_nb.name`"), so that a change to one side
leads to the other. Only fully qualified names in backticks count as pointers.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

KERNELS = (
    "sor.routers.static_nb",
    "sor.routers.placement_nb",
    "sor.execution.depth_nb",
    "sor.execution.cleanup_nb",
    "sor.evaluation.baselines_nb",
)
REFERENCE_MODULES = (
    "sor.routers.allocator",
    "sor.routers.static",
    "sor.execution.engine",
    "sor.execution.depth",
    "sor.execution.cleanup",
    "sor.execution.passive",
    "sor.routers.placement",
    "sor.evaluation.baselines",
)
QUALIFIED = re.compile(r"`(sor\.[\w.]+)`")


def doc(obj) -> str:
    return inspect.cleandoc(getattr(obj, "py_func", obj).__doc__ or "")


def paragraph(obj, label: str) -> str | None:
    """The docstring paragraph of `obj` that starts with `label`, as one line; None if none."""
    for block in doc(obj).split("\n\n"):
        if block.startswith(label):
            return " ".join(block.split())
    return None


def resolve(name: str):
    """The object a fully qualified name points to (module, then attributes)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = inspect.getattr_static(obj, attr)
            obj = getattr(obj, "__func__", obj)  # classmethod, staticmethod
        return obj
    raise LookupError(name)


def compiled_functions() -> dict[str, object]:
    """Compiled functions of every kernel module, by qualified name."""
    out = {}
    for kernel in KERNELS:
        module = importlib.import_module(kernel)
        for name, obj in vars(module).items():
            if getattr(getattr(obj, "py_func", None), "__module__", None) == kernel:
                out[f"{kernel}.{name}"] = obj
    return out


def kernel_objects() -> dict[str, object]:
    """Compiled functions and the structs, by qualified name."""
    structs = {}
    for kernel in KERNELS:
        module = importlib.import_module(kernel)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == kernel:
                structs[f"{kernel}.{name}"] = obj
    return compiled_functions() | structs


def reference_objects() -> dict[str, object]:
    """Functions, classes and methods of the reference modules, by qualified name."""
    out = {}
    for module_name in REFERENCE_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module_name:
                continue
            if inspect.isfunction(obj):
                out[f"{module_name}.{name}"] = obj
            elif inspect.isclass(obj):
                out[f"{module_name}.{name}"] = obj
                for attr, member in vars(obj).items():
                    member = getattr(member, "__func__", member)
                    if inspect.isfunction(member):
                        out[f"{module_name}.{name}.{attr}"] = member
    return out


def test_the_kernel_has_compiled_functions():
    names = {name.rsplit(".", 1)[1] for name in compiled_functions()}
    assert {"_allocate_nb", "_solve_into", "_route", "run_router_nb", "forget_row"} <= names


@pytest.mark.parametrize("name", sorted(compiled_functions()))
def test_each_compiled_function_names_its_python_twin(name):
    assert paragraph(compiled_functions()[name], "Python twin:") is not None, name


@pytest.mark.parametrize("name", sorted(kernel_objects()))
def test_python_twins_name_the_compiled_one_back(name):
    text = paragraph(kernel_objects()[name], "Python twin:")
    if text is None or text.startswith("Python twin: none"):
        return
    twins = QUALIFIED.findall(text)
    assert twins, text
    for twin in twins:
        back = paragraph(resolve(twin), "Compiled twin")
        assert back is not None, f"{twin} does not name its compiled twin"
        assert f"`{name}`" in back, f"{twin} does not name {name}: {back}"


def test_compiled_twins_name_the_python_one_back():
    pointers = 0
    for qualified, obj in reference_objects().items():
        text = paragraph(obj, "Compiled twin")
        if text is None:
            continue
        for twin in QUALIFIED.findall(text):
            if not twin.startswith(KERNELS):
                continue
            pointers += 1
            back = paragraph(resolve(twin), "Python twin:")
            assert back is not None, f"{twin} does not name its Python twin"
            assert f"`{qualified}`" in back, f"{twin} does not name {qualified}: {back}"
    assert pointers >= 20
