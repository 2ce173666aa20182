"""Scorers: turn predictions on disk into per-sample scores and aggregate metrics.

A scorer never loads the model it scores, so a finished run can be re-scored from its samples file
(as VLMEvalKit re-scores from its predictions file). Each rule is named in the results it produces.
"""
