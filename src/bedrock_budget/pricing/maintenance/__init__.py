"""Keeping the price files current: everything that writes or checks prices/ rather than reads it.

The AWS Price List converter (``prices import-price-list``: :mod:`.price_list`), the update that turns
the Price List into a dated layer and a diff (``prices update``: :mod:`.price_update`, reported by
:mod:`.update_report`) and the command-line check of price files (``python -m
bedrock_budget.pricing.maintenance.validate``). They run offline, from the CLI or a cron job; pricing a
call (:mod:`bedrock_budget.pricing`) never imports this package, so none of it weighs on the wrapped
client.
"""
