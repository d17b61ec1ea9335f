"""Keeping the price files current: everything that writes or checks prices/ rather than reads it.

The command-line check of price files (``python -m bedrock_budget.pricing.maintenance.validate``) runs
offline; pricing a call (:mod:`bedrock_budget.pricing`) never imports this package, so none of it weighs
on the wrapped client.
"""
