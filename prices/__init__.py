"""The reviewed price tables, shipped inside the package as ``bedrock_budget.prices``.

The YAML files in this folder are data (see README.md for their schema and sources); this file only makes
the folder a package, so that the wheel carries the files and ``importlib.resources`` finds them both in an
installed wheel and in a checkout installed in editable mode.
"""
