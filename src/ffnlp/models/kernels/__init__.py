"""Speed kernels for the models: hand-written steps and autograd functions that make the same
numbers as a plain PyTorch path, faster on a CPU.

Each kernel sits behind one switch on its model (``fused=True``, the default); with
``fused=False`` the model runs its plain PyTorch reference, which the parity tests
(``tests/test_models_kernels_*.py``) compare the kernel against.

- :mod:`.sgns_cpu`: word2vec's fused plain-SGD step (no autograd; with subwords, fastText's),
  its index layout, and the pair-score autograd function of the autograd path;
- :mod:`.lm_cpu`: the feed-forward LM's cheap dropout mask, softmax cross-entropy kept in bf16,
  the output layer + cross-entropy node with one (B, V) buffer, and the one-node look-up into a
  tied low-precision table;
- :mod:`.threads`: the helper threads that share a batch between cores.

Importing these modules does no work; anything a kernel prepares it prepares on first use.
"""
