"""One version, single-sourced from Cargo.toml: the native module reports it as
``cachebox.__version__`` and maturin writes it into the wheel's metadata."""

import importlib.metadata
import pathlib
import re

import cachebox


def _cargo_version():
    text = (pathlib.Path(__file__).resolve().parent.parent / "Cargo.toml").read_text()
    package = text[text.index("[package]") :]
    return re.search(r'^version = "([^"]+)"$', package, re.MULTILINE).group(1)


def test_module_metadata_and_cargo_agree_on_the_version():
    assert cachebox.__version__ == importlib.metadata.version("cachebox") == _cargo_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", cachebox.__version__)
