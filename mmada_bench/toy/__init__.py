"""The toy world (easy-VQA) and the small models trained on it: the trained embedded default.

``world`` derives captions, CoT answers and a GSM8K-format text task; ``export`` writes them in the
training formats; ``tokenizer``, ``vq_training`` and ``judge_training`` train the toy tokenizer,
MAGVIT-v2 and judge; ``mmada_training`` is the three-stage MMaDA recipe; ``build`` rebuilds all of it
(``python -m mmada_bench.toy.build``, ``make toy``) into the layout of the committed
``mmada_bench/model/assets/toy/``; ``targets`` measures the result against the targets.
"""
