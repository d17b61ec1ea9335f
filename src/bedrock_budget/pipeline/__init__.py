"""The call pipeline, apart from the I/O around it.

``core.PipelineCore`` prepares a call (attribution, model, request counts), reads its usage from the
response or stream, prices it and builds its record; ``context`` holds the values passed between the core,
the budget layer (``Guard``, which answers with a decision value) and a driver. The sync driver is
:class:`bedrock_budget.wrapper.meter.Meter`, behind the proxy that ``bb.wrap`` returns.
"""
