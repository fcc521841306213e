"""After training: a classifier for other runtimes, and a smaller one.

- :mod:`.featurize`: the featurisation of a classifier as a JSON spec, and a reference
  implementation of it in plain Python (what a consumer of an exported network reimplements);
- :mod:`.network`: the classifier's network over padded ids with a mask or weights (no
  ``EmbeddingBag``), the module the exporters write;
- :mod:`.exporter`: ``ffnlp export RUN --onnx FILE --torchscript FILE``;
- :mod:`.quantize`: ``ffnlp quantize RUN --out RUN_Q``: pruning, int8, product quantisation.

The ONNX parts need the ``[export]`` extra (``pip install 'ffnlp[export]'``), imported only
when used.
"""
