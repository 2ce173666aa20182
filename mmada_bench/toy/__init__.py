"""The toy world (easy-VQA) and the small models trained on it: MAGVIT-v2 tokenizer and judge.

``world`` derives captions, CoT answers and a GSM8K-format text task; ``export`` writes them in the
training formats; ``vq_training`` and ``judge_training`` train the committed artifacts in
``mmada_bench/model/assets/toy/``; ``build`` runs the stages (``python -m mmada_bench.toy.build``).
"""
