"""The request engine: one mechanism that serves every model request of every task backend.

``request_log`` (append-only answers + artifacts: the resume mechanism), ``serve`` (keys, seeds,
batches of similar requests, cost accounting) and ``distributed`` (process sharding and gathering).
"""
